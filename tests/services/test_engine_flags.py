"""The llama-server command line from the fit plan, and where the binary is found."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from victor_gui.services.engine_binary import EXE, STAMP_NAME, find_llama_server
from victor_gui.services.engine_flags import LaunchFlags, find_mmproj, llama_server_args, tensor_split
from victor_gui.sizing.architecture import ModelArchitecture
from victor_gui.sizing.fit import FitOptions, FitResult, estimate_fit
from victor_gui.sizing.hardware import GpuDevice, RamInfo

GiB = 1 << 30


def _arch() -> ModelArchitecture:
    # A 7B-class llama: 32 layers, GQA 8 KV heads, 4 GiB of weights.
    return ModelArchitecture(arch="llama", n_layer=32, n_embd=4096, n_ff=14336, n_head=[32] * 32,
                             n_head_kv=[8] * 32, head_dim_k=128, head_dim_v=128, n_ctx_train=32768,
                             n_vocab=32000, layer_weight_bytes=[120 << 20] * 32,
                             token_embd_bytes=70 << 20, output_bytes=100 << 20)


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_full_offload_flags_follow_the_plan() -> None:
    opts = FitOptions(n_ctx=16384, cache_type_k="q8_0", cache_type_v="q8_0", flash_attention=True)
    gpu = GpuDevice("nvidia", "RTX 4090", 24 * GiB, 23 * GiB)
    fit = estimate_fit(_arch(), [gpu], RamInfo(64 * GiB, 48 * GiB), opts)
    assert fit.verdict == "full"
    args = llama_server_args(fit, opts, LaunchFlags("/m/model.gguf", 40001))
    assert _flag(args, "-m") == "/m/model.gguf"
    assert _flag(args, "--host") == "127.0.0.1" and _flag(args, "--port") == "40001"
    assert _flag(args, "-c") == "16384" and _flag(args, "-np") == "1"
    assert _flag(args, "-ngl") == str(fit.n_gpu_layers) == "33"  # 32 blocks + the output layer
    assert _flag(args, "-fa") == "on"
    assert _flag(args, "--cache-type-k") == "q8_0" and _flag(args, "--cache-type-v") == "q8_0"
    assert "--jinja" in args and "--tensor-split" not in args and "--mmproj" not in args


def test_partial_offload_and_cpu_only() -> None:
    opts = FitOptions(n_ctx=8192, flash_attention=False)
    small = GpuDevice("nvidia", "small", 3 * GiB, 3 * GiB)
    fit = estimate_fit(_arch(), [small], RamInfo(64 * GiB, 48 * GiB), opts)
    assert fit.verdict == "partial"
    args = llama_server_args(fit, opts, LaunchFlags("m.gguf", 1, n_ctx=4096))
    assert 0 < int(_flag(args, "-ngl")) == fit.n_gpu_layers < 33
    assert _flag(args, "-c") == "4096"  # the context typed in the window wins over the plan's
    assert _flag(args, "-fa") == "off"
    cpu = estimate_fit(_arch(), [], RamInfo(64 * GiB, 48 * GiB), opts)
    assert _flag(llama_server_args(cpu, opts, LaunchFlags("m.gguf", 1)), "-ngl") == "0"


def test_two_gpus_get_the_plans_tensor_split() -> None:
    opts = FitOptions(n_ctx=8192)
    gpus = [GpuDevice("nvidia", "a", 3 * GiB, 3 * GiB, index=0),
            GpuDevice("nvidia", "b", 3 * GiB, 3 * GiB, index=1)]
    fit: FitResult = estimate_fit(_arch(), gpus, RamInfo(64 * GiB, 48 * GiB), opts)
    layers = [u.layers + u.has_output for u in sorted(fit.devices, key=lambda u: u.device.index)]
    assert all(layers), layers  # both cards hold layers in this plan
    args = llama_server_args(fit, opts, LaunchFlags("m.gguf", 1))
    assert _flag(args, "--tensor-split") == ",".join(map(str, layers)) == tensor_split(fit)


def test_main_gpu_and_cpu_moe_reach_the_flags() -> None:
    opts = FitOptions(n_ctx=8192, main_gpu=1, cpu_moe=True)
    gpus = [GpuDevice("nvidia", "a", 24 * GiB, 23 * GiB, index=0),
            GpuDevice("nvidia", "b", 24 * GiB, 23 * GiB, index=1)]
    fit = estimate_fit(_arch(), gpus, RamInfo(64 * GiB, 48 * GiB), opts)
    args = llama_server_args(fit, opts, LaunchFlags("m.gguf", 1))
    assert args[args.index("-sm"):args.index("-sm") + 4] == ["-sm", "none", "-mg", "1"]
    assert "--tensor-split" not in args and "--cpu-moe" in args


def test_mmproj_beside_the_model(tmp_path: Path) -> None:
    model = tmp_path / "gemma-3-4b-it-Q4_K_M.gguf"
    model.write_bytes(b"GGUF")
    assert find_mmproj(model) is None
    (tmp_path / "mmproj-gemma-3-4b-f16.gguf").write_bytes(b"GGUF")
    (tmp_path / "notes.txt").write_text("x")
    assert find_mmproj(model) == str(tmp_path / "mmproj-gemma-3-4b-f16.gguf")
    assert find_mmproj(tmp_path / "mmproj-gemma-3-4b-f16.gguf") is None  # not for the projector itself
    fit = estimate_fit(_arch(), [], None, FitOptions())
    args = llama_server_args(fit, FitOptions(), LaunchFlags(str(model), 1, mmproj=find_mmproj(model)))
    assert _flag(args, "--mmproj").endswith("mmproj-gemma-3-4b-f16.gguf")


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_binary_search_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"PATH": str(tmp_path / "bin"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    none = find_llama_server(None, env, home)
    assert none.path is None and "PATH" in none.reason and "Settings" in none.reason
    lmstudio = _exe(home / ".lmstudio" / "extensions" / "backends" / "llama.cpp-linux-x86_64-1.50" / EXE)
    assert find_llama_server(None, env, home).path == lmstudio
    cached = _exe(tmp_path / "cache" / "victor_gui" / "llama-server" / "0.3.36-O3" / EXE)
    assert find_llama_server(None, env, home).path == lmstudio  # an unfinished build (no stamp) is skipped
    (cached.parent / STAMP_NAME).write_text("{}")
    assert find_llama_server(None, env, home).path == cached
    on_path = _exe(tmp_path / "bin" / EXE)
    assert find_llama_server(None, env, home).path == on_path
    chosen = _exe(tmp_path / "chosen" / EXE)
    assert find_llama_server(str(chosen.parent), env, home).path == chosen  # a folder counts
    assert find_llama_server(str(chosen), env, home).path == chosen
    if sys.platform == "win32":
        # Windows runs by extension (no execute bit): ".exe" may be left out of the setting, and
        # a file without it is not started.
        assert find_llama_server(str(chosen.with_suffix("")), env, home).path == chosen
        not_runnable = chosen.with_suffix(".txt")
        not_runnable.write_text("#!/bin/sh\n")
    else:
        not_runnable = chosen
        os.chmod(chosen, 0o644)
    found = find_llama_server(str(not_runnable), env, home)  # the search goes on, and says where it looked
    assert found.path == on_path and str(not_runnable) in found.looked[0]
