"""The estimator against real llama-server buffer sizes (``tests/data/llama_memory_ground_truth.json``).

The JSON and :func:`tests.support.tiny_gguf.make_tiny_gguf` come from the llama branch: every
case records the generator's keyword arguments and llama-server's settings and printed buffers.
Each model is regenerated, its header read with our reader, and compared: weights and KV exact
to the precision llama-server prints (0.01 MiB), compute within 10 %. Skips, saying why, when
either file is absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from victor_gui.sizing.architecture import ModelArchitecture, from_gguf
from victor_gui.sizing.fit import FitOptions, compute_bytes, kv_bytes_per_layer
from victor_gui.sizing.gguf_header import GGUFHeader
from victor_gui.sizing.gguf_reader import read_gguf_file

ROOT = Path(__file__).resolve().parents[2]
GROUND_TRUTH = ROOT / "tests" / "data" / "llama_memory_ground_truth.json"
MiB = 1 << 20
PRINTED = 0.005 * MiB + 1  # llama-server prints MiB with two decimals (0.375 shows as 0.38)


def _cases() -> list[dict[str, Any]]:
    if not GROUND_TRUTH.exists():
        return []
    data = json.loads(GROUND_TRUTH.read_text())
    return data.get("cases", []) if isinstance(data, dict) else data


CASES = _cases()
_MODELS: dict[str, tuple[GGUFHeader, ModelArchitecture]] = {}


def _id(case: dict[str, Any]) -> str:
    kw = case["make_tiny_gguf_kwargs"]
    return (f"{kw['arch']}-{kw['ftype']}-L{kw.get('n_layer', 2)}-e{kw.get('n_embd', 128)}"
            f"-c{case['n_ctx']}-{case['cache_type_k']}-fa{int(case['flash_attn'])}")


async def _model(case: dict[str, Any], folder: Path) -> tuple[GGUFHeader, ModelArchitecture]:
    tiny = pytest.importorskip("tests.support.tiny_gguf", reason="tests/support/tiny_gguf.py is not here")
    kwargs = case["make_tiny_gguf_kwargs"]
    key = json.dumps(kwargs, sort_keys=True)
    if key not in _MODELS:
        path = folder / f"m{len(_MODELS)}.gguf"
        tiny.make_tiny_gguf(path, **kwargs)
        header = await read_gguf_file(path)
        _MODELS[key] = (header, from_gguf(header))
    return _MODELS[key]


@pytest.mark.skipif(not CASES, reason="tests/data/llama_memory_ground_truth.json is not here (llama branch)")
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
async def test_estimate_matches_llama_server(case: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
                                             ) -> None:
    header, arch = await _model(case, tmp_path_factory.getbasetemp())
    assert header.file_size == case["model_file_bytes"]
    n_ctx = int(case["n_ctx"])
    opts = FitOptions(n_ctx=n_ctx, cache_type_k=case["cache_type_k"], cache_type_v=case["cache_type_v"],
                      flash_attention=bool(case["flash_attn"]), n_ubatch=int(case["n_ubatch"]))

    # Weights: the model buffer holds the file's tensors once (a tied output is not copied on
    # the CPU); tensors are padded to the GGUF alignment inside the buffer.
    weights = arch.weight_bytes - (arch.token_embd_bytes if arch.tied_embeddings else 0)
    measured = case["model_buffer_mib"] * MiB
    assert abs(weights - measured) <= PRINTED + header.alignment * len(header.tensors)

    assert abs(sum(kv_bytes_per_layer(arch, opts, n_ctx)) - case["kv_mib"] * MiB) <= PRINTED

    ours = compute_bytes(arch, opts, n_ctx, with_output=True)
    measured_compute = case["compute_buffer_mib"] * MiB
    assert ours == pytest.approx(measured_compute, rel=0.10), \
        f"compute {ours / MiB:.2f} MiB vs llama-server {case['compute_buffer_mib']} MiB"
