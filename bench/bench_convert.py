"""Document conversion off the event loop: a thread vs a child process (run by hand, under prlimit).

    prlimit --as=3000000000 python bench/bench_convert.py [--pages N] [--text-mb M] [--modes ...]

Builds, in a temporary folder, a PDF of ``--pages`` pages (pypdf, ~40 text lines a page), a
DOCX of 4000 paragraphs, a ``--text-mb`` MB text file (under the 32 MiB text limit) and a 200 MB
one (over it), converts each with :func:`victor_gui.services.doc_worker.convert_in_worker` in
each mode while a ticker coroutine sleeps 2 ms at a time, and prints per file and mode: seconds,
pages/s or MB/s, the event loop's **longest gap** between ticks, the ticks counted, and how long
a cancel issued 0.5 s into the PDF took to end the conversion.

Figures (2 shared vCPUs, 8 users on the machine, Python 3.11.7, 2026-12-07 00:45 UTC; idle
longest gap 17 ms; thread / process, "auto" picks process for all but the small text):

* 400-page PDF (1.5 MB): 37 / 32 pages/s; longest loop gap **72 ms** / **42 ms**.
* 20,000-paragraph DOCX: 5.1 / 4.8 s; longest gap **168 ms** / **23 ms**.
* 31 MB text: 35 / 9 MB/s (the child pickles the text back section by section); longest gap
  **190 ms** / **20 ms**.
* 200 MB text: refused as too_large in 1-4 ms in every mode (``check_document`` in the parent,
  from the size, before any child starts); gap 3 ms.
* 0.5 MB text: 0.01 s in a thread, 1.06 s in a child (its start); auto takes the thread: 2.6 ms gap.
* Chunking the 31 MB text into 512-token chunks: 21,444 chunks in 2.7 s (~8,000 chunks/s).
* Cancel 0.5 s into the PDF: 25 ms (thread: stops at its next page; one slow page would hold it)
  / 7 ms (the child is killed).

Earlier runs the same day gave the same picture (thread 48-231 ms, child 15-44 ms). The thread's
gaps are the GIL: pypdf and python-docx are pure Python, and the loop thread gets the GIL back
only every switch interval (5 ms) and not during one long call (decoding or joining 30 MB, lxml
parsing a document part). The child's gaps are the loaded machine's own noise plus receiving its
sections. Decision: a child process for PDF/Office and text past 1 MiB (also for the memory cap
on hostile files), a thread for small text; the ratios matter more than the absolute figures on
this shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from victor_gui.errors import AttachmentError
from victor_gui.services.doc_convert import chunk_document
from victor_gui.services.doc_worker import WorkerMode, convert_in_worker

LINE = "The quick brown fox jumps over the lazy dog, and then it writes a report on page {}."


async def watch(work: Awaitable[object]) -> tuple[float, float, int, object]:
    """Run ``work`` while ticking; (seconds, longest gap ms, ticks, result or error)."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    start = time.perf_counter()
    try:
        result: object = await work
    except AttachmentError as exc:
        result = exc
    took = time.perf_counter() - start
    stop.set()
    await tick
    return took, max(gaps, default=0.0) * 1000, len(gaps), result


def build(folder: Path, pages: int, text_mb: float, paragraphs: int) -> dict[str, Path]:
    # Imported here, not at the top: the spawned child re-imports this script as its __main__,
    # and the app's own __main__ imports none of these.
    import docx

    from tests.services.doc_files import make_pdf

    page_text = "\n".join(LINE.format(i) for i in range(40))
    pdf = make_pdf(folder / "big.pdf", [page_text] * pages)
    document = docx.Document()
    for i in range(paragraphs):
        if i % 100 == 0:
            document.add_heading(f"Part {i // 100}", level=1)
        document.add_paragraph(LINE.format(i) * 3)
    document.save(str(folder / "big.docx"))
    line = (LINE + "\n").encode()
    with (folder / "big.txt").open("wb") as fh:
        for i in range(int(text_mb * 2**20 / len(line))):
            fh.write(line.replace(b"{}", str(i).encode()))
    block = line * (2**20 // len(line))
    with (folder / "huge.txt").open("wb") as fh:
        for _ in range(200):
            fh.write(block)
    (folder / "small.txt").write_bytes(line * (2**19 // len(line)))
    return {"pdf": pdf, "docx": folder / "big.docx", "text": folder / "big.txt",
            "huge": folder / "huge.txt", "small": folder / "small.txt"}


async def cancel_after(path: Path, mode: WorkerMode, after_s: float) -> float:
    task = asyncio.create_task(convert_in_worker(path, mode=mode))
    await asyncio.sleep(after_s)
    start = time.perf_counter()
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, AttachmentError):
        pass
    return time.perf_counter() - start


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=400)
    ap.add_argument("--text-mb", type=float, default=30)
    ap.add_argument("--modes", nargs="*", default=["thread", "process", "auto"])
    ap.add_argument("--docx-paragraphs", type=int, default=20000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = build(Path(tmp), args.pages, args.text_mb, args.docx_paragraphs)
        took, gap, ticks, _ = await watch(asyncio.sleep(3))
        print(f"idle  (no conversion, 3 s)                                         "
              f"longest loop gap {gap:6.1f} ms  ticks {ticks}", flush=True)
        for name, path in files.items():
            size_mb = path.stat().st_size / 2**20
            for mode in args.modes:
                took, gap, ticks, result = await watch(convert_in_worker(path, mode=mode))
                if isinstance(result, AttachmentError):
                    rate = f"refused ({result.reason}) in {took * 1000:.1f} ms"
                elif name == "pdf":
                    rate = f"{args.pages / took:.0f} pages/s"
                else:
                    rate = f"{size_mb / took:.1f} MB/s"
                print(f"{name:5} {size_mb:7.1f} MB {mode:8} {took:6.2f} s  {rate:32} "
                      f"longest loop gap {gap:6.1f} ms  ticks {ticks}", flush=True)
        doc = await convert_in_worker(files["text"])
        start = time.perf_counter()
        chunks = chunk_document(doc)
        took = time.perf_counter() - start
        print(f"chunk the {files['text'].stat().st_size / 2**20:.0f} MB text (512-token chunks): "
              f"{len(chunks)} chunks in {took:.2f} s, {len(chunks) / took:.0f} chunks/s")
        for mode in ("thread", "process"):
            took = await cancel_after(files["pdf"], mode, 0.5)  # type: ignore[arg-type]
            print(f"cancel 0.5 s into the PDF ({mode}): ended {took * 1000:.0f} ms after the cancel")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
