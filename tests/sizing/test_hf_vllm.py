"""Hugging Face config + safetensors headers, and the vLLM estimate (hand-computed)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from victor_gui.errors import GGUFError
from victor_gui.sizing.architecture import ModelArchitecture
from victor_gui.sizing.fit_vllm import VllmOptions, estimate_vllm, kv_bytes_for_len
from victor_gui.sizing.hf_reader import from_hf_config, parse_safetensors_header, read_safetensors_header

MiB, GiB = 1 << 20, 1 << 30

LLAMA3_8B = {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096, "intermediate_size": 14336,
             "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 131072,
             "vocab_size": 128256, "tie_word_embeddings": False}


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]], *, data: bool = True) -> bytes:
    """A safetensors file written by hand from the format (8-byte length + JSON + data)."""
    sizes = {"F32": 4, "BF16": 2, "F16": 2, "I8": 1}
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + (bytes(offset) if data else b"")


def tiny_tensors(n_layer: int = 2, lm_head: bool = True) -> dict[str, tuple[str, list[int]]]:
    t: dict[str, tuple[str, list[int]]] = {"model.embed_tokens.weight": ("BF16", [1000, 64])}
    for i in range(n_layer):
        t[f"model.layers.{i}.self_attn.q_proj.weight"] = ("BF16", [64, 64])
        t[f"model.layers.{i}.mlp.up_proj.weight"] = ("BF16", [128, 64])
    t["model.norm.weight"] = ("F32", [64])
    if lm_head:
        t["lm_head.weight"] = ("BF16", [1000, 64])
    return t


async def test_safetensors_header_local_file(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(safetensors_bytes(tiny_tensors()))
    sizes = await read_safetensors_header(path)
    # embed 1,000 × 64 × 2 = 128,000; per layer 64 × 64 × 2 + 128 × 64 × 2 = 24,576; norm 256.
    assert sizes["model.embed_tokens.weight"] == 128_000
    assert sizes["model.layers.1.mlp.up_proj.weight"] == 16_384
    arch = from_hf_config({**LLAMA3_8B, "num_hidden_layers": 2}, sizes)
    assert arch.layer_weight_bytes == [24_576, 24_576]
    assert arch.token_embd_bytes == 128_000 and arch.output_bytes == 128_000 + 256
    assert not arch.tied_embeddings


def test_tied_when_lm_head_is_absent() -> None:
    sizes = parse_safetensors_header(safetensors_bytes(tiny_tensors(lm_head=False), data=False))
    arch = from_hf_config({**LLAMA3_8B, "num_hidden_layers": 2}, sizes)
    assert arch.tied_embeddings and arch.output_bytes == 256 + 128_000  # norm + llama.cpp's duplicate


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x01\x02", "truncated"),
    (struct.pack("<Q", 1 << 40), "limit"),
    (struct.pack("<Q", 100) + b"{}", "truncated"),
    (struct.pack("<Q", 5) + b"nope!", "bad_value"),
    (struct.pack("<Q", 2) + b"[]", "bad_value"),
])
def test_hostile_safetensors(data: bytes, reason: str) -> None:
    with pytest.raises(GGUFError) as info:
        parse_safetensors_header(data)
    assert info.value.reason == reason


def test_safetensors_shape_and_range_must_agree() -> None:
    raw = json.dumps({"x": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 10]}}).encode()
    with pytest.raises(GGUFError, match="disagree"):
        parse_safetensors_header(struct.pack("<Q", len(raw)) + raw)
    raw = json.dumps({"x": {"dtype": "Q99", "shape": [4], "data_offsets": [0, 4]}}).encode()
    with pytest.raises(GGUFError, match="unknown dtype"):
        parse_safetensors_header(struct.pack("<Q", len(raw)) + raw)


def test_hf_gemma3_layer_types_and_mla_and_hybrid() -> None:
    gemma = {"model_type": "gemma3", "text_config": {
        "model_type": "gemma3_text", "num_hidden_layers": 12, "hidden_size": 2560, "num_attention_heads": 8,
        "num_key_value_heads": 4, "head_dim": 256, "sliding_window": 1024, "max_position_embeddings": 131072}}
    arch = from_hf_config(gemma)
    assert [i for i, s in enumerate(arch.swa_layers) if not s] == [5, 11] and arch.head_dim_k == 256
    explicit = {**LLAMA3_8B, "num_hidden_layers": 4, "sliding_window": 4096,
                "layer_types": ["sliding_attention", "full_attention"] * 2}
    assert from_hf_config(explicit).swa_layers == [True, False, True, False]
    deepseek = {"model_type": "deepseek_v3", "num_hidden_layers": 61, "hidden_size": 7168,
                "num_attention_heads": 128, "kv_lora_rank": 512, "qk_rope_head_dim": 64, "v_head_dim": 128}
    mla = from_hf_config(deepseek)
    assert mla.mla and mla.head_dim_k == 576 and mla.head_dim_v == 0
    jamba = {"model_type": "jamba", "num_hidden_layers": 4, "hidden_size": 64, "num_attention_heads": 4,
             "layers_block_type": ["mamba", "mamba", "attention", "mamba"]}
    assert from_hf_config(jamba).n_head_kv == [0, 0, 4, 0]


def llama8b() -> ModelArchitecture:
    arch = from_hf_config(LLAMA3_8B)
    arch.layer_weight_bytes = [448 * MiB] * 32  # 14 GiB of layers
    arch.token_embd_bytes = GiB
    arch.output_bytes = GiB
    return arch


def test_vllm_kv_blocks() -> None:
    arch = llama8b()
    # Per token per layer: 8 heads × (128 + 128) × 2 B = 4,096 B; × 32 layers = 131,072 B.
    # 8,192 tokens = 512 blocks of 16: 8,192 × 131,072 = 1 GiB. 8,193 tokens take a 513th block.
    assert kv_bytes_for_len(arch, VllmOptions(), 8192) == GiB
    assert kv_bytes_for_len(arch, VllmOptions(), 8193) == GiB + 16 * 131_072
    # fp8 halves it; TP=2 halves it per GPU.
    assert kv_bytes_for_len(arch, VllmOptions(kv_cache_dtype="fp8"), 8192) == GiB // 2
    assert kv_bytes_for_len(arch, VllmOptions(tensor_parallel_size=2), 8192) == GiB // 2


def test_vllm_fit_and_max_model_len() -> None:
    arch = llama8b()
    arch.n_ctx_train = 1_000_000
    total = 80 * GiB
    small = VllmOptions(max_model_len=8192, max_num_batched_tokens=2048, max_num_seqs=256,
                        non_torch_bytes=512 * MiB)
    fit = estimate_vllm(arch, total, 79 * GiB, small)
    # pool = 0.9 × 85,899,345,920 = 77,309,411,328 B.
    # activation = 2,048 × (4 × 4,096 + 2 × 14,336) × 2 B + 256 × 128,256 × 4 B
    #            = 184,549,376 + 131,334,144 = 315,883,520 B.
    # available = pool − weights 16 GiB − activation − 512 MiB non-torch = 59,276,787,712 B.
    assert fit.pool == 77_309_411_328 and fit.activation == 315_883_520
    assert fit.kv_available == 59_276_787_712 and fit.fits
    # Largest length: 59,276,787,712 / (16 × 131,072) = 28,265.2 blocks -> 28,265 × 16 = 452,240.
    assert fit.max_model_len == 452_240


def test_vllm_needs_the_pool_free() -> None:
    fit = estimate_vllm(llama8b(), 24 * GiB, 20 * GiB, VllmOptions(max_model_len=8192))
    # pool 0.9 × 24 GiB = 21.6 GiB > 20 GiB free: vLLM refuses to start whatever the model size.
    assert not fit.fits and "free at start-up" in fit.reason


def test_vllm_kv_too_big_reports_the_estimated_maximum() -> None:
    arch = llama8b()
    fit = estimate_vllm(arch, 24 * GiB, 24 * GiB, VllmOptions(max_model_len=131072))
    assert not fit.fits and "estimated maximum model length is" in fit.reason
    assert 0 < fit.max_model_len < 131072
    assert kv_bytes_for_len(arch, VllmOptions(), fit.max_model_len) <= fit.kv_available
    assert kv_bytes_for_len(arch, VllmOptions(), fit.max_model_len + 16) > fit.kv_available


def test_vllm_sliding_window_caps_kv() -> None:
    gemma = from_hf_config({"model_type": "gemma3_text", "num_hidden_layers": 6, "hidden_size": 2560,
                            "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
                            "sliding_window": 1024})
    # Per token per layer: 4 × 512 × 2 = 4,096 B. Global layer 5: 32,768 tokens × 4,096 = 128 MiB.
    # SWA layers hold min(1,024 − 1 + 2,048, 32,768) + 16 = 3,087 tokens -> 193 blocks = 3,088 tokens:
    # 5 × 3,088 × 4,096 = 63,242,240 B.
    assert kv_bytes_for_len(gemma, VllmOptions(), 32768) == 128 * MiB + 63_242_240


def qwen3_235b_fp8() -> ModelArchitecture:
    """Qwen3-235B-A22B-FP8 from its config and tensor sizes (FP8 weights with 128×128 block
    scales, bf16 embeddings, router and norms): 236.5 GB in all."""
    config = {"model_type": "qwen3_moe", "num_hidden_layers": 94, "hidden_size": 4096,
              "num_attention_heads": 64, "num_key_value_heads": 4, "head_dim": 128,
              "intermediate_size": 12288, "moe_intermediate_size": 1536, "num_experts": 128,
              "num_experts_per_tok": 8, "vocab_size": 151936, "max_position_embeddings": 40960,
              "tie_word_embeddings": False}
    sizes: dict[str, int] = {"model.embed_tokens.weight": 151936 * 4096 * 2,
                             "lm_head.weight": 151936 * 4096 * 2, "model.norm.weight": 4096 * 2}

    def fp8(name: str, rows: int, cols: int) -> None:
        sizes[name + ".weight"] = rows * cols
        sizes[name + ".weight_scale_inv"] = -(-rows // 128) * -(-cols // 128) * 4

    for i in range(94):
        p = f"model.layers.{i}."
        for proj, rows, cols in (("q_proj", 8192, 4096), ("k_proj", 512, 4096), ("v_proj", 512, 4096),
                                 ("o_proj", 4096, 8192)):
            fp8(p + "self_attn." + proj, rows, cols)
        for e in range(128):
            for proj, rows, cols in (("gate_proj", 1536, 4096), ("up_proj", 1536, 4096),
                                     ("down_proj", 4096, 1536)):
                fp8(f"{p}mlp.experts.{e}.{proj}", rows, cols)
        sizes[p + "mlp.gate.weight"] = 128 * 4096 * 2
        for norm in ("input_layernorm", "post_attention_layernorm"):
            sizes[p + norm + ".weight"] = 4096 * 2
    return from_hf_config(config, sizes)


def test_vllm_qwen3_235b_fp8_tp4_on_h100_kv_capacity() -> None:
    # vllm-project/vllm#21348: `vllm serve Qwen3-235B-A22B-FP8 --tensor-parallel-size 4` on four
    # H100 80 GB logged "Available KV cache memory: 8.11 GiB" and "GPU KV cache size: 178,880 tokens".
    arch = qwen3_235b_fp8()
    assert 236e9 < arch.weight_bytes < 237e9
    h100 = int(79.22 * GiB)  # what torch reports for an H100 80 GB (vllm-project/vllm#10511)
    fit = estimate_vllm(arch, h100, h100, VllmOptions(tensor_parallel_size=4, max_model_len=40960))
    assert fit.fits
    # Per GPU: pool 0.9 × 79.22 = 71.30 GiB; weights 55.1 GiB; activation 1.2 GiB (8,192 tokens,
    # 1,024 sequences on a ≥ 70 GiB GPU); non-torch 4 × 1.79 GiB.
    assert fit.kv_available == pytest.approx(8.11 * GiB, rel=0.05)
    # One KV head per rank (4 / TP 4): 16 tokens × (128 + 128) × 2 B × 94 layers = 770,048 B a block.
    assert fit.kv_tokens % 16 == 0 and fit.kv_tokens == fit.kv_available // 770_048 * 16
    assert fit.kv_tokens == pytest.approx(178_880, rel=0.05)
    # The longest single request is the memory's answer, not the 40,960 trained length.
    assert fit.max_model_len > 170_000
    assert fit.max_concurrency == pytest.approx(fit.kv_available / kv_bytes_for_len(
        arch, VllmOptions(tensor_parallel_size=4), 40960))
    # --gpu-memory-utilization 0.95 gives 0.05 × 79.22 = 3.96 GiB more KV per GPU.
    more = estimate_vllm(arch, h100, h100, VllmOptions(tensor_parallel_size=4, gpu_memory_utilization=0.95))
    assert more.kv_available - fit.kv_available == pytest.approx(0.05 * h100, abs=2)


def test_vllm_llama3_8b_on_h100_matches_the_profiler_log() -> None:
    # vllm-project/vllm#10511 (H100, TP 1): weights 14.96 GiB, 71.29 GiB usable, 53.29 GiB for KV.
    arch = from_hf_config(LLAMA3_8B)
    arch.layer_weight_bytes = [int(14.96 * GiB - 2 * 128256 * 4096 * 2) // 32] * 32
    arch.token_embd_bytes = arch.output_bytes = 128256 * 4096 * 2
    h100 = int(79.22 * GiB)
    fit = estimate_vllm(arch, h100, h100, VllmOptions(max_num_seqs=256))  # 256 sequences then
    assert fit.kv_available == pytest.approx(53.29 * GiB, rel=0.02)
