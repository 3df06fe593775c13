"""Streaming a long reply into the store: bytes written, time, and how far the store trails.

    python bench/bench_append.py [--mb 2 8] [--rate 1.0] [--paced-seconds 20]

Run it under a memory limit (``prlimit --as=3000000000``). For each size it streams a reply in
1 KB deltas as fast as the store takes them and prints the bytes this process wrote to disk
(``/proc/self/io`` write_bytes, which counts the WAL and the checkpoints) and the wall time.
With ``--rate`` it also streams at that many MB/s for ``--paced-seconds`` and reports the worst
lag: text handed to the store but not yet committed, in bytes and in seconds of text.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from victor_gui.storage import open_store

DELTA = "abcdefghij klmnopqrst uvwxyz0123 " * 31 + "ab\n"  # 1 KB


def _written(field: str = "write_bytes") -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _committed(db: Path, mid: int) -> int:
    """Characters of reply ``mid`` a fresh reader sees (what survives a crash now)."""
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT length(content) FROM messages WHERE id=?", (mid,)).fetchone()
        chunks = conn.execute(
            "SELECT coalesce(sum(length(text)), 0) FROM message_chunks WHERE message_id=?", (mid,)
        ).fetchone() if _has_chunks(conn) else (0,)
        return int(row[0]) + int(chunks[0])
    finally:
        conn.close()


def _has_chunks(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name='message_chunks'").fetchone() is not None


async def burst(folder: Path, mb: int) -> tuple[int, int, float]:
    store, _ = await open_store(folder)
    conv = await store.create_conversation()
    mid = await store.begin_assistant_message(conv.id)
    before, wchar, t0 = _written(), _written("wchar"), time.perf_counter()
    for _ in range(mb * 1024):
        await store.append_partial(mid, DELTA)
    await store.finish_message(mid, "complete")
    await store.close()
    return _written() - before, _written("wchar") - wchar, time.perf_counter() - t0


async def paced(folder: Path, rate_mb: float, seconds: float) -> tuple[int, float]:
    """Worst (bytes behind, seconds behind) while a reply arrives at ``rate_mb`` MB/s.

    The reply arrives on its own clock (as from a server) into a queue; the consumer writes the
    queue into the store as the chat session does. Lag: text arrived but not yet committed.
    """
    store, _ = await open_store(folder)
    conv = await store.create_conversation()
    mid = await store.begin_assistant_message(conv.id)
    queue: list[str] = []
    arrived = 0
    done = asyncio.Event()

    async def produce() -> None:
        nonlocal arrived
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            due = int(elapsed * rate_mb * 1024) - arrived // len(DELTA)
            queue.extend([DELTA] * max(0, due))
            arrived += len(DELTA) * max(0, due)
            await asyncio.sleep(0.005)
        done.set()

    async def consume() -> None:
        while not (done.is_set() and not queue):
            while queue:
                await store.append_partial(mid, queue.pop(0))
            await asyncio.sleep(0.001)

    async def watch() -> int:
        worst = 0
        while not done.is_set():
            await asyncio.sleep(0.5)
            seen = arrived
            worst = max(worst, seen - await asyncio.to_thread(_committed, store.path, mid))
        return worst

    producer = asyncio.create_task(produce())
    consumer = asyncio.create_task(consume())
    worst = await watch()
    print(f"at {rate_mb} MB/s for {seconds:.0f} s: worst lag {worst / 1024:.0f} KB"
          f" = {worst / (rate_mb * 2**20):.3f} s of text", flush=True)
    await producer
    await consumer
    await store.finish_message(mid, "complete")
    await store.close()
    return worst, worst / (rate_mb * 2**20)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, nargs="*", default=[2, 8])
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--paced-seconds", type=float, default=20.0)
    args = ap.parse_args()
    for mb in args.mb:
        with tempfile.TemporaryDirectory() as d:
            written, wchar, took = await burst(Path(d), mb)
            print(f"{mb} MB reply in 1 KB deltas: wrote {written / 2**20:.1f} MiB to disk"
                  f" ({wchar / 2**20:.1f} MiB through write()) in {took:.2f} s", flush=True)
    if args.rate:
        with tempfile.TemporaryDirectory() as d:
            await paced(Path(d), args.rate, args.paced_seconds)


if __name__ == "__main__":
    asyncio.run(main())
