"""Hub repositories of real-shaped, sparse GGUFs for the Hugging Face browser's tests and shots.

Every quant is a real GGUF header written by ``gguf``'s own writer (``tests/sizing/gguf_factory``)
with a 32k-token vocabulary, followed by sparse zeros to the quant's true size, so a "16 GB" file
costs nothing on disk and only its header can sensibly be read. On :data:`MACHINE` (a 12 GiB GPU
with 11 GiB free, 24 GiB of RAM available) the 8B model's quants come out as:

- ``Q4_K_M`` (≈ 4.7 GB) — full offload at 8,192;
- ``Q8_0`` (≈ 8.4 GB) — full offload at 8,192 (not at 40,960);
- ``F16`` (≈ 15.9 GB) — partial;
- the 70B model (``Q4_K_M`` ≈ 40 GB, split in 3) — won't fit (GPU + RAM < weights).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gguf import GGMLQuantizationType as Q

from tests.servers.hub import HubFile, HubRepo, HubServer
from tests.sizing.gguf_factory import Spec, tensor_table, write_gguf
from victor_gui.sizing.hardware import GpuDevice, GpuReport, RamInfo

GiB = 1 << 30
MACHINE = GpuReport([GpuDevice("nvidia", "RTX 4070", 12 * GiB, 11 * GiB)], RamInfo(32 * GiB, 24 * GiB))
NO_GPU = GpuReport([], RamInfo(32 * GiB, 24 * GiB))

QWEN = "bartowski/Qwen3-8B-GGUF"
LLAMA = "bartowski/Llama-3.3-70B-Instruct-GGUF"
GATED = "meta-llama/Llama-Guard-GGUF"
TOKENS = 32000


def qwen8b(wtype: Q) -> Spec:
    return Spec(arch="qwen3", n_layer=36, n_embd=4096, n_head=32, n_head_kv=8, head_dim=128, n_ff=12288,
                n_vocab=151936, n_ctx_train=40960, wtype=wtype, tokens=TOKENS)


def llama70b(wtype: Q) -> Spec:
    return Spec(arch="llama", n_layer=80, n_embd=8192, n_head=64, n_head_kv=8, head_dim=128, n_ff=28672,
                n_vocab=128256, n_ctx_train=131072, wtype=wtype, tokens=TOKENS)


def _split(path: Path, spec: Spec, parts: int, total: int) -> list[Path]:
    """``parts`` shards of ``spec`` (headers) made sparse to ``total`` bytes in all."""
    per = len(tensor_table(spec)) // parts + 1
    write_gguf(path, spec, split_max_tensors=per)
    shards = sorted(path.parent.glob(f"{path.stem}-*-of-*.gguf"))
    for shard in shards:
        with shard.open("r+b") as fh:
            fh.truncate(total // len(shards))
    return shards


def make_repos(root: Path) -> list[HubRepo]:
    """The Hub's repositories for the tests (files written under ``root``)."""
    root.mkdir(parents=True, exist_ok=True)
    qwen = root / "qwen"
    qwen.mkdir(exist_ok=True)
    files = []
    for quant, wtype in (("Q4_K_M", Q.Q4_K), ("Q8_0", Q.Q8_0), ("F16", Q.F16)):
        name = f"Qwen3-8B-{quant}.gguf"
        files.append(HubFile(name, write_gguf(qwen / name, qwen8b(wtype))))
    mmproj = qwen / "mmproj-Qwen3-8B-f16.gguf"
    mmproj.write_bytes(b"GGUF" + bytes(60))
    with mmproj.open("r+b") as fh:
        fh.truncate(600 << 20)
    files.append(HubFile(mmproj.name, mmproj))
    files.append(HubFile("README.md", b"# Qwen3-8B GGUF", lfs=False))
    llama = root / "llama"
    llama.mkdir(exist_ok=True)
    shards = _split(llama / "Llama-3.3-70B-Instruct-Q4_K_M.gguf", llama70b(Q.Q4_K), 3, 42_520_000_000)
    llama_files = [HubFile(f"Llama-3.3-70B-Instruct-Q4_K_M/{s.name}", s) for s in shards]
    gated = root / "gated"
    gated.mkdir(exist_ok=True)
    guard = write_gguf(gated / "Llama-Guard-8B-Q4_K_M.gguf", qwen8b(Q.Q4_K))
    return [
        HubRepo(QWEN, files, downloads=98_000, likes=210, last_modified="2026-10-02T08:00:00.000Z"),
        HubRepo("unsloth/Qwen3-8B-GGUF", [HubFile("Qwen3-8B-UD-Q4_K_XL.gguf", qwen / "Qwen3-8B-Q4_K_M.gguf")],
                downloads=120_000, likes=90, last_modified="2026-11-20T08:00:00.000Z"),
        HubRepo(LLAMA, llama_files, downloads=45_000, likes=400, last_modified="2026-06-01T08:00:00.000Z"),
        HubRepo(GATED, [HubFile(guard.name, guard)], downloads=1_000, likes=5, gated="manual",
                last_modified="2026-09-01T08:00:00.000Z"),
    ]


@contextmanager
def serve(repos: list[HubRepo], **options: Any) -> Iterator[HubServer]:
    """A fresh Hub simulator over ``repos`` (byte counts start at zero)."""
    with HubServer(repos, **options) as server:
        yield server
