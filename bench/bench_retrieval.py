"""Retrieval benchmarks (run by hand; not part of the unit suite).

    python bench/bench_retrieval.py [--chunks 100000] [--embed-chunks 48] [--skip-server]

Prints (and writes as JSON with ``--json PATH``):

1. embedding throughput, chunks/s, against a real llama-server started with ``--embeddings
   --pooling mean`` on the generated tiny model (tests/support; the cached build is -O0, so this
   is a floor: a release build and a real model differ by orders of magnitude both ways);
2. database size per 1,000 chunks (800-character chunks) at the tiny model's width (128) and at
   768 (nomic-embed-text), measured on the real store file after a checkpoint;
3. retrieval latency over ``--chunks`` synthetic 768-number vectors (100 documents, all of them
   candidates): reading the vectors from SQLite, FTS5's BM25, the NumPy cosine pass over the
   documents' matrices (in a thread), the fusion, reading the chosen chunks' text; the event
   loop's longest gap meanwhile (and idle, the machine's own noise); and the pure-Python
   fallback's cosine pass, measured on 10,000 and scaled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from victor_gui.services.vector_search import POOL, fuse, rank_vectors, words
from victor_gui.storage import open_store
from victor_gui.storage.store import DB_NAME

_WORDS = ("valve pressure coolant reactor pump turbine sensor threshold manual section page "
          "operator shift alarm level flow rate temperature inspection report maintenance "
          "schedule safety procedure test result record log check replace filter seal").split()


def _text(rng: random.Random, chars: int = 800) -> str:
    out: list[str] = []
    size = 0
    while size < chars:
        w = rng.choice(_WORDS) if rng.random() < 0.8 else f"w{rng.randrange(100000)}"
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:chars]


def _db_bytes(folder: Path) -> int:
    conn = sqlite3.connect(folder / DB_NAME)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith(DB_NAME))


async def size_per_1000(dim: int, root: Path) -> dict[str, float]:
    """Bytes the store grows by for 1,000 chunks of ``dim`` numbers and 800 characters."""
    rng = random.Random(dim)
    folder = root / f"size-{dim}"
    folder.mkdir()
    store, _ = await open_store(folder)
    await store.close()
    empty = _db_bytes(folder)
    store, _ = await open_store(folder)
    for d in range(10):  # 10 documents of 100 chunks
        chunks = [(f"page {i // 3 + 1}", _text(rng), [rng.uniform(-1, 1) for _ in range(dim)])
                  for i in range(100)]
        await store.vectors.put(f"{d:064x}", "bench/model", "chars:800/100", chunks)
    await store.close()
    grown = _db_bytes(folder) - empty
    return {"dim": dim, "bytes_per_1000_chunks": grown, "vector_bytes_per_1000": dim * 4 * 1000,
            "text_bytes_per_1000": 800 * 1000}


async def latency(n_chunks: int, root: Path, dim: int = 768) -> dict[str, float]:
    """Retrieval over ``n_chunks`` stored chunks in 100 documents (all candidates)."""
    folder = root / "latency"
    folder.mkdir()
    store, _ = await open_store(folder)
    rng = random.Random(1)
    nrng = np.random.default_rng(1)
    docs = 100
    per = n_chunks // docs
    t0 = time.perf_counter()
    for d in range(docs):
        vecs = nrng.standard_normal((per, dim), dtype=np.float32)
        chunks = [("", _text(rng), vecs[i].tolist()) for i in range(per)]
        await store.vectors.put(f"{d:064x}", "bench/model", "chars:800/100", chunks)
    fill_s = time.perf_counter() - t0
    sha256s = [f"{d:064x}" for d in range(docs)]
    query = nrng.standard_normal(dim, dtype=np.float32).tolist()
    question = "at which pressure threshold does the coolant valve open"
    runs: dict[str, list[float]] = {"load_matrices_ms": [], "fts_bm25_ms": [], "cosine_numpy_ms": [],
                                    "fuse_ms": [], "read_top_chunks_ms": []}
    loop_gaps: list[float] = []
    for _ in range(3):
        ticker = asyncio.create_task(_loop_gap(loop_gaps))
        t = time.perf_counter()
        docs_m = await store.vectors.matrices(sha256s, "bench/model")
        runs["load_matrices_ms"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        lex = await store.vectors.lexical(words(question), sha256s, "bench/model", POOL)
        runs["fts_bm25_ms"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        word_keys = [(sha, idx) for sha, idx, _ in lex]
        ranks = await asyncio.to_thread(rank_vectors, query, docs_m, POOL, word_keys)
        runs["cosine_numpy_ms"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        fused = fuse(ranks, {key: rank for rank, key in enumerate(word_keys, start=1)}, k=4)
        runs["fuse_ms"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        await store.vectors.chunks([key for key, _ in fused], "bench/model")
        runs["read_top_chunks_ms"].append((time.perf_counter() - t) * 1000)
        ticker.cancel()
        del docs_m
    # The pure-Python fallback on 10,000 chunks, scaled linearly to n_chunks.
    sample = await store.vectors.matrices(sha256s[:max(1, 10_000 // per)], "bench/model")
    t = time.perf_counter()
    rank_vectors(query, sample, POOL, use_numpy=False)
    pure_ms = (time.perf_counter() - t) * 1000 * n_chunks / sum(m.rows for m in sample)
    await store.close()
    out: dict[str, float] = {"chunks": n_chunks, "dim": dim, "fill_s": round(fill_s, 1),
                             "db_mb": round(_db_bytes(folder) / 2**20, 1)}
    out.update({k: round(min(v), 1) for k, v in runs.items()})
    out["total_ms"] = round(sum(out[k] for k in runs), 1)
    out["longest_loop_gap_ms"] = round(max(loop_gaps, default=0.0), 1)
    idle: list[float] = []
    ticker = asyncio.create_task(_loop_gap(idle))
    await asyncio.sleep(2.0)
    ticker.cancel()
    out["idle_loop_gap_ms"] = round(max(idle, default=0.0), 1)  # the machine's own noise
    out["cosine_pure_python_ms_scaled"] = round(pure_ms, 1)
    return out


async def _loop_gap(gaps: list[float], step: float = 0.005) -> None:
    """Record how late the event loop wakes a 5 ms sleeper (a stall shows as a long gap)."""
    while True:
        t = time.perf_counter()
        await asyncio.sleep(step)
        gaps.append((time.perf_counter() - t - step) * 1000)


async def embed_throughput(n: int) -> dict[str, float]:
    """chunks/s of the real llama-server on the tiny model (500-character chunks)."""
    from tests.support.llama_build import find_binary
    from tests.support.llama_server import running_llama_server
    from tests.support.tiny_gguf import make_tiny_gguf
    from victor_gui.providers.embeddings import embedder_for
    from victor_gui.providers.registry import ProviderRegistry

    binary = find_binary()
    if binary is None:
        return {"skipped": 1.0}
    rng = random.Random(3)
    texts = [_text(rng, 500) for _ in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_gguf(Path(tmp) / "tiny.gguf")
        args = ["--embeddings", "--pooling", "mean"]
        with running_llama_server(model, binary=binary, extra_args=args) as srv:
            provider = ProviderRegistry.create("llamacpp", base_url=srv.base_url + "/v1")
            embedder = embedder_for(provider, "tiny")
            await embedder.embed(texts[:2])  # warm
            t = time.perf_counter()
            await embedder.embed(texts)
            took = time.perf_counter() - t
            await provider.close()
    return {"chunks": n, "chars_per_chunk": 500, "seconds": round(took, 2),
            "chunks_per_s": round(n / took, 2)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--embed-chunks", type=int, default=48)
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.skip_server:
            report["embedding"] = await embed_throughput(args.embed_chunks)
            print("embedding:", report["embedding"], flush=True)
        report["size"] = [await size_per_1000(dim, root) for dim in (128, 768)]
        print("size:", report["size"], flush=True)
        report["latency"] = await latency(args.chunks, root)
        print("latency:", report["latency"], flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
