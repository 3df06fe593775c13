"""How the attachment draft keeps the event loop free: the longest loop gap while a large text
file and a 12-megapixel photo are added (copied and hashed into the blob folder, converted or
measured and thumbnailed, tokens estimated), and how long each takes.

    python -m bench.bench_attach_draft [--mb 200]

Run it under a memory bound (``prlimit --as=3000000000``): the baseline converter reads the
whole text. Only for people; nothing here is a test.
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


async def main_async(mb: int) -> None:
    from PIL import Image

    from victor_gui.services.attachment_draft import AttachmentDraft
    from victor_gui.storage.blobs import BlobStore

    with tempfile.TemporaryDirectory() as home:
        folder = Path(home)
        big = folder / "big.txt"
        line = b"The quick brown fox jumps over the lazy dog; 0123456789.\n"
        with big.open("wb") as out:
            block = line * (1 << 20 // len(line) + 1)
            written = 0
            while written < mb << 20:
                out.write(block)
                written += len(block)
        photo = folder / "photo.jpg"
        out_img = io.BytesIO()
        Image.effect_noise((4000, 3000), 64).convert("RGB").save(out_img, "JPEG", quality=90)
        photo.write_bytes(out_img.getvalue())
        draft = AttachmentDraft(BlobStore(folder / "blobs"))
        await _measure(f"text file {written / 1e6:.0f} MB", lambda: draft.add_path(big))
        label = f"photo 4000x3000 ({photo.stat().st_size / 1e6:.1f} MB)"
        await _measure(label, lambda: draft.add_path(photo))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200)
    asyncio.run(main_async(parser.parse_args().mb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
