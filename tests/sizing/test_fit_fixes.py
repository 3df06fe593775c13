"""Issue 17 part 5: the estimator against the published figures it used to get wrong.

Headers are written with ggml's own ``gguf.GGUFWriter`` (tests/sizing/gguf_factory.py) and read
back with our reader, so each case goes through the same path as a real file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gguf import GGMLQuantizationType as Q

from tests.sizing.gguf_factory import Spec, write_gguf
from tests.sizing.test_fit import OLD, dense
from victor_gui.errors import GGUFError
from victor_gui.sizing.architecture import ModelArchitecture, from_gguf, from_metadata
from victor_gui.sizing.fit import FitOptions, estimate_fit, kv_bytes_per_layer
from victor_gui.sizing.gguf_reader import read_gguf_file
from victor_gui.sizing.hardware import GpuDevice, RamInfo, backend_reserve

MiB, GiB = 1 << 20, 1 << 30
RAM = RamInfo(total=64 * GiB, available=60 * GiB)
# Qwen3.5 gated-delta-net keys (llama_model_qwen35::load_arch_hparams reads them all).
QWEN35_SSM = {"qwen35.ssm.conv_kernel": 4, "qwen35.ssm.inner_size": 4096, "qwen35.ssm.state_size": 128,
              "qwen35.ssm.group_count": 16, "qwen35.ssm.time_step_rank": 32}


async def _qwen35_9b(tmp_path: Path, name: str, extra: dict[str, Any], n_layer: int = 32,
                     arch: str = "qwen35") -> ModelArchitecture:
    # Qwen3.5-9B's shape: 32 blocks, n_embd 4,096, 16 heads, 4 KV heads of 256, FFN 12,288,
    # a 248,320-token vocabulary; Q6_K weights (6.7 GB).
    spec = Spec(arch=arch, n_layer=n_layer, n_embd=4096, n_head=16, n_head_kv=4, head_dim=256, n_ff=12288,
                n_vocab=248320, n_ctx_train=262144, wtype=Q.Q6_K,
                extra={**(QWEN35_SSM if arch == "qwen35" else {}), **extra})
    return from_gguf(await read_gguf_file(write_gguf(tmp_path / f"{name}.gguf", spec, header_only=True)))


LAYOUTS = {
    "full_attention_interval": ({"qwen35.full_attention_interval": 4}, 32),
    "recurrent_layers array": ({"qwen35.attention.recurrent_layers": [(i + 1) % 4 != 0 for i in range(32)]},
                               32),
    "neither key (default 4)": ({}, 32),
    "MTP block in block_count": ({"qwen35.nextn_predict_layers": 1}, 33),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
async def test_qwen35_9b_at_110k_is_the_11_5_gb_class_with_every_key_layout(tmp_path: Path, layout: str
                                                                            ) -> None:
    extra, n_layer = LAYOUTS[layout]
    arch = await _qwen35_9b(tmp_path, "q", extra, n_layer)
    # llama.cpp: 8 of the 32 trunk blocks attend (3, 7, ..., 31); an MTP block is not recurrent,
    # but it is not run either, so it has no KV cell and its tensors are not loaded.
    attends = [i for i in range(arch.n_layer) if arch.kv_heads(i)]
    assert attends == list(range(3, 32, 4))
    assert sum(arch.recurrent_layers) == 24
    kv = kv_bytes_per_layer(arch, FitOptions(), 110_000)
    # 8 layers × pad256(110,000) = 110,080 cells × 4 heads × (256 + 256) × 2 B = 3.67 GB (3.42 GiB),
    # plus 24 constant f32 states of (3 × (4,096 + 2 × 16 × 128) + 128 × 4,096) × 4 B.
    state = (3 * (4096 + 2 * 16 * 128) + 128 * 4096) * 4
    assert sum(kv) == 8 * 110_080 * 4 * 512 * 2 + 24 * state
    result = estimate_fit(arch, [GpuDevice("nvidia", "RTX 4090", 24 * GiB, 23 * GiB)], RAM,
                          FitOptions(n_ctx=110_000))
    # Published: LM Studio 22.9 GB, really about 11.5 GB. Weights 6.73 GB + KV 3.66 GB + compute,
    # reserve and margin: the 11.5 GB class.
    assert result.verdict == "full"
    assert 10.5e9 < result.total.total < 12.5e9, result.total.total


async def test_qwen35_read_as_all_attention_is_the_22_9_gb_mistake(tmp_path: Path) -> None:
    # The same shape with every layer attending (what LM Studio assumed): about twice the memory.
    arch = await _qwen35_9b(tmp_path, "all", {}, arch="qwen3")
    card = GpuDevice("nvidia", "A6000", 48 * GiB, 47 * GiB)
    result = estimate_fit(arch, [card], RAM, FitOptions(n_ctx=110_000))
    assert 21.5e9 < result.total.total < 24e9


def test_recurrent_layers_key_wins_over_the_interval_and_is_checked() -> None:
    md: dict[str, Any] = {"general.architecture": "qwen3next", "qwen3next.block_count": 4,
                          "qwen3next.attention.head_count": 4, "qwen3next.attention.head_count_kv": 2,
                          "qwen3next.attention.key_length": 64, "qwen3next.attention.value_length": 64,
                          "qwen3next.full_attention_interval": 2,
                          "qwen3next.attention.recurrent_layers": [True, True, True, False]}
    assert from_metadata(md, []).recurrent_layers == [True, True, True, False]
    md["qwen3next.attention.recurrent_layers"] = [True, False]
    with pytest.raises(GGUFError):
        from_metadata(md, [])


# --- several GPUs ------------------------------------------------------------------------------

def test_two_24gb_gpus_share_the_layers_by_free_memory() -> None:
    # 40 blocks of 1 GiB: too big for one 24 GiB card, so a fill-the-first-GPU plan had nothing
    # better than "partial"; llama.cpp splits by free memory: points 0.5 and 1, and layer k of
    # the 41 offloaded (the output is the 41st) goes to GPU 0 while k/41 < 0.5, so k = 0..20.
    arch = dense(n_layer=40)
    cards = [GpuDevice("nvidia", "RTX 3090", 24 * GiB, 23 * GiB, index=i) for i in range(2)]
    result = estimate_fit(arch, cards, RAM, FitOptions(n_ctx=4096))
    assert result.verdict == "full" and result.n_gpu_layers == 41
    assert [(u.device.index, u.layers) for u in result.devices] == [(0, 21), (1, 19)]
    assert result.devices[1].has_output  # the output layer is "layer n_layer", the last device's
    assert result.tensor_split == [21.0, 20.0]  # -ts that reproduces the plan (output counted)
    # Unequal free memory: points 12/35 and 1; k/31 < 12/35 for k = 0..10: 11 blocks on GPU 0.
    busy = [GpuDevice("nvidia", "a", 24 * GiB, 12 * GiB, index=0),
            GpuDevice("nvidia", "b", 24 * GiB, 23 * GiB, index=1)]
    split = estimate_fit(dense(n_layer=30), busy, RAM, FitOptions(n_ctx=4096))
    assert split.verdict == "full"
    assert [u.layers for u in split.devices] == [11, 19]


def test_tensor_split_and_main_gpu() -> None:
    arch = dense(n_layer=8)
    cards = [GpuDevice("nvidia", f"g{i}", 24 * GiB, 23 * GiB, index=i) for i in range(2)]
    ts = estimate_fit(arch, cards, RAM, FitOptions(tensor_split=(3, 1)))
    # -ts 3,1: points 0.75 and 1; layer k of 9 goes to GPU 0 while k/9 < 0.75 (k = 0..6).
    assert [u.layers for u in ts.devices] == [7, 1] and ts.devices[1].has_output
    one = estimate_fit(arch, cards, RAM, FitOptions(main_gpu=1))
    assert [(u.device.index, u.layers, u.has_output) for u in one.devices] == [(1, 8, True)]
    assert one.main_gpu == 1 and one.tensor_split == []


# --- the per-backend reserve and the margin ------------------------------------------------------

async def test_mistral_small_22b_at_49152_q8_kv_fully_offloads_on_a_24_gib_card(tmp_path: Path) -> None:
    # Mistral-Small-22B Q6_K (56 blocks, 48 heads, 8 KV heads of 128, FFN 16,384, 32,768 tokens)
    # at 49,152 cells with a q8_0 cache really loaded fully on a 24 GiB card (vram.md §6: KV
    # 5,712 MiB, compute 192 MiB). On GPU: 17.0 GiB weights + 5,712 MiB KV + 195 MiB compute.
    spec = Spec(arch="llama", n_layer=56, n_embd=6144, n_head=48, n_head_kv=8, head_dim=128, n_ff=16384,
                n_vocab=32768, n_ctx_train=131072, wtype=Q.Q6_K)
    arch = from_gguf(await read_gguf_file(write_gguf(tmp_path / "m.gguf", spec, header_only=True)))
    card = GpuDevice("nvidia", "RTX 4090", 24 * GiB, 24_000 * MiB)  # 576 MiB used by driver and desktop
    q8 = {"n_ctx": 49152, "cache_type_k": "q8_0", "cache_type_v": "q8_0"}
    result = estimate_fit(arch, [card], RAM, FitOptions(**q8))
    assert result.verdict == "full" and result.n_gpu_layers == 57
    assert result.gpu.kv == 5712 * MiB
    assert result.gpu.overhead == backend_reserve("cuda") == 448 * MiB
    assert result.margin == 256 * MiB
    # The old lump (457 MiB + 512 MiB margin) said "partial, 56 of 57".
    old = estimate_fit(arch, [card], RAM, FitOptions(**q8, **OLD))
    assert old.summary == "partial GPU offload (56 of 57 layers)"
    # The margin is the user's to set: 1 GiB (llama.cpp's --fit-target) brings the partial back.
    careful = estimate_fit(arch, [card], RAM, FitOptions(**q8, margin_bytes=GiB))
    assert careful.verdict == "partial" and careful.margin == GiB


def test_reserve_per_backend() -> None:
    reserves = {vendor: GpuDevice(vendor, "x", 8 * GiB, 8 * GiB).runtime_overhead
                for vendor in ("nvidia", "amd", "apple", "intel")}
    assert reserves == {"nvidia": 448 * MiB, "amd": 457 * MiB, "apple": 512 * MiB, "intel": 457 * MiB}
