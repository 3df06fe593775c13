"""Memory ground truth from a real ``llama-server``: parse its ``-lv 4`` log, write a table.

:func:`parse_memory_log` reads what llama.cpp prints while it sets up a model (buffer sizes are
printed in MiB with two decimals, so every ``*_mib`` value has a resolution of 0.01 MiB)::

    load_tensors:   CPU_Mapped model buffer size =     0.70 MiB
    llama_context: n_ctx = 4096 / n_batch = 2048 / n_ubatch = 512 / flash_attn = auto
    llama_context:        CPU  output buffer size =     0.00 MiB
    llama_kv_cache: size =    2.00 MiB (  4096 cells,   2 layers,  1/1 seqs),
                    K (f16):    1.00 MiB, V (f16):    1.00 MiB              (one line in the log)
    llama_context: flash_attn = enabled       (quantized V forces it; with ``auto`` a later
    resolve_fused_ops: Flash Attention enabled  line says what auto resolved to)
    sched_reserve:        CPU compute buffer size =     6.01 MiB
    print_info: n_layer = 2 / n_head_kv = 2 / n_embd_head_k = 32 / n_embd_head_v = 32

``python -m tests.support.llama_memory --write tests/data/llama_memory_ground_truth.json``
starts the server over generated models (:mod:`tests.support.tiny_gguf`; architectures
llama/qwen2/qwen3, f16 and q8_0 weights) x context sizes x KV cache types f16/q8_0/q4_0 and
writes a JSON list of records (one per server start). Record format -- every key always present:

=======================  ==================================================================
``arch``                 GGUF architecture the model was generated with
``ftype``                ``make_tiny_gguf`` weight type (``f16``, ``q8_0``)
``n_ctx_train``          trained context written into the GGUF
``seed``                 ``make_tiny_gguf`` seed
``make_tiny_gguf_kwargs``  the exact keyword arguments of :func:`tiny_gguf.make_tiny_gguf`
                         (the four keys above plus any non-default dimensions):
                         ``make_tiny_gguf(path, **rec["make_tiny_gguf_kwargs"])`` regenerates
                         the byte-identical model
``model_file_bytes``     size of the generated ``.gguf`` file
``ctx``                  ``-c`` passed to the server (0: the trained context)
``n_ctx``                context the server actually allocated (``llama_context: n_ctx``)
``kv_cells``             cells in the KV cache (``llama_kv_cache: size = ... (N cells``)
``n_batch``/``n_ubatch`` batch sizes the server used (defaults 2048 / 512)
``cache_type_k/_v``      ``-ctk`` / ``-ctv``
``flash_attn_arg``       ``-fa`` passed: ``auto`` (the default) or ``off`` (f16 caches only)
``flash_attn``           whether flash attention ended up on (what ``auto`` resolved to)
``model_buffer_mib``     ``model buffer size`` (sum over buffers, MiB as printed)
``kv_mib``/``k_mib``/``v_mib``  KV cache total and its K / V parts (MiB as printed)
``compute_buffer_mib``   ``compute buffer size`` (sum over backends)
``output_buffer_mib``    ``output buffer size``
``*_bytes``              the same five sizes (model, kv, k, v, compute, output) in bytes,
                         ``round(mib * 2**20)``: accurate to +-0.005 MiB (5243 bytes)
``n_layer``, ``n_head_kv``, ``head_dim_k``, ``head_dim_v``  as printed by ``print_info``
``head_dim``             ``head_dim_k`` (kept for readers that assume K and V dims agree)
``llama_cpp_python``     the llama-cpp-python sdist version the server was built from
=======================  ==================================================================

The KV size follows ``kv_cells x n_layer x n_head_kv x (head_dim_k x s_k + head_dim_v x s_v)``
bytes, with ``s`` = 4 (f32), 2 (f16), 34/32 (q8_0), 18/32 (q4_0) -- see :func:`kv_bytes`.
Quantized V needs flash attention, which ``-fa auto`` turns on.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

MIB = 1 << 20

#: Bytes per element of each KV cache type (block size / elements per block for quants).
BYTES_PER_ELEMENT: dict[str, Fraction] = {
    "f32": Fraction(4), "f16": Fraction(2), "bf16": Fraction(2),
    "q8_0": Fraction(34, 32), "q4_0": Fraction(18, 32), "q4_1": Fraction(20, 32),
    "q5_0": Fraction(22, 32), "q5_1": Fraction(24, 32),
}

_NUM = r"([0-9]+(?:\.[0-9]+)?)"
_RE = {
    "model": re.compile(rf"model buffer size\s*=\s*{_NUM} MiB"),
    "output": re.compile(rf"output buffer size\s*=\s*{_NUM} MiB"),
    "compute": re.compile(rf"compute buffer size\s*=\s*{_NUM} MiB"),
    "kv": re.compile(rf"llama_kv_cache: size\s*=\s*{_NUM} MiB \(\s*(\d+) cells,\s*(\d+) layers.*?"
                     rf"K \((\w+)\):\s*{_NUM} MiB, V \((\w+)\):\s*{_NUM} MiB"),
    "fa_set": re.compile(r"llama_context: flash_attn\s*=\s*(enabled|disabled|auto)"),
    "fa_auto": re.compile(r"Flash Attention (enabled|disabled)"),
    "ctx": re.compile(r"llama_context: (n_ctx|n_batch|n_ubatch)\s*=\s*(\d+)"),
    "info": re.compile(r"print_info: (n_layer|n_head_kv|n_embd_head_k|n_embd_head_v)\s*=\s*(\d+)"),
}


@dataclass(frozen=True)
class MemoryReport:
    """The sizes one server start reported (MiB as printed) plus the shape values around them."""

    model_buffer_mib: float
    kv_mib: float
    k_mib: float
    v_mib: float
    compute_buffer_mib: float
    output_buffer_mib: float
    kv_cells: int
    kv_layers: int
    cache_type_k: str
    cache_type_v: str
    flash_attn: bool
    n_ctx: int
    n_batch: int
    n_ubatch: int
    n_layer: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int


class MemoryLogError(ValueError):
    """The log lacks a line the report needs (was the server started with ``-lv 4``?)."""


def parse_memory_log(text: str) -> MemoryReport:
    """Extract a :class:`MemoryReport` from a ``llama-server -lv 4`` log.

    Buffer lines repeat once per backend (e.g. CPU and CUDA0); their sizes are summed. Only the
    first model load in the log is read.
    """
    def total(key: str) -> float:
        found = [float(m.group(1)) for m in _RE[key].finditer(text)]
        if not found:
            raise MemoryLogError(f"no '{key} buffer size' line in the log")
        return round(sum(found), 2)

    kv = _RE["kv"].search(text)
    if kv is None:
        raise MemoryLogError("no 'llama_kv_cache: size = ...' line in the log")
    fa = _flash_attn(text)
    ctx = _first_ints(_RE["ctx"], text)
    info = _first_ints(_RE["info"], text)
    for key in ("n_ctx", "n_batch", "n_ubatch", "n_layer", "n_head_kv", "n_embd_head_k", "n_embd_head_v"):
        if key not in ctx and key not in info:
            raise MemoryLogError(f"no '{key} = ' line in the log")
    return MemoryReport(
        model_buffer_mib=total("model"), kv_mib=float(kv.group(1)), k_mib=float(kv.group(5)),
        v_mib=float(kv.group(7)), compute_buffer_mib=total("compute"), output_buffer_mib=total("output"),
        kv_cells=int(kv.group(2)), kv_layers=int(kv.group(3)), cache_type_k=kv.group(4),
        cache_type_v=kv.group(6), flash_attn=fa,
        n_ctx=ctx["n_ctx"], n_batch=ctx["n_batch"], n_ubatch=ctx["n_ubatch"], n_layer=info["n_layer"],
        n_head_kv=info["n_head_kv"], head_dim_k=info["n_embd_head_k"], head_dim_v=info["n_embd_head_v"],
    )


def _flash_attn(text: str) -> bool:
    setting = _RE["fa_set"].search(text)
    if setting is None:
        raise MemoryLogError("no 'llama_context: flash_attn = ' line in the log")
    if setting.group(1) != "auto":
        return setting.group(1) == "enabled"
    resolved = _RE["fa_auto"].search(text, setting.end())
    if resolved is None:
        raise MemoryLogError("flash_attn = auto, but no 'Flash Attention enabled/disabled' line")
    return resolved.group(1) == "enabled"


def _first_ints(pattern: re.Pattern[str], text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in pattern.finditer(text):
        out.setdefault(m.group(1), int(m.group(2)))
    return out


def kv_bytes(cells: int, n_layer: int, n_head_kv: int, head_dim_k: int, head_dim_v: int,
             cache_type_k: str, cache_type_v: str) -> tuple[int, int]:
    """Exact (K bytes, V bytes) of a llama.cpp KV cache (no SWA, one unified sequence set)."""
    per_k = BYTES_PER_ELEMENT[cache_type_k] * head_dim_k
    per_v = BYTES_PER_ELEMENT[cache_type_v] * head_dim_v
    rows = cells * n_layer * n_head_kv
    k, v = rows * per_k, rows * per_v
    if k.denominator != 1 or v.denominator != 1:
        raise ValueError("head_dim must be a multiple of the quant block size (32)")
    return int(k), int(v)


def mib_as_printed(n_bytes: int) -> float:
    """``n_bytes`` in MiB rounded the way llama.cpp's ``%.2f`` prints it."""
    return float(f"{n_bytes / MIB:.2f}")


# -- the ground-truth table -----------------------------------------------------------------------

#: One model shape per architecture, so the table covers more than one set of dimensions:
#: llama the default tiny model, qwen2 deeper and wider with 4:1 GQA, qwen3 a head_dim (64) that
#: is not n_embd / n_head.
MODELS: dict[str, dict[str, int]] = {
    "llama": {},
    "qwen2": {"n_layer": 3, "n_embd": 256, "n_head": 8, "n_head_kv": 2, "n_ff": 512},
    "qwen3": {"n_layer": 2, "n_embd": 128, "n_head": 4, "n_head_kv": 2, "head_dim": 64},
}
WEIGHT_TYPES = ("f16", "q8_0")
# 0 = "the trained context" (N_CTX_TRAIN); 1000 shows the server's padding of the cell count.
CONTEXTS = (0, 512, 1000, 4096)
CACHE_TYPES = ("f16", "q8_0", "q4_0")
# -fa values measured: auto (the server's default) for every cache type; off as well for f16
# caches (a quantized V cache cannot run without flash attention).
FLASH_ATTN = ("auto", "off")
N_CTX_TRAIN = 16384
SEED = 0


def record(report: MemoryReport, *, gen: dict[str, Any], ctx: int, flash_attn_arg: str,
           model_file_bytes: int, version: str) -> dict[str, Any]:
    """One JSON record (format in the module docstring); ``gen`` = make_tiny_gguf kwargs."""
    sizes = {"model_buffer": report.model_buffer_mib, "kv": report.kv_mib, "k": report.k_mib,
             "v": report.v_mib, "compute_buffer": report.compute_buffer_mib,
             "output_buffer": report.output_buffer_mib}
    out: dict[str, Any] = {
        "arch": gen["arch"], "ftype": gen["ftype"], "n_ctx_train": gen["n_ctx_train"], "seed": gen["seed"],
        "make_tiny_gguf_kwargs": gen, "model_file_bytes": model_file_bytes, "ctx": ctx, "n_ctx": report.n_ctx,
        "kv_cells": report.kv_cells, "n_batch": report.n_batch, "n_ubatch": report.n_ubatch,
        "cache_type_k": report.cache_type_k, "cache_type_v": report.cache_type_v,
        "flash_attn_arg": flash_attn_arg, "flash_attn": report.flash_attn,
    }
    out.update({f"{name}_mib": mib for name, mib in sizes.items()})
    out.update({f"{name}_bytes": round(mib * MIB) for name, mib in sizes.items()})
    out.update({"n_layer": report.n_layer, "n_head_kv": report.n_head_kv, "head_dim_k": report.head_dim_k,
                "head_dim_v": report.head_dim_v, "head_dim": report.head_dim_k,
                "llama_cpp_python": version})
    return out


def measure_all(*, models: dict[str, dict[str, int]] = MODELS, weight_types: tuple[str, ...] = WEIGHT_TYPES,
                contexts: tuple[int, ...] = CONTEXTS, cache_types: tuple[str, ...] = CACHE_TYPES,
                work: Path | None = None) -> list[dict[str, Any]]:
    """Start the server once per combination and return the records (sorted, deterministic)."""
    from tests.support.llama_build import LLAMA_CPP_PYTHON_VERSION
    from tests.support.llama_server import running_llama_server
    from tests.support.tiny_gguf import make_tiny_gguf

    root = work or Path(tempfile.mkdtemp(prefix="llama-memory-"))
    records = []
    for (arch, dims), ftype in itertools.product(models.items(), weight_types):
        gen: dict[str, Any] = {"arch": arch, "ftype": ftype, "n_ctx_train": N_CTX_TRAIN, "seed": SEED,
                               **dims}
        model = make_tiny_gguf(root / f"{arch}-{ftype}.gguf", **gen)
        for ctx, cache, fa in itertools.product(contexts, cache_types, FLASH_ATTN):
            if fa == "off" and cache != "f16":
                continue
            with running_llama_server(model, ctx=ctx, cache_type_k=cache, verbose=True,
                                      log_dir=root / "logs", extra_args=["--no-warmup", "-fa", fa]) as server:
                report = parse_memory_log(server.log_text())
            records.append(record(report, gen=gen, ctx=ctx, flash_attn_arg=fa,
                                  model_file_bytes=model.stat().st_size, version=LLAMA_CPP_PYTHON_VERSION))
            print(f"{arch:5s} {ftype:4s} c={ctx:5d} kv={cache:4s} model={report.model_buffer_mib} "
                  f"kv={report.kv_mib} compute={report.compute_buffer_mib} fa={report.flash_attn}",
                  file=sys.stderr)
    return records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.support.llama_memory", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", type=Path, required=True, help="JSON file to write")
    args = ap.parse_args(argv)
    records = measure_all()
    args.write.parent.mkdir(parents=True, exist_ok=True)
    # One record per line: small, and a regenerated table diffs line by line.
    args.write.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    print(f"wrote {len(records)} records to {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
