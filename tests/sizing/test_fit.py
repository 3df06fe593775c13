"""The estimator against hand-computed cases (arithmetic in the comments) and vram.md's figures."""

from __future__ import annotations

from pathlib import Path

from tests.sizing.gguf_factory import Spec, write_gguf
from victor_gui.sizing.architecture import ModelArchitecture, from_gguf, from_metadata, from_ollama_show
from victor_gui.sizing.fit import (
    FitOptions,
    Measured,
    compute_bytes,
    estimate_fit,
    kv_bytes_per_layer,
    max_full_offload_ctx,
)
from victor_gui.sizing.gguf_reader import read_gguf_file
from victor_gui.sizing.hardware import GpuDevice, RamInfo

MiB, GiB = 1 << 20, 1 << 30
RAM = RamInfo(total=128 * GiB, available=100 * GiB)
# The reserve these hand computations were written with: Ollama's 457 MiB + a 512 MiB margin.
OLD = {"runtime_reserve_bytes": 457 * MiB, "margin_bytes": 512 * MiB}


def dense(n_layer: int = 32, n_head: int = 32, n_head_kv: int = 8, head_dim: int = 128, **kw: object
          ) -> ModelArchitecture:
    base: dict[str, object] = dict(
        arch="llama", n_layer=n_layer, n_embd=4096, n_ff=14336, n_head=[n_head] * n_layer,
        n_head_kv=[n_head_kv] * n_layer, head_dim_k=head_dim, head_dim_v=head_dim, head_dim_k_swa=head_dim,
        head_dim_v_swa=head_dim, n_ctx_train=131072, n_vocab=32000, swa_layers=[False] * n_layer,
        recurrent_layers=[False] * n_layer, layer_weight_bytes=[GiB] * n_layer,
        token_embd_bytes=250 * MiB, output_bytes=500 * MiB)
    base.update(kw)
    return ModelArchitecture(**base)  # type: ignore[arg-type]


def gpu(free_gib: float, total_gib: float = 24, vendor: str = "nvidia", **kw: object) -> GpuDevice:
    return GpuDevice(vendor, f"{vendor}-{free_gib}", int(total_gib * GiB), int(free_gib * GiB), **kw)  # type: ignore[arg-type]


# --- KV cache ----------------------------------------------------------------------------------

def test_gqa_kv_f16() -> None:
    # 8 KV heads × (128 + 128) × 2 B = 4,096 B per token per layer; × 32 layers × 8,192 = 1 GiB.
    assert sum(kv_bytes_per_layer(dense(), FitOptions(n_ctx=8192), 8192)) == GiB


def test_kv_pads_to_256_cells() -> None:
    # 1,000 cells are allocated as 1,024: 1,024 × 4,096 B × 32 layers = 128 MiB.
    assert sum(kv_bytes_per_layer(dense(), FitOptions(), 1000)) == 128 * MiB


def test_quantized_kv() -> None:
    arch = dense()
    # q8_0: a row of 8 × 128 = 1,024 elements is 32 blocks × 34 B = 1,088 B; K + V = 2,176 B per token
    # per layer; × 32 × 8,192 = 570,425,344 B (= 1 GiB × 34/64).
    q8 = FitOptions(cache_type_k="q8_0", cache_type_v="q8_0")
    assert sum(kv_bytes_per_layer(arch, q8, 8192)) == 570_425_344
    # q4_0 with flash attention: 32 blocks × 18 B = 576 B each; 1,152 × 32 × 8,192 = 301,989,888 B.
    q4 = FitOptions(cache_type_k="q4_0", cache_type_v="q4_0")
    assert sum(kv_bytes_per_layer(arch, q4, 8192)) == 301_989_888
    # Without flash attention V falls back to f16: (576 + 2,048) × 32 × 8,192 = 687,865,856 B.
    q4_nofa = FitOptions(cache_type_k="q4_0", cache_type_v="q4_0", flash_attention=False)
    assert sum(kv_bytes_per_layer(arch, q4_nofa, 8192)) == 687_865_856


def test_mistral_small_22b_q8_kv_matches_measured() -> None:
    # vram.md §6: Mistral-Small-22B (56 layers, 8 KV heads, head dim 128) at 49,152 with q8_0 K/V:
    # 2 × 1,088 B × 56 × 49,152 = 5,989,466,112 B = 5,712.0 MiB, as llama.cpp printed.
    arch = dense(n_layer=56, n_head=48)
    opts = FitOptions(cache_type_k="q8_0", cache_type_v="q8_0")
    assert sum(kv_bytes_per_layer(arch, opts, 49152)) == 5712 * MiB


def test_head_dim_from_key_length_not_embd_over_heads() -> None:
    # Gemma-style: n_embd 2,304 / 8 heads would say 288; key_length says 256.
    md = {"general.architecture": "gemma2", "gemma2.block_count": 2, "gemma2.embedding_length": 2304,
          "gemma2.attention.head_count": 8, "gemma2.attention.head_count_kv": 4,
          "gemma2.attention.key_length": 256, "gemma2.attention.value_length": 256}
    arch = from_metadata(md, [])
    assert (arch.head_dim_k, arch.head_dim_v) == (256, 256)


def gemma3(n_layer: int = 12) -> ModelArchitecture:
    md = {"general.architecture": "gemma3", "gemma3.block_count": n_layer, "gemma3.embedding_length": 2560,
          "gemma3.attention.head_count": 8, "gemma3.attention.head_count_kv": 4,
          "gemma3.attention.key_length": 256, "gemma3.attention.value_length": 256,
          "gemma3.attention.sliding_window": 1024, "gemma3.context_length": 131072}
    return from_metadata(md, [])


def test_sliding_window_gemma3_pattern() -> None:
    arch = gemma3()
    # Pattern 6: layer il is SWA when il % 6 < 5, so layers 5 and 11 are global.
    assert [i for i, swa in enumerate(arch.swa_layers) if not swa] == [5, 11]
    # Per token per layer: 4 heads × (256 + 256) × 2 B = 4,096 B.
    # Global: 2 layers × 32,768 cells × 4,096 = 268,435,456 B.
    # SWA: cells = min(32,768, pad256(1,024 window + 512 ubatch) = 1,536); 10 × 1,536 × 4,096 = 62,914,560 B.
    assert sum(kv_bytes_per_layer(arch, FitOptions(), 32768)) == 268_435_456 + 62_914_560
    # --swa-full caches the whole context in every layer: 12 × 32,768 × 4,096 = 1,610,612,736 B.
    assert sum(kv_bytes_per_layer(arch, FitOptions(swa_full=True), 32768)) == 1_610_612_736


def test_per_layer_swa_array_and_swa_head_dims() -> None:
    # Gemma-4 style: an explicit per-layer pattern and SWA layers with smaller heads (256 vs 512).
    md = {"general.architecture": "gemma4", "gemma4.block_count": 4, "gemma4.attention.head_count": 8,
          "gemma4.attention.head_count_kv": [2, 2, 2, 1], "gemma4.attention.key_length": 512,
          "gemma4.attention.value_length": 512, "gemma4.attention.key_length_swa": 256,
          "gemma4.attention.value_length_swa": 256, "gemma4.attention.sliding_window": 512,
          "gemma4.attention.sliding_window_pattern": [True, True, True, False]}
    arch = from_metadata(md, [])
    kv = kv_bytes_per_layer(arch, FitOptions(), 8192)
    # SWA layers: pad256(512 + 512) = 1,024 cells × 2 heads × (256 + 256) × 2 B = 2,097,152 B each.
    # Global layer 3: 8,192 cells × 1 head × (512 + 512) × 2 B = 16,777,216 B.
    assert kv == [2_097_152, 2_097_152, 2_097_152, 16_777_216]


def deepseek(mla: bool) -> ModelArchitecture:
    md: dict[str, object] = {
        "general.architecture": "deepseek2", "deepseek2.block_count": 61,
        "deepseek2.attention.head_count": 128,
        "deepseek2.attention.kv_lora_rank": 512, "deepseek2.rope.dimension_count": 64}
    if mla:  # re-converted GGUF: the cache holds the latent, one "head"
        md.update({"deepseek2.attention.head_count_kv": 1, "deepseek2.attention.key_length": 576,
                   "deepseek2.attention.value_length": 512, "deepseek2.attention.key_length_mla": 192,
                   "deepseek2.attention.value_length_mla": 128})
    else:
        md.update({"deepseek2.attention.head_count_kv": 128, "deepseek2.attention.key_length": 192,
                   "deepseek2.attention.value_length": 128})
    return from_metadata(md, [])


def test_mla_deepseek_v3() -> None:
    # vram.md §1.2, per token at f16 for 61 layers:
    # MLA, V-less cache: 576 × 2 B × 61 = 70,272 B.
    assert sum(kv_bytes_per_layer(deepseek(True), FitOptions(), 256)) == 70_272 * 256
    # Old non-MLA GGUF: 128 heads × (192 + 128) × 2 B × 61 = 4,997,120 B (the 70× range of pitfall 4).
    assert sum(kv_bytes_per_layer(deepseek(False), FitOptions(), 256)) == 4_997_120 * 256


def test_recurrent_mamba_state_is_fixed_f32() -> None:
    md = {"general.architecture": "mamba", "mamba.block_count": 4, "mamba.embedding_length": 768,
          "mamba.ssm.conv_kernel": 4, "mamba.ssm.inner_size": 1536, "mamba.ssm.state_size": 16}
    arch = from_metadata(md, [])
    # ((4 - 1) × (1,536 + 2 × 1 × 16) + 16 × 1,536) × 4 B = (4,704 + 24,576) × 4 = 117,120 B per layer,
    # whatever the context.
    assert kv_bytes_per_layer(arch, FitOptions(), 4096) == [117_120] * 4
    assert kv_bytes_per_layer(arch, FitOptions(), 65536) == [117_120] * 4


def test_hybrid_full_attention_interval() -> None:
    md = {"general.architecture": "qwen3next", "qwen3next.block_count": 8,
          "qwen3next.attention.head_count": 16,
          "qwen3next.attention.head_count_kv": 2, "qwen3next.attention.key_length": 256,
          "qwen3next.attention.value_length": 256, "qwen3next.full_attention_interval": 4}
    arch = from_metadata(md, [])
    kv = kv_bytes_per_layer(arch, FitOptions(), 4096)
    # Only layers 3 and 7 attend: 4,096 × 2 × 512 × 2 B = 8 MiB each; the others hold (no) SSM state here.
    assert [i for i, b in enumerate(kv) if b] == [3, 7] and kv[3] == 8 * MiB


# --- compute buffer: the published llama.cpp figures of vram.md §1.4 ---------------------------

def test_compute_buffer_flash_attention_off_and_on() -> None:
    mistral7b = dense(n_head=32)
    fa_off = FitOptions(flash_attention=False)
    # Mask 2,048 × 512 × 4 = 4 MiB + attention phase: scores 2,048 × 512 × 32 × 4 = 128 MiB
    # + 512 × 4 × (3 × 4,096 + 2 × 32 × 128) = 40 MiB (> FFN 118, logits 62.5): 172 MiB.
    # Published (vram.md §1.4): 164 MiB, so within 5 %.
    assert compute_bytes(mistral7b, fa_off, 2048, with_output=True) == 172 * MiB
    # 32,768: 64 + 2,048 + 40 = 2,152 MiB (published 2,144).
    assert compute_bytes(mistral7b, fa_off, 32768, with_output=True) == 2152 * MiB
    # Mistral-Small-22B, FA on, 49,152: f16 mask 49,152 × 512 × 2 = 48 MiB + FFN phase
    # 512 × 4 × (3 × 16,384 + 4 × 6,144) + 512 × 6,144 = 147 MiB (> logits 64): 195 MiB (published 192).
    small22b = dense(n_layer=56, n_head=48, n_embd=6144, n_ff=16384, n_vocab=32768)
    assert compute_bytes(small22b, FitOptions(), 49152, with_output=True) == 195 * MiB
    # Llama-3-8B, FA on, 8,192: the logits 512 × 128,256 × 4 = 250.5 MiB dominate; + 8 MiB mask.
    llama3 = dense(n_vocab=128256)
    assert compute_bytes(llama3, FitOptions(), 8192, with_output=True) == 8 * MiB + 512 * 128256 * 4
    # A device without the output layer has no logits: mask 8 + FFN 116 + 2 = 126 MiB.
    assert compute_bytes(llama3, FitOptions(), 8192, with_output=False) == 126 * MiB


# --- placement --------------------------------------------------------------------------------

def test_partial_offload_counts_layers() -> None:
    arch = dense(n_layer=10)
    # Per layer: 1 GiB weights + KV 4,096 B × 4,096 cells = 16 MiB -> 1,040 MiB.
    # Compute (FA on): 4 MiB mask (4,096 × 512 × 2) + max(FFN 512 × 4 × (3 × 14,336 + 4 × 4,096)
    # + 512 × 4,096 = 118 MiB, logits 512 × 32,000 × 4 = 62.5 MiB) = 122 MiB.
    # 8 GiB free: 8,192 - 457 (runtime) - 512 (margin) - 122 = 7,101 MiB -> 6 layers (6,240 MiB).
    result = estimate_fit(arch, [gpu(8)], RAM, FitOptions(n_ctx=4096, **OLD))
    assert result.verdict == "partial" and result.n_gpu_layers == 6 and result.n_layers_total == 11
    assert result.summary == "partial GPU offload (6 of 11 layers)"
    assert result.gpu.weights == 6 * GiB and result.gpu.kv == 6 * 16 * MiB
    assert result.gpu.compute == 122 * MiB and result.gpu.overhead == 457 * MiB
    assert result.gpu.margin == result.margin == 512 * MiB  # shown apart from the reserve
    # Host: token_embd 250 MiB + 4 layers + the output layer 500 MiB; KV of 4 layers.
    assert result.host.weights == 250 * MiB + 4 * GiB + 500 * MiB and result.host.kv == 4 * 16 * MiB
    assert result.total.weights == arch.weight_bytes


def test_full_offload_and_largest_context_closed_form() -> None:
    arch = dense(n_layer=10)
    result = estimate_fit(arch, [gpu(16)], RAM, FitOptions(n_ctx=4096, **OLD))
    assert result.verdict == "full" and result.n_gpu_layers == 11
    # Context-independent: 457 + 512 + weights (10 × 1,024 + 500) + compute (118 FFN phase)
    # = 11,827 MiB; 16,384 - 11,827 = 4,557 MiB = 4,778,360,832 B for context.
    # Per cell: KV 4,096 B × 10 layers + f16 mask 512 × 2 B = 41,984 B -> 113,814.0 cells,
    # rounded down to a multiple of 256: 113,664.
    assert result.max_full_offload_ctx == 113_664
    assert max_full_offload_ctx(arch, [gpu(16)], FitOptions(**OLD), limit=32768) == 32768


def test_largest_context_none_when_weights_do_not_fit() -> None:
    assert max_full_offload_ctx(dense(n_layer=10), [gpu(4)], FitOptions()) is None


def test_cpu_only_and_wont_fit() -> None:
    arch = dense(n_layer=10)
    cpu = estimate_fit(arch, [], RAM, FitOptions())
    assert cpu.verdict == "cpu" and cpu.n_gpu_layers == 0 and cpu.max_full_offload_ctx is None
    assert cpu.host.weights == arch.weight_bytes
    small = estimate_fit(arch, [gpu(4)], RamInfo(16 * GiB, 6 * GiB), FitOptions())
    assert small.verdict == "no_fit"


def test_multi_gpu_partial_splits_by_free_memory_with_compute_on_each() -> None:
    arch = dense(n_layer=10)
    result = estimate_fit(arch, [gpu(6, index=0), gpu(7, index=1)], RAM, FitOptions(**OLD))
    first, second = result.devices
    # llama.cpp's split by free memory: points 6/13 and 1. -ngl 9 offloads blocks 1..9; block
    # 1 + k goes to GPU 0 while k/9 < 6/13 (k = 0..4: 5 layers), the rest to GPU 1 (4 layers).
    # GPU 0: 969 + 122 + 5 × 1,040 = 6,291 MiB > 6,144 free, so 9 does not fit; -ngl 8: k/8 < 6/13
    # for k = 0..3: 4 layers (5,251 MiB) and 4 layers on the 7 GiB card (5,251 MiB).
    assert (first.device.index, first.layers) == (0, 4)
    assert (second.device.index, second.layers) == (1, 4)
    assert result.verdict == "partial" and result.n_gpu_layers == 8
    assert result.gpu.compute == 2 * 122 * MiB
    assert result.tensor_split == [4.0, 4.0]


def test_unified_memory_counts_against_ram() -> None:
    arch = dense(n_layer=10)
    apple = GpuDevice("apple", "M3", 24 * GiB, 24 * GiB, unified=True)
    assert estimate_fit(arch, [apple], RamInfo(32 * GiB, 30 * GiB)).verdict == "full"
    # The same plan on a machine whose RAM is mostly in use: the GPU share is RAM too.
    assert estimate_fit(arch, [apple], RamInfo(32 * GiB, 8 * GiB)).verdict == "no_fit"


async def test_tied_embeddings_from_a_real_header(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tied.gguf", Spec(tied=True), header_only=True)
    arch = from_gguf(await read_gguf_file(path))
    # token_embd: 1,000 × 256 × 2 B = 512,000 B stays in RAM; the output layer is its duplicate
    # plus output_norm 256 × 4 B: 513,024 B.
    assert arch.tied_embeddings and arch.token_embd_bytes == 512_000 and arch.output_bytes == 513_024
    result = estimate_fit(arch, [gpu(8)], RAM)
    assert result.verdict == "full" and result.host.weights == 512_000
    untied = from_gguf(await read_gguf_file(write_gguf(tmp_path / "u.gguf", Spec(), header_only=True)))
    assert not untied.tied_embeddings and untied.output_bytes == 513_024  # output.weight + norm


def test_over_95_percent_warning() -> None:
    # 2 × 10.5 GiB + 1 GiB output + 0.95 GiB reserve + ~0.13 GiB KV and compute ≈ 23.1 GiB > 95% of 24.
    arch = dense(n_layer=2, layer_weight_bytes=[21 * GiB // 2] * 2, output_bytes=GiB)
    result = estimate_fit(arch, [gpu(23.9, total_gib=24)], RAM, FitOptions(n_ctx=2048))
    assert result.verdict == "full" and any("95%" in w for w in result.warnings)


def test_mla_kv_plus_v_generation() -> None:
    # Engines before the V-less cache also kept V = kv_lora_rank: (576 + 512) × 2 B × 61 = 132,736 B.
    opts = FitOptions(mla_v_less=False)
    assert sum(kv_bytes_per_layer(deepseek(True), opts, 256)) == 132_736 * 256


def test_free_memory_not_total_decides() -> None:
    # A 24 GiB card with a desktop and another model on it: only 4 GiB free. Pitfall 8.
    busy = estimate_fit(dense(n_layer=10), [gpu(4, total_gib=24)], RAM, FitOptions(**OLD))
    # 4,096 - 969 - 122 = 3,005 MiB -> 2 layers of 1,040 MiB.
    assert busy.verdict == "partial" and busy.n_gpu_layers == 2


def test_sequences_share_the_context() -> None:
    # -c is the total across -np slots (pitfall 7): 4 sequences do not multiply full-attention KV...
    one = sum(kv_bytes_per_layer(dense(), FitOptions(n_seq=1), 8192))
    four = sum(kv_bytes_per_layer(dense(), FitOptions(n_seq=4), 8192))
    assert one == four == GiB
    # ...but each sequence gets its own sliding window: pad256(1,024 × 4 + 512) = 4,608 cells.
    arch = gemma3()
    swa_one = kv_bytes_per_layer(arch, FitOptions(n_seq=1), 32768)[0]
    swa_four = kv_bytes_per_layer(arch, FitOptions(n_seq=4), 32768)[0]
    assert (swa_one, swa_four) == (1536 * 4096, 4608 * 4096)


def test_measured_from_ollama_ps() -> None:
    m = Measured.from_ollama_ps({"name": "x", "size": 6_000_000_000, "size_vram": 5_500_000_000})
    assert (m.vram_bytes, m.total_bytes) == (5_500_000_000, 6_000_000_000)
    assert Measured.from_ollama_ps({"size_vram": "lots"}).vram_bytes is None


def test_ollama_show_without_tensors_spreads_file_size() -> None:
    show = {"model_info": {"general.architecture": "llama", "llama.block_count": 3,
                           "llama.attention.head_count": 8, "llama.attention.head_count_kv": 8,
                           "llama.embedding_length": 512, "tokenizer.ggml.tokens": None}}
    arch = from_ollama_show(show, size_bytes=4000)
    # 4,000 B over 3 layers + the output layer: 1,000 each.
    assert arch.layer_weight_bytes == [1000] * 3 and arch.output_bytes == 1000 and not arch.weights_exact
    result = estimate_fit(arch, [], RAM)
    assert any("file size" in w for w in result.warnings)


def test_partial_offload_keeps_logits_off_the_gpu() -> None:
    arch = dense(n_layer=10, n_vocab=128256)
    gpu_8400 = GpuDevice("nvidia", "card", 16 * GiB, 8400 * MiB)
    result = estimate_fit(arch, [gpu_8400], RAM, FitOptions(n_ctx=4096, **OLD))
    # Full offload would budget the logits: 4 + 512 × 128,256 × 4 B (250.5 MiB) = 254.5 MiB compute,
    # leaving 8,400 - 969 - 254.5 = 7,176.5 MiB -> 6 layers. Partial offload keeps the output on the
    # CPU, so the GPU needs only 4 + 118 = 122 MiB: 8,400 - 969 - 122 = 7,309 MiB -> 7 layers.
    assert result.verdict == "partial" and result.n_gpu_layers == 7
    assert result.gpu.compute == 122 * MiB
    assert result.host.compute == 4 * MiB + 512 * 128256 * 4  # the logits live with the output layer


async def test_cpu_moe_keeps_experts_in_ram(tmp_path: Path) -> None:
    from gguf import GGMLQuantizationType as Q

    spec = Spec(arch="qwen3moe", n_layer=4, n_embd=256, n_ff=512, n_expert=8, n_expert_used=2, wtype=Q.Q8_0)
    arch = from_gguf(await read_gguf_file(write_gguf(tmp_path / "moe.gguf", spec, header_only=True)))
    # Experts per layer: 3 × 8 × 512 × 256 q8_0 elements = 3,145,728 × 34 / 32 = 3,342,336 B.
    assert arch.layer_expert_bytes == [3_342_336] * 4
    dense_part = arch.layer_weight_bytes[0] - 3_342_336
    plain = estimate_fit(arch, [gpu(8)], RAM, FitOptions(n_ctx=2048))
    moe = estimate_fit(arch, [gpu(8)], RAM, FitOptions(n_ctx=2048, cpu_moe=True))
    assert plain.verdict == moe.verdict == "full"
    assert moe.gpu.weights == 4 * dense_part + arch.output_bytes
    assert moe.host.weights == arch.token_embd_bytes + 4 * 3_342_336
    assert moe.host.compute > 0  # the expert matmuls run on the CPU
