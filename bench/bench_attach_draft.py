"""How the attachment draft keeps the event loop free: the longest loop gap while a large text
file (past the converter's 32 MiB text limit: refused from its size), a text just under that
limit (copied and hashed into the store's blobs, converted in a child process, tokens
estimated) and a 12-megapixel photo (measured and thumbnailed) are added, and how long each
takes. A real store (SQLite file and blob folder) in a temporary folder.

    python -m bench.bench_attach_draft [--mb 200] [--under-mb 30]

Run it under a memory bound (``prlimit --as=3000000000``). Only for people; nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import sys
import tempfile
import time
from pathlib import Path


async def _measure(label: str, work) -> None:  # type: ignore[no-untyped-def]
    gaps = [0.0]
    done = False

    async def tick() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps[0] = max(gaps[0], now - last - 0.005)
            last = now

    ticker = asyncio.ensure_future(tick())
    started = time.perf_counter()
    item = await work()
    took = time.perf_counter() - started
    done = True
    await ticker
    print(f"{label}: {item.state} in {took:.2f} s, {item.tokens or 0:,} tokens; "
          f"longest loop gap {gaps[0] * 1000:.1f} ms")


def _write_text(path: Path, mb: float) -> int:
    line = b"The quick brown fox jumps over the lazy dog; 0123456789.\n"
    block = line * ((1 << 20) // len(line) + 1)
    written = 0
    with path.open("wb") as out:
        while written + len(block) <= mb * (1 << 20):
            out.write(block)
            written += len(block)
    return written


async def main_async(mb: int, under_mb: float) -> None:
    from PIL import Image

    from victor_gui.services.attachment_draft import AttachmentDraft
    from victor_gui.storage import open_store

    with tempfile.TemporaryDirectory() as home:
        folder = Path(home)
        big = folder / "big.txt"
        written = _write_text(big, mb)
        under = folder / "under-limit.txt"
        under_size = _write_text(under, under_mb)
        photo = folder / "photo.jpg"
        out_img = io.BytesIO()
        Image.effect_noise((4000, 3000), 64).convert("RGB").save(out_img, "JPEG", quality=90)
        photo.write_bytes(out_img.getvalue())
        store, _notice = await open_store(folder / "data")
        try:
            draft = AttachmentDraft(store)
            await _measure(f"text file {written / 1e6:.0f} MB", lambda: draft.add_path(big))
            await _measure(f"text file {under_size / 1e6:.0f} MB", lambda: draft.add_path(under))
            label = f"photo 4000x3000 ({photo.stat().st_size / 1e6:.1f} MB)"
            await _measure(label, lambda: draft.add_path(photo))
        finally:
            await store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--under-mb", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(main_async(args.mb, args.under_mb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
