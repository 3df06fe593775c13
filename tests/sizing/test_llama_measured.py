"""KV and compute estimates against buffer sizes llama-server printed for generated tiny models.

Measured once (2026-11-21) with llama-server built from llama-cpp-python 0.3.36 (CPU backend,
``-lv 4``, ``-np 1``, ``-t 1``) on models from the llama branch's ``make_tiny_gguf`` (vocabulary
283, head_dim 32 unless noted); the printed MiB (2 decimals) are copied here so the suite needs
neither the binary nor the generator. KV must match to the printed precision; compute within 10 %.
Weights matched the printed model buffer to 0.01 MiB too; that check needs the generator and
lives in test_ground_truth.py.
"""

from __future__ import annotations

import pytest

from victor_gui.sizing.architecture import from_metadata
from victor_gui.sizing.fit import FitOptions, compute_bytes, kv_bytes_per_layer

MiB = 1 << 20

# (arch, n_layer, n_embd, n_ff, n_head, n_head_kv, head_dim, ctx, ctk, ctv, fa, ub,
#  kv MiB or None, compute MiB)
CASES = [
    ("llama", 2, 128, 256, 4, 2, 32, 2048, "f16", "f16", True, 512, 1.00, 4.01),
    ("llama", 2, 128, 256, 4, 2, 32, 2048, "f16", "f16", False, 512, 1.00, 21.51),
    ("qwen2", 2, 128, 256, 4, 2, 32, 1024, "q8_0", "q8_0", True, 512, 0.27, 3.01),
    ("qwen3", 3, 128, 256, 4, 2, 32, 4096, "f16", "f16", True, 512, 3.00, 6.26),
    ("llama", 2, 256, 512, 8, 2, 32, 8192, "q4_0", "q4_0", True, 512, 1.12, 12.01),
    ("llama", 2, 256, 512, 8, 2, 32, 8192, "f16", "f16", False, 512, 4.00, 146.76),
    ("llama", 2, 512, 1536, 8, 4, 64, 4096, "f16", "f16", True, 256, 8.00, 8.51),
    ("llama", 2, 128, 256, 4, 2, 32, 1000, "q8_0", "f16", False, 512, 0.38, 11.51),
    # flash attention on, ctx 2048, ub 512: n_ff from 1× to 4× n_embd
    ("llama", 2, 128, 128, 4, 2, 32, 2048, "f16", "f16", True, 512, None, 3.26),
    ("llama", 2, 128, 384, 4, 2, 32, 2048, "f16", "f16", True, 512, None, 5.26),
    ("llama", 2, 128, 512, 4, 2, 32, 2048, "f16", "f16", True, 512, None, 6.01),
    ("llama", 2, 128, 1024, 4, 2, 32, 2048, "f16", "f16", True, 512, None, 9.01),
    ("llama", 2, 128, 2048, 4, 2, 32, 2048, "f16", "f16", True, 512, None, 15.01),
    ("llama", 2, 256, 256, 8, 4, 32, 2048, "f16", "f16", True, 512, None, 4.51),
    ("llama", 2, 256, 768, 8, 4, 32, 2048, "f16", "f16", True, 512, None, 8.51),
    ("llama", 2, 256, 1024, 8, 4, 32, 2048, "f16", "f16", True, 512, None, 10.01),
    ("llama", 2, 512, 512, 16, 8, 32, 2048, "f16", "f16", True, 512, None, 7.01),
    ("llama", 2, 512, 1024, 16, 8, 32, 2048, "f16", "f16", True, 512, None, 10.01),
    ("llama", 2, 512, 1536, 16, 8, 32, 2048, "f16", "f16", True, 512, None, 15.01),
    ("llama", 2, 512, 2048, 16, 8, 32, 2048, "f16", "f16", True, 512, None, 18.01),
    ("llama", 2, 1024, 1024, 32, 16, 32, 2048, "f16", "f16", True, 512, None, 12.01),
    ("llama", 2, 1024, 2048, 32, 16, 32, 2048, "f16", "f16", True, 512, None, 18.01),
    ("llama", 2, 1024, 3072, 32, 16, 32, 2048, "f16", "f16", True, 512, None, 28.01),
    ("llama", 2, 1024, 4096, 32, 16, 32, 2048, "f16", "f16", True, 512, None, 34.01),
    ("llama", 2, 128, 256, 4, 2, 32, 4096, "f16", "f16", True, 512, None, 6.01),
    ("llama", 2, 128, 256, 4, 2, 32, 512, "f16", "f16", True, 512, None, 2.51),
    ("llama", 2, 128, 256, 4, 2, 32, 2048, "f16", "f16", True, 128, None, 1.00),
    ("llama", 2, 128, 256, 4, 2, 32, 2048, "f16", "f16", True, 1024, None, 8.02),
    # flash attention off: the n_kv × ub × n_head scores dominate
    ("llama", 2, 128, 256, 4, 2, 32, 2048, "f16", "f16", False, 128, None, 5.38),
    ("llama", 2, 128, 256, 4, 2, 32, 2048, "f16", "f16", False, 1024, None, 43.02),
    ("llama", 2, 256, 256, 4, 2, 32, 2048, "f16", "f16", False, 512, None, 22.26),
    ("llama", 2, 512, 256, 4, 2, 32, 2048, "f16", "f16", False, 512, None, 23.76),
    ("llama", 2, 128, 256, 8, 2, 32, 2048, "f16", "f16", False, 512, None, 38.01),
    ("llama", 2, 128, 256, 4, 2, 32, 4096, "f16", "f16", False, 512, None, 41.51),
    ("llama", 2, 128, 256, 4, 2, 32, 512, "f16", "f16", False, 512, None, 6.51),
]


IDS = [f"{c[0]}-e{c[2]}-ff{c[3]}-h{c[4]}-c{c[7]}-{c[8]}-fa{int(c[10])}-ub{c[11]}" for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_against_llama_server(case: tuple) -> None:  # type: ignore[type-arg]
    a, n_layer, n_embd, n_ff, n_head, n_head_kv, head_dim, ctx, ctk, ctv, fa, ub, kv_mib, compute_mib = case
    arch = from_metadata({"general.architecture": a, f"{a}.block_count": n_layer,
                          f"{a}.embedding_length": n_embd, f"{a}.feed_forward_length": n_ff,
                          f"{a}.attention.head_count": n_head, f"{a}.attention.head_count_kv": n_head_kv,
                          f"{a}.attention.key_length": head_dim, f"{a}.attention.value_length": head_dim,
                          f"{a}.vocab_size": 283}, [])
    opts = FitOptions(n_ctx=ctx, cache_type_k=ctk, cache_type_v=ctv, flash_attention=fa, n_ubatch=ub)
    if kv_mib is not None:
        assert sum(kv_bytes_per_layer(arch, opts, ctx)) / MiB == pytest.approx(kv_mib, abs=0.005)
    ours = compute_bytes(arch, opts, ctx, with_output=True) / MiB
    assert ours == pytest.approx(compute_mib, rel=0.10)
