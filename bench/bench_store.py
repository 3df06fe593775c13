"""Conversation store benchmarks (run by hand; not part of the unit suite).

    python bench/bench_store.py [--messages 1000000] [--dir PATH]

Prints three figures against the budgets of the task:

1. opening a 5,000-message chat to its first page (open_store + last 50 messages): <= 200 ms;
2. a full-text query over ``--messages`` generated messages, whole words and prefixes of 2-8
   characters (the type-ahead case): <= 50 ms;
3. the longest event-loop stall while 10,000 deltas stream into the store: <= 16 ms.

The big database is generated with ``executemany`` in one transaction through the real schema
(so the FTS triggers index every row), and reused on later runs if ``--dir`` is given; a
database there from an older schema is migrated on the first open (``first_open_or_migrate_ms``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from victor_gui.storage import open_store
from victor_gui.storage.store import DB_NAME

_INSERT = (
    "INSERT INTO messages(conversation_id, position, role, content, created, updated) VALUES (?,?,?,?,?,?)"
)
# Rows written straight in, as the store would have chained them: each message follows the one
# before it in its chat (a single-branch tree, see victor_gui.storage.tree).
_CHAIN = ("UPDATE messages SET parent_id = (SELECT p.id FROM messages p WHERE p.conversation_id = "
          "messages.conversation_id AND p.position = messages.position - 1) "
          "WHERE parent_id IS NULL AND position > 0")
_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "dra", "qu", "zen", "ox", "bel", "tor"]


def _vocabulary(n: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choices(_SYLLABLES, k=rng.randint(2, 4))))
    return sorted(words)


def _texts(count: int, rng: random.Random, vocab: list[str]) -> list[str]:
    # Zipf-like word frequencies, like real language: a few very common words, a long tail.
    cum, total = [], 0.0
    for i in range(len(vocab)):
        total += 1.0 / (i + 1)
        cum.append(total)
    return [" ".join(rng.choices(vocab, cum_weights=cum, k=rng.randint(8, 40))) for _ in range(count)]


def generate(db: Path, messages: int, per_chat: int = 500) -> float:
    """Fill ``db`` (already created by open_store) with ``messages`` rows; returns seconds taken."""
    rng = random.Random(7)
    vocab = _vocabulary(20_000, rng)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    started = time.perf_counter()
    conn.execute("BEGIN")
    chats = (messages + per_chat - 1) // per_chat
    conn.executemany(
        "INSERT INTO conversations(id, title, created, updated, params) VALUES (?,?,?,?, '{}')",
        [(100 + c, f"chat {c}", c, c) for c in range(chats)],
    )
    batch = 50_000
    for start in range(0, messages, batch):
        n = min(batch, messages - start)
        texts = _texts(n, rng, vocab)
        rows = [
            (
                100 + (start + i) // per_chat,
                (start + i) % per_chat,
                "user" if i % 2 else "assistant",
                texts[i],
                float(start + i),
                float(start + i),
            )
            for i in range(n)
        ]
        conn.executemany(
            _INSERT,
            rows,
        )
    conn.execute(_CHAIN)
    conn.execute("COMMIT")
    conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


async def bench_first_page(folder: Path) -> dict[str, float]:
    store, _ = await open_store(folder)
    conv = await store.create_conversation("long chat")
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        _INSERT,
        [
            (conv.id, i, "user" if i % 2 else "assistant", f"message {i} " + "lorem ipsum " * 60, i, i)
            for i in range(5000)
        ],
    )
    conn.execute(_CHAIN)
    conn.execute("COMMIT")
    conn.close()
    await store.close()
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        store, _ = await open_store(folder)
        page = await store.get_messages(conv.id, limit=50)
        timings.append((time.perf_counter() - t0) * 1000)
        assert len(page) == 50
        t1 = time.perf_counter()
        everything = await store.get_messages(conv.id)
        full = (time.perf_counter() - t1) * 1000
        assert len(everything) == 5000
        await store.close()
    return {
        "first_page_ms": statistics.median(timings),
        "first_page_max_ms": max(timings),
        "all_5000_ms": full,
    }


async def bench_search(folder: Path, messages: int) -> dict[str, float]:
    db = folder / DB_NAME
    t0 = time.perf_counter()
    store, _ = await open_store(folder)  # create the schema, or migrate a database from --dir
    first_open_ms = (time.perf_counter() - t0) * 1000
    count = await store._db.read(lambda c: c.execute("SELECT count(*) FROM messages").fetchone()[0])
    await store.close()
    gen = 0.0
    if count < messages:
        print(f"generating {messages:,} messages ...", flush=True)
        gen = generate(db, messages - count)
    t0 = time.perf_counter()
    store, _ = await open_store(folder)
    open_ms = (time.perf_counter() - t0) * 1000
    vocab = _vocabulary(20_000, random.Random(7))
    # A trailing space marks a finished word (matched whole); "foo*" is a prefix, and so is the
    # last word as typed (type-ahead). vocab[5] is among the most frequent words: the worst case.
    queries = {
        "common word": vocab[0] + " ",
        "rare word": vocab[15_000] + " ",
        "two words": f"{vocab[3]} {vocab[40]} ",
        "explicit prefix*": vocab[5][:4] + "*",
        **{f"prefix {n} chars": vocab[5][:n] + "*" for n in (2, 3, 4, 5, 6, 7, 8)},
        "common word typed": vocab[0],
        "no match": "zzzyyyxxx",
        "syntax soup": 'AND "(" NEAR -',
    }
    fts_mb = await store._db.read(
        lambda c: c.execute("SELECT sum(length(block)) FROM messages_fts_data").fetchone()[0] / 1e6
    )
    result: dict[str, float] = {
        "generate_s": gen,
        "first_open_or_migrate_ms": first_open_ms,
        "open_big_db_ms": open_ms,
        "fts_index_mb": fts_mb,
    }
    for label, q in queries.items():
        await store.search(q, limit=50)  # warm the page cache once
        samples = []
        for _ in range(20):
            t1 = time.perf_counter()
            await store.search(q, limit=50)
            samples.append((time.perf_counter() - t1) * 1000)
        result[f"search[{label}]_median_ms"] = statistics.median(samples)
        result[f"search[{label}]_max_ms"] = max(samples)
    await store.close()
    return result


async def bench_loop_stall(
    folder: Path, deltas: int = 10_000, pace_s: float = 0.0, *, write: bool = True
) -> dict[str, float]:
    """Loop gaps while deltas stream; ``write=False`` is the baseline (same loop, no store)."""
    store, _ = await open_store(folder)
    conv = await store.create_conversation("stream")
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append((now - last) * 1000)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    t0 = time.perf_counter()
    mid = await store.begin_assistant_message(conv.id, provider="bench", model="m")
    for i in range(deltas):
        if write:
            await store.append_partial(mid, f"tok{i} ", "")
        if pace_s:
            await asyncio.sleep(pace_s)  # a model producing tokens at a human-visible rate
        elif i % 20 == 0:
            await asyncio.sleep(0)  # a real stream yields between network reads
    await store.finish_message(mid, "complete")
    elapsed = time.perf_counter() - t0
    stop.set()
    await tick
    await store.close()
    gaps.sort()
    tag = ("paced" if pace_s else "burst") + ("" if write else "-baseline")
    return {
        f"stream[{tag}]_s": elapsed,
        f"loop_gap[{tag}]_max_ms": gaps[-1],
        f"loop_gap[{tag}]_p99_ms": gaps[int(len(gaps) * 0.99)],
        f"ticks[{tag}]": len(gaps),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages for the search bench")
    parser.add_argument("--dir", type=Path, default=None, help="keep/reuse the big database here")
    parser.add_argument("--skip-search", action="store_true", help="only the page and loop-stall figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="victor-bench-") as tmp:
        big = args.dir or Path(tmp) / "big"
        figures = {}
        figures.update(await bench_first_page(Path(tmp) / "page"))
        figures.update(await bench_loop_stall(Path(tmp) / "stall"))
        figures.update(await bench_loop_stall(Path(tmp) / "stall2", pace_s=0.0005))
        figures.update(await bench_loop_stall(Path(tmp) / "stall3", pace_s=0.0005, write=False))
        if not args.skip_search:
            figures.update(await bench_search(big, args.messages))
    budgets = {"first_page_ms": 200, "loop_gap[burst]_max_ms": 16, "loop_gap[paced]_max_ms": 16}
    budgets |= {k: 50 for k in figures if k.startswith("search[")}
    for name, value in figures.items():
        budget = budgets.get(name)
        mark = "" if budget is None else ("  OK" if value <= budget else f"  OVER budget {budget}")
        print(f"{name:36s} {value:12.2f}{mark}")


if __name__ == "__main__":
    asyncio.run(main())
