"""Search over one big message whose words match all over it (run by hand, under prlimit).

    python bench/bench_search_snippet.py [--mb 0.25 0.5 1 2 10]

Prints, per size, how long one type-ahead search takes and this process's peak RSS. With
FTS5's snippet() this was quadratic (0.25 MB 3.6 s, 0.5 MB 17 s, 1 MB 80 s); snippets are now
built in Python from a bounded head of the hit (victor_gui.storage.search).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from victor_gui.storage import open_store


async def one(mb: float) -> float:
    with tempfile.TemporaryDirectory() as d:
        store, _ = await open_store(d)
        conv = await store.create_conversation()
        await store.add_message(conv.id, "assistant", "ocelot runs far and wide " * int(mb * 2**20 / 25))
        t0 = time.perf_counter()
        await store.search("ocelot")
        took = time.perf_counter() - t0
        await store.close()
        return took


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, nargs="*", default=[0.25, 0.5, 1, 2, 10])
    for mb in ap.parse_args().mb:
        took = await one(mb)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{mb:g} MB message: search {took * 1000:.1f} ms, peak RSS so far {peak:.0f} MB", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
