"""The estimator against real llama-server buffer sizes (``tests/data/llama_memory_ground_truth.json``).

The JSON and :func:`tests.support.tiny_gguf.make_tiny_gguf` come from the ``llama`` branch:
every case regenerates its tiny model with the recorded generation parameters, reads the header
with our reader, and compares: weights and KV exact (to the precision llama-server prints),
compute within 10 %. Skips, saying why, while those files are absent.

Accepted case layout (keys tried in order, so small naming differences do not matter)::

    {"cases": [{"model": {"arch": "llama", "ftype": "f16", "n_ctx_train": 4096, "seed": 0, ...},
                "server": {"ctx": 2048, "cache_type_k": "f16", "cache_type_v": "f16",
                           "flash_attn": true, "n_ubatch": 512, "parallel": 1},
                "measured": {"model": <bytes|MiB float|{device: MiB}>, "kv": ..., "compute": ...}}]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from victor_gui.modelmgr.architecture import from_gguf
from victor_gui.modelmgr.fit import FitOptions, compute_bytes, kv_bytes_per_layer
from victor_gui.modelmgr.gguf_reader import read_gguf_file

ROOT = Path(__file__).resolve().parents[2]
GROUND_TRUTH = ROOT / "tests" / "data" / "llama_memory_ground_truth.json"
MAKE_KEYS = ("arch", "ftype", "n_ctx_train", "seed", "n_layer", "n_embd", "n_head", "n_head_kv", "head_dim",
             "n_ff")
MiB = 1 << 20


def _first(mapping: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if key in mapping and mapping[key] is not None:
            return mapping[key]
    return default


def _bytes(value: Any) -> tuple[int, int]:
    """(bytes, tolerance): ints are bytes; floats are MiB as printed (2 decimals); dicts sum devices."""
    if isinstance(value, dict):
        parts = [_bytes(v) for v in value.values()]
        return sum(p[0] for p in parts), sum(p[1] for p in parts)
    if isinstance(value, bool) or value is None:
        raise ValueError(value)
    if isinstance(value, int):
        return value, 0
    return round(float(value) * MiB), int(0.005 * MiB) + 1


def _cases() -> list[dict[str, Any]]:
    if not GROUND_TRUTH.exists():
        pytest.skip(f"{GROUND_TRUTH.relative_to(ROOT)} is not here yet (the llama branch produces it)")
    data = json.loads(GROUND_TRUTH.read_text())
    cases = _first(data, "cases", "models", "runs") if isinstance(data, dict) else data
    if not isinstance(cases, list) or not cases:
        pytest.skip("ground-truth JSON has no list of cases under cases/models/runs")
    return cases


def _fa(value: Any) -> bool:
    return str(value).lower() not in ("false", "off", "0", "no")


async def test_estimates_match_llama_server(tmp_path: Path) -> None:
    tiny = pytest.importorskip("tests.support.tiny_gguf", reason="tests/support/tiny_gguf.py not here yet")
    checked = 0
    for i, case in enumerate(_cases()):
        model = _first(case, "model", "gguf", "generation", "params", default=case)
        server = _first(case, "server", "settings", "run", default=case)
        measured = _first(case, "measured", "buffers", "llama_server", default=case)
        kwargs = {k: model[k] for k in MAKE_KEYS if k in model}
        path = tiny.make_tiny_gguf(tmp_path / f"case{i}.gguf", **kwargs) or tmp_path / f"case{i}.gguf"
        header = await read_gguf_file(Path(path))
        arch = from_gguf(header)
        ctx = int(_first(server, "ctx", "n_ctx", "c"))
        opts = FitOptions(n_ctx=ctx, cache_type_k=_first(server, "cache_type_k", "ctk", default="f16"),
                          cache_type_v=_first(server, "cache_type_v", "ctv", default="f16"),
                          flash_attention=_fa(_first(server, "flash_attn", "fa", default=True)),
                          n_ubatch=int(_first(server, "n_ubatch", "ub", default=512)),
                          n_seq=int(_first(server, "parallel", "np", "n_parallel", default=1)))
        label = (f"case {i} ({kwargs}, ctx {ctx}, {opts.cache_type_k}/{opts.cache_type_v}, "
                 f"fa {opts.flash_attention})")

        weights, tol = _bytes(_first(measured, "model", "model_bytes", "weights", "model_buffer"))
        # The model buffer holds the file's tensors once (a tied output is not copied on the CPU),
        # padded to the GGUF alignment per tensor.
        file_weights = arch.weight_bytes - (arch.token_embd_bytes if arch.tied_embeddings else 0)
        assert abs(file_weights - weights) <= tol + header.alignment * len(header.tensors), label

        kv, tol = _bytes(_first(measured, "kv", "kv_bytes", "kv_cache", "kv_buffer"))
        assert abs(sum(kv_bytes_per_layer(arch, opts, ctx)) - kv) <= tol, label

        compute, _ = _bytes(_first(measured, "compute", "compute_bytes", "compute_buffer"))
        ours = compute_bytes(arch, opts, ctx, with_output=True)
        assert abs(ours - compute) <= 0.10 * compute, f"{label}: compute {ours} vs measured {compute}"
        checked += 1
    assert checked
