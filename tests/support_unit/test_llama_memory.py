"""The ``-lv 4`` log parser and the committed memory ground-truth table
(tests/data/llama_memory_ground_truth.json, written by ``python -m tests.support.llama_memory``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.llama_memory import (
    BYTES_PER_ELEMENT,
    MemoryLogError,
    kv_bytes,
    mib_as_printed,
    parse_memory_log,
)
from tests.support.tiny_gguf import make_tiny_gguf, tiny_dims

TABLE = Path(__file__).resolve().parents[1] / "data" / "llama_memory_ground_truth.json"

# Lines as llama-server 0.3.36 (-lv 4) prints them, with a second backend added to the buffer
# lines to check that per-backend sizes are summed.
LOG = """\
0.00.078.037 I print_info: n_ctx_train           = 4096
0.00.078.038 I print_info: n_layer               = 3
0.00.078.044 I print_info: n_head_kv             = 2
0.00.078.046 I print_info: n_embd_head_k         = 32
0.00.078.046 I print_info: n_embd_head_v         = 64
0.00.078.435 I load_tensors:   CPU_Mapped model buffer size =     0.70 MiB
0.00.078.436 I load_tensors:        CUDA0 model buffer size =     1.25 MiB
0.00.080.398 I llama_context: n_ctx                 = 1024
0.00.080.411 I llama_context: n_ctx_seq             = 1024
0.00.080.424 I llama_context: n_batch               = 2048
0.00.080.437 I llama_context: n_ubatch              = 512
0.00.080.464 I llama_context: flash_attn            = auto
0.00.080.573 I llama_context:        CPU  output buffer size =     0.01 MiB
0.00.081.836 I llama_kv_cache: size =    0.56 MiB (  1024 cells,   3 layers,  1/1 seqs), \
    K (q8_0):    0.20 MiB, V (q4_0):    0.21 MiB
0.00.084.115 I resolve_fused_ops: Flash Attention enabled
0.00.089.676 I sched_reserve:        CPU compute buffer size =     6.01 MiB
0.00.089.677 I sched_reserve:      CUDA0 compute buffer size =     2.50 MiB
"""


def test_parser_reads_every_size_and_sums_backends() -> None:
    r = parse_memory_log(LOG)
    assert (r.model_buffer_mib, r.compute_buffer_mib, r.output_buffer_mib) == (1.95, 8.51, 0.01)
    assert (r.kv_mib, r.k_mib, r.v_mib) == (0.56, 0.20, 0.21)
    assert (r.kv_cells, r.kv_layers, r.cache_type_k, r.cache_type_v) == (1024, 3, "q8_0", "q4_0")
    assert (r.n_ctx, r.n_batch, r.n_ubatch) == (1024, 2048, 512)
    assert (r.n_layer, r.n_head_kv, r.head_dim_k, r.head_dim_v) == (3, 2, 32, 64)
    assert r.flash_attn is True


def test_flash_attention_setting_wins_over_auto_resolution() -> None:
    off = LOG.replace("flash_attn            = auto", "flash_attn            = disabled")
    assert parse_memory_log(off).flash_attn is False
    auto_off = LOG.replace("Flash Attention enabled", "Flash Attention disabled")
    assert parse_memory_log(auto_off).flash_attn is False


@pytest.mark.parametrize("line", ["llama_kv_cache: size", "compute buffer size", "n_ubatch", "flash_attn"])
def test_a_missing_line_is_an_error_not_a_zero(line: str) -> None:
    text = "\n".join(x for x in LOG.splitlines() if line not in x)
    with pytest.raises(MemoryLogError):
        parse_memory_log(text)


def test_kv_formula_and_printing() -> None:
    # 4096 cells x 2 layers x 2 KV heads x 32 dims x 2 bytes, for K and for V
    assert kv_bytes(4096, 2, 2, 32, 32, "f16", "f16") == (1 << 20, 1 << 20)
    assert kv_bytes(512, 1, 1, 32, 32, "q8_0", "q4_0") == (512 * 34, 512 * 18)
    assert BYTES_PER_ELEMENT["q4_0"] * 32 == 18
    assert mib_as_printed(589824) == 0.56  # 0.5625 prints as 0.56 (round-half-even, like %.2f)
    with pytest.raises(ValueError):
        kv_bytes(1, 1, 1, 8, 8, "q8_0", "q8_0")  # 8.5 bytes: not a whole block


def _table() -> list[dict]:
    return json.loads(TABLE.read_text())


def test_table_covers_the_required_matrix() -> None:
    rows = _table()
    assert {r["arch"] for r in rows} >= {"llama", "qwen2", "qwen3"}
    assert len({r["ctx"] for r in rows}) >= 3
    assert {r["cache_type_k"] for r in rows} == {"f16", "q8_0", "q4_0"}
    keys = {"arch", "ftype", "n_ctx_train", "seed", "ctx", "cache_type_k", "cache_type_v", "flash_attn",
            "model_buffer_bytes", "model_buffer_mib", "kv_bytes", "k_bytes", "v_bytes",
            "compute_buffer_bytes", "output_buffer_bytes", "n_layer", "n_head_kv", "head_dim"}
    assert all(keys <= set(r) for r in rows)


def test_table_kv_sizes_equal_the_formula_exactly() -> None:
    """Every KV total and K/V part in the table is the formula's byte count as llama.cpp prints
    it (two decimals of MiB) -- this checks the parser and the formula together."""
    for r in _table():
        k, v = kv_bytes(r["kv_cells"], r["n_layer"], r["n_head_kv"], r["head_dim_k"], r["head_dim_v"],
                        r["cache_type_k"], r["cache_type_v"])
        where = f"{r['arch']} {r['ftype']} c={r['ctx']} {r['cache_type_k']}"
        assert (mib_as_printed(k), mib_as_printed(v), mib_as_printed(k + v)) == (
            r["k_mib"], r["v_mib"], r["kv_mib"]), where
        assert abs(r["kv_bytes"] - (k + v)) <= 5243, where  # 0.005 MiB, rounded up


def test_table_context_and_flash_attention_rules() -> None:
    for r in _table():
        asked = r["ctx"] or r["n_ctx_train"]  # -c 0 means the trained context
        assert r["n_ctx"] == -(-asked // 256) * 256, r  # padded up to a multiple of 256
        assert r["kv_cells"] == r["n_ctx"]
        if r["cache_type_v"] != "f16":
            assert r["flash_attn"], r  # a quantized V cache forces flash attention on
        if r["flash_attn_arg"] == "off":
            assert not r["flash_attn"]


def test_table_models_regenerate_from_their_records(tmp_path: Path) -> None:
    seen: dict[str, int] = {}
    for r in _table():
        key = json.dumps(r["make_tiny_gguf_kwargs"], sort_keys=True)
        if key in seen:
            continue
        kwargs = r["make_tiny_gguf_kwargs"]
        path = make_tiny_gguf(tmp_path / f"{len(seen)}.gguf", **kwargs)
        seen[key] = path.stat().st_size
        assert seen[key] == r["model_file_bytes"], kwargs
        dims = tiny_dims(**{k: v for k, v in kwargs.items()
                            if k not in ("arch", "ftype", "n_ctx_train", "seed")})
        assert (dims.n_layer, dims.n_head_kv, dims.head_dim) == (r["n_layer"], r["n_head_kv"], r["head_dim"])
    assert len(seen) >= 6
