"""Pure parsers for what GPU tools and the Linux sysfs print (vram.md §7).

No process is started here; :mod:`.gpu` runs the tools and hands their output to these
functions, so each format is tested on real-format text without the hardware.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from victor_gui.sizing.hardware import GpuDevice

MiB = 1 << 20
GiB = 1 << 30
AMD_VENDOR = "0x1002"
INTEL_VENDOR = "0x8086"


def parse_nvidia_smi_csv(text: str) -> list[GpuDevice]:
    """Parse ``nvidia-smi --query-gpu=index,name,memory.total,memory.free,memory.used
    --format=csv,noheader,nounits`` (MiB, one line per GPU).

    Names are not quoted by nvidia-smi, so the name is everything between the first field and
    the last three. Lines with ``[N/A]`` memory (some MIG/vGPU setups) are skipped.
    """
    devices = []
    for line in text.splitlines():
        head = line.split(",", 1)
        if len(head) < 2:
            continue
        parts = [p.strip() for p in head[1].rsplit(",", 3)]
        if len(parts) < 4:
            continue
        index, name = head[0].strip(), parts[0]
        try:
            total, free = int(float(parts[-3])) * MiB, int(float(parts[-2])) * MiB
            idx = int(index)
        except ValueError:
            continue
        devices.append(GpuDevice("nvidia", name, total, free, index=idx, source="nvidia-smi"))
    return devices


def _int_field(value: Any) -> int | None:
    if isinstance(value, dict):  # amd-smi: {"value": 16368, "unit": "MB"}
        unit = str(value.get("unit", "B")).upper()
        number = _int_field(value.get("value"))
        scale = {"B": 1, "KB": 1 << 10, "MB": MiB, "MIB": MiB, "GB": GiB, "GIB": GiB}.get(unit, 1)
        return number * scale if number is not None else None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def parse_rocm_smi_json(text: str) -> list[GpuDevice]:
    """Parse ``rocm-smi --showmeminfo vram --json``: ``{"card0": {"VRAM Total Memory (B)": ...}}``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return []
    devices: list[GpuDevice] = []
    if not isinstance(data, dict):
        return []
    for card, fields in sorted(data.items()):
        if not (isinstance(fields, dict) and card.startswith("card")):
            continue
        total = _int_field(fields.get("VRAM Total Memory (B)"))
        used = _int_field(fields.get("VRAM Total Used Memory (B)"))
        if total is None:
            continue
        index = int(card[4:]) if card[4:].isdigit() else len(devices)
        name = str(fields.get("Card Series") or fields.get("Card series") or f"AMD GPU {card}")
        devices.append(GpuDevice("amd", name, total, total - (used or 0), index=index, source="rocm-smi"))
    return devices


def parse_amd_smi_json(text: str) -> list[GpuDevice]:
    """Parse ``amd-smi metric --mem-usage --json`` (a list of ``{"gpu": n, "mem_usage": {...}}``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return []
    if isinstance(data, dict):
        data = data.get("gpu_data", [data])
    devices = []
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, dict):
            continue
        usage = entry.get("mem_usage") or {}
        total = _int_field(usage.get("total_vram"))
        used = _int_field(usage.get("used_vram"))
        free = _int_field(usage.get("free_vram"))
        if total is None:
            continue
        free = free if free is not None else total - (used or 0)
        index = _int_field(entry.get("gpu")) or 0
        devices.append(GpuDevice("amd", f"AMD GPU {index}", total, free, index=index, source="amd-smi"))
    return devices


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    return _int_field(text) if text is not None else None


def read_drm_sysfs(root: Path = Path("/")) -> tuple[list[GpuDevice], list[str]]:
    """AMD and Intel GPUs from ``<root>/sys/class/drm/card*`` (bytes, no tool needed).

    AMD: ``device/mem_info_vram_total|used``; an APU (VRAM carve-out ≤ 2 GiB with a larger GTT)
    is reported as unified with carve-out + GTT as its pool. Intel: ``lmem_total_bytes`` (i915
    discrete) or ``device/tile*/physical_vram_size_bytes`` (xe); usage is in debugfs only, so
    ``free_known`` is False. Returns (devices, notes).
    """
    devices: list[GpuDevice] = []
    notes: list[str] = []
    drm = root / "sys" / "class" / "drm"
    try:
        cards = sorted((p for p in drm.iterdir() if p.name.startswith("card") and p.name[4:].isdigit()),
                       key=lambda p: int(p.name[4:]))
    except OSError:
        return [], [f"no {drm}"]
    for card in cards:
        dev = card / "device"
        vendor = (_read(dev / "vendor") or "").lower()
        index = int(card.name[4:])
        name = _read(dev / "product_name") or ""
        if vendor == AMD_VENDOR:
            total = _read_int(dev / "mem_info_vram_total")
            used = _read_int(dev / "mem_info_vram_used") or 0
            if total is None:
                notes.append(f"{card.name}: AMD without mem_info_vram_total")
                continue
            gtt_total = _read_int(dev / "mem_info_gtt_total") or 0
            gtt_used = _read_int(dev / "mem_info_gtt_used") or 0
            label = name or f"AMD GPU {(_read(dev / 'device') or '').lower()}".strip()
            if total <= 2 * GiB and gtt_total > total:
                devices.append(GpuDevice("amd", label, total + gtt_total,
                                         total - used + gtt_total - gtt_used, index=index,
                                         unified=True, source="sysfs"))
            else:
                devices.append(GpuDevice("amd", label, total, total - used, index=index, source="sysfs"))
        elif vendor == INTEL_VENDOR:
            lmem = _read_int(card / "lmem_total_bytes")
            if lmem is None:
                tiles = [_read_int(t / "physical_vram_size_bytes") for t in sorted(dev.glob("tile*"))]
                lmem = sum(t for t in tiles if t) or None
            label = name or f"Intel GPU {(_read(dev / 'device') or '').lower()}".strip()
            if lmem:
                devices.append(GpuDevice("intel", label, lmem, lmem, index=index, source="sysfs",
                                         free_known=False))
                notes.append(f"{card.name}: Intel VRAM usage is only in debugfs; free shown as total")
            else:
                notes.append(f"{card.name}: Intel integrated GPU (uses system RAM); not counted")
    return devices, notes


_LIST_DEVICE = re.compile(r"^\s*([A-Za-z]+?)(\d*):\s+(.+?)\s+\((\d+) MiB, (\d+) MiB free\)\s*$")
_BACKEND_VENDOR = {"cuda": "nvidia", "rocm": "amd", "hip": "amd", "metal": "apple", "sycl": "intel"}


def parse_llama_list_devices(text: str) -> list[GpuDevice]:
    """Parse ``llama-server --list-devices``: ``CUDA0: NVIDIA GeForce RTX 4060 Ti (16379 MiB,
    14900 MiB free)``. These are the numbers the engine itself will plan with (vram.md §7)."""
    devices = []
    for line in text.splitlines():
        m = _LIST_DEVICE.match(line)
        if not m:
            continue
        backend, index, name, total, free = m.groups()
        vendor = _BACKEND_VENDOR.get(backend.lower())
        if vendor is None:  # Vulkan and friends: tell from the device name
            lower = name.lower()
            vendor = next((v for k, v in (("nvidia", "nvidia"), ("geforce", "nvidia"), ("radeon", "amd"),
                                          ("amd", "amd"), ("intel", "intel"), ("apple", "apple"))
                           if k in lower), "other")
        devices.append(GpuDevice(vendor, name, int(total) * MiB, int(free) * MiB, index=int(index or 0),
                                 unified=vendor == "apple", source=f"llama-server ({backend})"))
    return devices


def apple_working_set(memsize: int, wired_limit_mb: int | None) -> int:
    """Metal's recommendedMaxWorkingSetSize without pyobjc.

    ``iogpu.wired_limit_mb`` (when set above 0) is what Metal reports exactly; otherwise the
    observed default: 2/3 of RAM up to 36 GiB, 3/4 above (vram.md §7, unofficial heuristic).
    """
    if wired_limit_mb and wired_limit_mb > 0:
        return wired_limit_mb * MiB
    return memsize * 2 // 3 if memsize <= 36 * GiB else memsize * 3 // 4
