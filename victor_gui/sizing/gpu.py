"""Detect GPUs (total and *free* memory) and system RAM without blocking the event loop.

Order per vendor (vram.md §7): NVIDIA via NVML (``nvidia-ml-py``, optional extra ``nvidia``,
imported lazily) then ``nvidia-smi``; AMD and Intel via the Linux sysfs, then ``rocm-smi`` /
``amd-smi``; Apple Silicon via ``sysctl`` (Metal's working set, see
:func:`~.gpu_parse.apple_working_set`; pyobjc is used only if already installed); Windows via
DXGI (total and free) or the display-class registry (``HardwareInformation.qwMemorySize``;
WMI's AdapterRAM stops at 4 GiB), see :mod:`.gpu_windows`. Every probe has a timeout and
fails soft: it returns nothing and leaves a note.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from victor_gui.sizing.gpu_parse import (
    apple_working_set,
    parse_amd_smi_json,
    parse_llama_list_devices,
    parse_nvidia_smi_csv,
    parse_rocm_smi_json,
    read_drm_sysfs,
)
from victor_gui.sizing.hardware import GpuDevice, GpuReport, RamInfo
from victor_gui.sizing.ram import ram_info

PROBE_TIMEOUT = 5.0
NVIDIA_SMI_ARGS = ("--query-gpu=index,name,memory.total,memory.free,memory.used",
                   "--format=csv,noheader,nounits")


async def run_tool(argv: list[str], probe_timeout: float = PROBE_TIMEOUT,
                   env: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """Run a probe tool; returns (stdout or None, reason). Never raises, never outlives ``probe_timeout``.

    The tool runs in its own process group so a hung wrapper script and its children are all
    killed on timeout (a child holding the pipe would otherwise keep ``communicate`` waiting).
    """
    path = (env or os.environ).get("PATH")
    exe = shutil.which(argv[0], path=path)
    if exe is None:
        return None, f"{argv[0]} not found"
    try:
        proc = await asyncio.create_subprocess_exec(
            exe, *argv[1:], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, env=dict(env) if env is not None else None,
            start_new_session=os.name == "posix")  # ignored on Windows
    except OSError as exc:
        return None, f"{argv[0]}: {exc.strerror or exc}"
    try:
        out, err = await asyncio.wait_for(proc.communicate(), probe_timeout)
    except TimeoutError:
        _kill(proc)
        with contextlib.suppress(TimeoutError, ProcessLookupError):
            await asyncio.wait_for(proc.wait(), 2.0)
        return None, f"{argv[0]} timed out after {probe_timeout:g} s"
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        return None, f"{argv[0]} exited {proc.returncode} {tail[0][:200]}".strip()
    return out.decode("utf-8", "replace"), "ok"


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()


def _visible(devices: list[GpuDevice], env: Mapping[str, str]) -> list[GpuDevice]:
    """Honour CUDA_VISIBLE_DEVICES when it lists indices (UUID lists are left alone)."""
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return devices
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not all(v.lstrip("-").isdigit() for v in items):
        return devices
    wanted: list[int] = []
    for v in items:
        if int(v) < 0:
            break  # CUDA stops at the first invalid index
        wanted.append(int(v))
    return [d for d in devices if d.index in wanted]


def _nvml_sync() -> list[GpuDevice]:
    import pynvml  # optional extra "nvidia"; ImportError is handled by the caller

    pynvml.nvmlInit()
    try:
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            devices.append(GpuDevice("nvidia", name.decode() if isinstance(name, bytes) else str(name),
                                     int(mem.total), int(mem.free), index=i, source="nvml"))
        return devices
    finally:
        pynvml.nvmlShutdown()


async def probe_nvidia(env: Mapping[str, str], probe_timeout: float = PROBE_TIMEOUT,
                       use_nvml: bool = True) -> tuple[list[GpuDevice], list[str]]:
    """NVIDIA GPUs via NVML, falling back to ``nvidia-smi`` CSV."""
    notes: list[str] = []
    if use_nvml:
        try:
            devices = await asyncio.wait_for(asyncio.to_thread(_nvml_sync), probe_timeout)
            return _visible(devices, env), notes
        except ImportError:
            notes.append("nvidia-ml-py not installed; using nvidia-smi")
        except TimeoutError:
            notes.append(f"NVML timed out after {probe_timeout:g} s")
        except Exception as exc:  # pynvml.NVMLError and driver-missing errors of every kind
            notes.append(f"NVML unavailable: {type(exc).__name__}")
    out, reason = await run_tool(["nvidia-smi", *NVIDIA_SMI_ARGS], probe_timeout, env)
    if out is None:
        notes.append(reason)
        return [], notes
    devices = parse_nvidia_smi_csv(out)
    if not devices:
        notes.append("nvidia-smi printed no GPU")
    return _visible(devices, env), notes


async def probe_linux_sysfs(root: Path, env: Mapping[str, str],
                            probe_timeout: float = PROBE_TIMEOUT) -> tuple[list[GpuDevice], list[str]]:
    """AMD/Intel from sysfs; AMD via rocm-smi, then amd-smi, when sysfs shows none."""
    try:
        devices, notes = await asyncio.wait_for(asyncio.to_thread(read_drm_sysfs, root), probe_timeout)
    except TimeoutError:
        devices, notes = [], [f"sysfs read timed out after {probe_timeout:g} s"]
    if not any(d.vendor == "amd" for d in devices):
        out, reason = await run_tool(["rocm-smi", "--showmeminfo", "vram", "--json"], probe_timeout, env)
        amd = parse_rocm_smi_json(out) if out else []
        if not amd:
            out2, reason2 = await run_tool(["amd-smi", "metric", "--mem-usage", "--json"], probe_timeout, env)
            amd = parse_amd_smi_json(out2) if out2 else []
            if not amd and "not found" not in reason:
                notes.append(reason)
            if not amd and "not found" not in reason2:
                notes.append(reason2)
        devices += amd
    return devices, notes


async def probe_apple(env: Mapping[str, str],
                      probe_timeout: float = PROBE_TIMEOUT) -> tuple[list[GpuDevice], list[str]]:
    """Apple Silicon: one unified device whose budget is Metal's recommended working set."""
    try:
        import Metal  # pyobjc, only if the user has it

        dev = Metal.MTLCreateSystemDefaultDevice()
        size = int(dev.recommendedMaxWorkingSetSize())
        return [GpuDevice("apple", str(dev.name()), size, size, unified=True, source="metal")], []
    except Exception:  # ImportError or no Metal device: fall through to sysctl
        pass
    mem, reason = await run_tool(["sysctl", "-n", "hw.memsize"], probe_timeout, env)
    if mem is None or not mem.strip().isdigit():
        return [], [f"sysctl hw.memsize: {reason}"]
    limit, _ = await run_tool(["sysctl", "-n", "iogpu.wired_limit_mb"], probe_timeout, env)
    brand, _ = await run_tool(["sysctl", "-n", "machdep.cpu.brand_string"], probe_timeout, env)
    wired = int(limit.strip()) if limit and limit.strip().isdigit() else None
    size = apple_working_set(int(mem.strip()), wired)
    name = (brand or "Apple Silicon").strip()
    return [GpuDevice("apple", name, size, size, unified=True, source="sysctl")], \
        ["Apple working set from sysctl (install pyobjc-framework-Metal for Metal's exact figure)"]


async def probe_windows(probe_timeout: float = PROBE_TIMEOUT) -> tuple[list[GpuDevice], list[str]]:
    """Discrete adapters via DXGI (total and free), else the registry (total only)."""
    from victor_gui.sizing.gpu_windows import dxgi_adapters, registry_adapters

    notes: list[str] = []
    try:
        devices = await asyncio.wait_for(asyncio.to_thread(dxgi_adapters), probe_timeout)
        if devices:
            return devices, notes
    except (OSError, AttributeError, TimeoutError) as exc:
        notes.append(f"DXGI: {type(exc).__name__}")
    try:
        devices = await asyncio.wait_for(asyncio.to_thread(registry_adapters), probe_timeout)
    except (OSError, ImportError, TimeoutError) as exc:
        return [], [*notes, f"registry: {type(exc).__name__}"]
    if devices:
        notes.append("Windows registry gives total VRAM only; free shown as total")
    return devices, notes


async def probe_llama_server(env: Mapping[str, str],
                             probe_timeout: float = PROBE_TIMEOUT) -> tuple[list[GpuDevice], list[str]]:
    """Devices as ``llama-server --list-devices`` sees them (when a llama-server is on PATH)."""
    out, reason = await run_tool(["llama-server", "--list-devices"], probe_timeout, env)
    if out is None:
        return [], [reason]
    devices = parse_llama_list_devices(out)
    return devices, [] if devices else ["llama-server listed no GPU"]


async def read_ram() -> RamInfo:
    """System RAM (psutil's ``available``: free plus reclaimable cache), read in a worker thread."""
    return await asyncio.to_thread(ram_info)


async def _soft(name: str, probe: Awaitable[tuple[list[GpuDevice], list[str]]],
                report: GpuReport | None = None) -> tuple[list[GpuDevice], list[str]]:
    """(devices, notes named after the probe); with ``report``, the notes go straight into it."""
    try:
        devices, notes = await probe
    except Exception as exc:  # a probe must never take detection down
        devices, notes = [], [f"{type(exc).__name__}: {exc}"]
    named = [f"{name}: {n}" for n in notes]
    if report is not None:
        report.notes += named
    return devices, named


async def detect_gpus(*, probe_timeout: float = PROBE_TIMEOUT, root: Path = Path("/"),
                      env: Mapping[str, str] | None = None, platform: str | None = None,
                      use_nvml: bool = True, prefer_llama_server: bool = False) -> GpuReport:
    """Every GPU this machine has, with total and free bytes, plus system RAM.

    ``root`` (sysfs), ``env`` (PATH, CUDA_VISIBLE_DEVICES) and ``platform`` let tests point the
    probes at fake trees and tools. Probes run concurrently, each bounded by ``probe_timeout``.
    """
    env = dict(os.environ if env is None else env)
    plat = platform or sys.platform
    report = GpuReport()
    if prefer_llama_server:
        devices, _ = await _soft("llama-server", probe_llama_server(env, probe_timeout), report)
        if devices:
            report.gpus = devices
            with contextlib.suppress(Exception):
                report.ram = await read_ram()
            return report
    probes: list[tuple[str, Callable[[], Awaitable[tuple[list[GpuDevice], list[str]]]]]] = []
    if plat != "darwin":
        probes.append(("nvidia", lambda: probe_nvidia(env, probe_timeout, use_nvml)))
    if plat.startswith("linux"):
        probes.append(("sysfs", lambda: probe_linux_sysfs(root, env, probe_timeout)))
    if plat == "darwin":
        probes.append(("apple", lambda: probe_apple(env, probe_timeout)))
    results = await asyncio.gather(*(_soft(n, p()) for n, p in probes))
    for devices, notes in results:  # in probe order, whichever finished first: the same report each run
        report.gpus += devices
        report.notes += notes
    if plat == "win32":  # NVML/nvidia-smi stay the source for NVIDIA; DXGI adds the others
        extra, _ = await _soft("windows", probe_windows(probe_timeout), report)
        have = {d.vendor for d in report.gpus}
        report.gpus += [d for d in extra if d.vendor not in have]
    try:
        report.ram = await read_ram()
    except Exception as exc:
        report.notes.append(f"ram: {type(exc).__name__}")
    if not report.gpus:
        report.notes.append("no GPU found")
    return report
