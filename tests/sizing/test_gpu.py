"""GPU/RAM detection: real-format tool output, fake sysfs trees, fake tools on PATH."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path

import pytest

from victor_gui.sizing.gpu import detect_gpus, probe_apple, probe_nvidia, run_tool
from victor_gui.sizing.gpu_parse import (
    apple_working_set,
    parse_amd_smi_json,
    parse_llama_list_devices,
    parse_nvidia_smi_csv,
    parse_rocm_smi_json,
    read_drm_sysfs,
)

MiB, GiB = 1 << 20, 1 << 30

NVIDIA_CSV = """0, NVIDIA GeForce RTX 4090, 24564, 23012, 1552
1, NVIDIA RTX A6000, 49140, 100, 49040
2, NVIDIA A100-SXM4-80GB, [N/A], [N/A], [N/A]
"""

ROCM_JSON = json.dumps({
    "card0": {"VRAM Total Memory (B)": "25753026560", "VRAM Total Used Memory (B)": "1031434240"},
    "card1": {"VRAM Total Memory (B)": "17163091968", "VRAM Total Used Memory (B)": "17000000000"},
    "system": {"Driver version": "6.8.5"},
})

AMD_SMI_JSON = json.dumps([{"gpu": 0, "mem_usage": {
    "total_vram": {"value": 196592, "unit": "MB"}, "used_vram": {"value": 283, "unit": "MB"},
    "free_vram": {"value": 196309, "unit": "MB"}}}])


def test_nvidia_smi_csv_multi_gpu_skips_na_lines() -> None:
    gpus = parse_nvidia_smi_csv(NVIDIA_CSV)
    assert [(g.index, g.name, g.total, g.free) for g in gpus] == [
        (0, "NVIDIA GeForce RTX 4090", 24564 * MiB, 23012 * MiB),
        (1, "NVIDIA RTX A6000", 49140 * MiB, 100 * MiB),
    ]
    assert all(g.vendor == "nvidia" and g.source == "nvidia-smi" for g in gpus)


def test_nvidia_smi_name_with_comma_and_garbage_lines() -> None:
    gpus = parse_nvidia_smi_csv("No devices were found\n3, Odd, Name GPU, 8192, 4096, 4096\n")
    assert [(g.index, g.name, g.free) for g in gpus] == [(3, "Odd, Name GPU", 4096 * MiB)]


def test_rocm_smi_json() -> None:
    gpus = parse_rocm_smi_json(ROCM_JSON)
    assert [(g.index, g.total, g.free) for g in gpus] == [
        (0, 25753026560, 25753026560 - 1031434240), (1, 17163091968, 163091968)]
    assert parse_rocm_smi_json("not json") == []


def test_amd_smi_json_units() -> None:
    (gpu,) = parse_amd_smi_json(AMD_SMI_JSON)
    assert gpu.total == 196592 * MiB and gpu.free == 196309 * MiB


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def make_sysfs(root: Path) -> Path:
    drm = root / "sys" / "class" / "drm"
    # card0: AMD discrete 24 GiB with 1 GiB used
    _write(drm / "card0" / "device" / "vendor", "0x1002")
    _write(drm / "card0" / "device" / "product_name", "Radeon RX 7900 XTX")
    _write(drm / "card0" / "device" / "mem_info_vram_total", str(24 * GiB))
    _write(drm / "card0" / "device" / "mem_info_vram_used", str(1 * GiB))
    (drm / "card0-DP-1").mkdir(parents=True)  # a connector, not a card
    # card1: AMD APU, 512 MiB carve-out, 16 GiB GTT of which 2 GiB used
    _write(drm / "card1" / "device" / "vendor", "0x1002")
    _write(drm / "card1" / "device" / "device", "0x15BF")
    _write(drm / "card1" / "device" / "mem_info_vram_total", str(512 * MiB))
    _write(drm / "card1" / "device" / "mem_info_vram_used", str(256 * MiB))
    _write(drm / "card1" / "device" / "mem_info_gtt_total", str(16 * GiB))
    _write(drm / "card1" / "device" / "mem_info_gtt_used", str(2 * GiB))
    # card2: Intel Arc on i915 (lmem_total_bytes)
    _write(drm / "card2" / "device" / "vendor", "0x8086")
    _write(drm / "card2" / "lmem_total_bytes", str(16 * GiB))
    # card3: Intel on xe, two tiles
    _write(drm / "card3" / "device" / "vendor", "0x8086")
    _write(drm / "card3" / "device" / "tile0" / "physical_vram_size_bytes", str(12 * GiB))
    _write(drm / "card3" / "device" / "tile1" / "physical_vram_size_bytes", str(12 * GiB))
    # card4: Intel iGPU; card5: NVIDIA (sysfs has no memory figures for it)
    _write(drm / "card4" / "device" / "vendor", "0x8086")
    _write(drm / "card5" / "device" / "vendor", "0x10de")
    return root


def test_sysfs_tree_amd_apu_intel(tmp_path: Path) -> None:
    devices, notes = read_drm_sysfs(make_sysfs(tmp_path))
    by_index = {d.index: d for d in devices}
    assert set(by_index) == {0, 1, 2, 3}
    assert by_index[0].name == "Radeon RX 7900 XTX" and by_index[0].free == 23 * GiB
    apu = by_index[1]
    # carve-out + GTT: total 0.5 + 16 GiB; free (0.5 - 0.25) + (16 - 2) GiB
    assert apu.unified and apu.total == 512 * MiB + 16 * GiB and apu.free == 256 * MiB + 14 * GiB
    assert by_index[2].total == 16 * GiB and not by_index[2].free_known
    assert by_index[3].total == 24 * GiB and by_index[3].vendor == "intel"
    assert any("integrated" in n for n in notes)


def test_sysfs_missing_root_fails_soft(tmp_path: Path) -> None:
    assert read_drm_sysfs(tmp_path / "nothing") == ([], [f"no {tmp_path / 'nothing' / 'sys/class/drm'}"])


def fake_tool(bindir: Path, name: str, body: str) -> None:
    """An executable shell script; PATH holds only its folder, so it uses shell builtins."""
    bindir.mkdir(exist_ok=True)
    path = bindir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


posix_only = pytest.mark.skipif(os.name != "posix", reason="fake tools are shell scripts")


@posix_only
async def test_fake_nvidia_smi_prints_csv(tmp_path: Path) -> None:
    fake_tool(tmp_path / "bin", "nvidia-smi", f"printf '%s' '{NVIDIA_CSV}'")
    gpus, _ = await probe_nvidia({"PATH": str(tmp_path / "bin")}, use_nvml=False)
    assert [g.name for g in gpus] == ["NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000"]
    gpus, _ = await probe_nvidia({"PATH": str(tmp_path / "bin"), "CUDA_VISIBLE_DEVICES": "1"}, use_nvml=False)
    assert [g.index for g in gpus] == [1]


@posix_only
async def test_fake_nvidia_smi_hangs_timeout_fires(tmp_path: Path) -> None:
    # The wrapper forks a child that would hold the pipe open: the whole group must be killed.
    sleep = shutil.which("sleep")
    fake_tool(tmp_path / "bin", "nvidia-smi", f"{sleep} 30 &\n{sleep} 30")
    start = time.monotonic()
    gpus, notes = await probe_nvidia({"PATH": str(tmp_path / "bin")}, probe_timeout=0.5, use_nvml=False)
    assert time.monotonic() - start < 5  # bounded: 0.5 s timeout + kill
    assert gpus == [] and any("timed out" in n for n in notes)


@posix_only
async def test_fake_nvidia_smi_exits_1(tmp_path: Path) -> None:
    fake_tool(tmp_path / "bin", "nvidia-smi",
              'echo "NVIDIA-SMI has failed: no NVIDIA driver." >&2\nexit 1')
    gpus, notes = await probe_nvidia({"PATH": str(tmp_path / "bin")}, use_nvml=False)
    assert gpus == [] and any("exited 1" in n and "NVIDIA driver" in n for n in notes)


async def test_missing_tool_is_a_reason_not_an_error(tmp_path: Path) -> None:
    out, reason = await run_tool(["nvidia-smi"], env={"PATH": str(tmp_path)})
    assert out is None and reason == "nvidia-smi not found"


@posix_only
async def test_detect_gpus_linux_combines_probes(tmp_path: Path) -> None:
    fake_tool(tmp_path / "bin", "nvidia-smi", "echo '0, NVIDIA GeForce RTX 3060, 12288, 11000, 1288'")
    report = await detect_gpus(root=make_sysfs(tmp_path / "root"), env={"PATH": str(tmp_path / "bin")},
                               platform="linux", use_nvml=False)
    assert [d.vendor for d in report.gpus] == ["nvidia", "amd", "amd", "intel", "intel"]
    assert report.ram is not None and 0 < report.ram.available <= report.ram.total


@posix_only
async def test_detect_gpus_nothing_found_says_so(tmp_path: Path) -> None:
    report = await detect_gpus(root=tmp_path, env={"PATH": str(tmp_path)}, platform="linux", use_nvml=False)
    assert report.gpus == [] and "no GPU found" in report.notes
    assert any("nvidia-smi not found" in n for n in report.notes)


@posix_only
async def test_apple_via_fake_sysctl(tmp_path: Path) -> None:
    fake_tool(tmp_path / "bin", "sysctl", 'case "$2" in hw.memsize) echo 34359738368;; '
              'iogpu.wired_limit_mb) echo 0;; machdep.cpu.brand_string) echo "Apple M1 Max";; esac')
    (gpu,), _ = await probe_apple({"PATH": str(tmp_path / "bin")})
    assert gpu.unified and gpu.name == "Apple M1 Max"
    assert gpu.total == 32 * GiB * 2 // 3  # 21,845.33 MiB: the value Metal reports on a 32 GB M1 Max


def test_apple_working_set_rules() -> None:
    assert apple_working_set(32 * GiB, None) == 32 * GiB * 2 // 3
    assert apple_working_set(64 * GiB, 0) == 48 * GiB  # 3/4 above 36 GiB
    assert apple_working_set(64 * GiB, 57344) == 56 * GiB  # iogpu.wired_limit_mb wins


LIST_DEVICES = """ggml_cuda_init: found 2 CUDA devices:
Available devices:
  CUDA0: NVIDIA GeForce RTX 4060 Ti (16379 MiB, 14900 MiB free)
  CUDA1: NVIDIA GeForce RTX 3090 (24135 MiB, 23800 MiB free)
  Vulkan0: AMD Radeon RX 7900 XTX (RADV NAVI31) (24560 MiB, 24000 MiB free)
  Metal: Apple M3 Max (98304 MiB, 98303 MiB free)
"""


def test_llama_server_list_devices() -> None:
    gpus = parse_llama_list_devices(LIST_DEVICES)
    assert [(g.vendor, g.index, g.free) for g in gpus] == [
        ("nvidia", 0, 14900 * MiB), ("nvidia", 1, 23800 * MiB), ("amd", 0, 24000 * MiB),
        ("apple", 0, 98303 * MiB)]
    assert gpus[2].name == "AMD Radeon RX 7900 XTX (RADV NAVI31)" and gpus[3].unified


@posix_only
async def test_detect_prefers_llama_server_when_asked(tmp_path: Path) -> None:
    fake_tool(tmp_path / "bin", "llama-server", f"printf '%s' '{LIST_DEVICES}'")
    report = await detect_gpus(env={"PATH": str(tmp_path / "bin")}, platform="linux", root=tmp_path,
                               use_nvml=False, prefer_llama_server=True)
    assert len(report.gpus) == 4 and report.gpus[0].source == "llama-server (CUDA)"


@pytest.mark.skipif(sys.platform == "win32", reason="checks the soft failure off Windows")
async def test_windows_probes_fail_soft_elsewhere(tmp_path: Path) -> None:
    report = await detect_gpus(env={"PATH": str(tmp_path)}, platform="win32", use_nvml=False)
    assert report.gpus == []
    assert any(n.startswith("windows: DXGI: OSError") for n in report.notes)
    assert any("registry: OSError" in n for n in report.notes)
