"""Benchmark: fit estimate from the header of a ~100 GB GGUF (``python bench/bench_fit.py``).

The model files are generated with ``gguf.GGUFWriter`` and cut right after their header, so
the reader cannot touch data. Two headers describe the same ~104 GB of Q8_0 tensors (112
layers, 1,011 tensors):

* ``real``: Llama-3-style metadata with the full tokenizer (128,256 tokens with scores and
  types, 280,147 merges, a chat template) -- 8.9 MiB of header;
* ``table``: the same without the tokenizer arrays.

Prints the median of N runs per stage. Exit status 1 only past generous bounds: 20 ms for the
``table`` fit, 200 ms for the ``real`` one (pure-Python walking of ~408k length-prefixed strings
is the floor there; see the report). No timing assertion lives in the unit suite.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sizing.gguf_factory import Spec, tensor_table, write_gguf  # noqa: E402
from victor_gui.sizing.architecture import from_gguf  # noqa: E402
from victor_gui.sizing.fit import FitOptions, estimate_fit  # noqa: E402
from victor_gui.sizing.gguf_reader import read_gguf_file  # noqa: E402
from victor_gui.sizing.hardware import GpuDevice, RamInfo  # noqa: E402

GiB = 1 << 30


def make_model(path: Path, tokenizer: bool = True) -> Path:
    from gguf import GGMLQuantizationType as Q

    n_vocab = 128256
    spec = Spec(arch="llama", n_layer=112, n_embd=8192, n_ff=28672, n_head=64, n_head_kv=8,
                n_vocab=n_vocab, n_ctx_train=131072, wtype=Q.Q8_0)
    if tokenizer:
        spec.extra = {"tokenizer.ggml.model": "gpt2",
                      "tokenizer.ggml.scores": [0.0] * n_vocab,
                      "tokenizer.ggml.token_type": [1] * n_vocab,
                      "tokenizer.ggml.merges": [f"m{i} x{i}" for i in range(280147)],
                      "tokenizer.chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}" * 50}
        spec.tokens = n_vocab
    write_gguf(path, spec, header_only=True)
    assert len(tensor_table(spec)) > 1000
    return path


async def once(path: Path) -> tuple[float, float, int, int]:
    t0 = time.perf_counter()
    header = await read_gguf_file(path)
    t1 = time.perf_counter()
    arch = from_gguf(header)
    gpus = [GpuDevice("nvidia", "H200", 141 * GiB, 139 * GiB),
            GpuDevice("nvidia", "RTX 4090", 24 * GiB, 23 * GiB)]
    result = estimate_fit(arch, gpus, RamInfo(256 * GiB, 200 * GiB), FitOptions(n_ctx=32768))
    t2 = time.perf_counter()
    assert result.max_full_offload_ctx is not None or result.verdict != "full"
    return t1 - t0, t2 - t1, header.tensor_bytes, header.file_size or 0


async def measure(path: Path, n: int, name: str) -> float:
    await once(path)  # warm the page cache and imports
    runs = [await once(path) for _ in range(n)]
    read = statistics.median(r[0] for r in runs) * 1000
    fit = statistics.median(r[1] for r in runs) * 1000
    total = statistics.median((r[0] + r[1]) for r in runs) * 1000
    size = runs[0][3]
    print(f"[{name}] header {size / 2**20:.2f} MiB on disk; tensor table describes {runs[0][2] / 1e9:.1f} GB")
    print(f"[{name}]   read+parse header   median {read:7.2f} ms (n={n})")
    print(f"[{name}]   architecture + fit  median {fit:7.2f} ms (incl. largest-context search)")
    print(f"[{name}]   total               median {total:7.2f} ms")
    print(f"BENCH fit_from_100GB_header_{name}_ms={total:.3f}")
    return total


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = await measure(make_model(Path(tmp) / "table.gguf", tokenizer=False), args.n, "table")
        real = await measure(make_model(Path(tmp) / "real.gguf"), args.n, "real")
    return 0 if table <= 20.0 and real <= 200.0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
