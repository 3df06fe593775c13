"""convert_in_worker: the conversion runs in a child process, the event loop keeps ticking,
progress arrives on the loop, errors come back typed, and a cancel kills the child at once."""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.services.doc_files import make_pdf
from victor_gui.errors import AttachmentError
from victor_gui.services.doc_convert import convert_document
from victor_gui.services.doc_worker import convert_in_worker

# Pages of the PDF whose thread conversion is cancelled (see that test).
PAGES_LONG = 2000
PAGE = "\n".join(f"Line {i} of a page about quarterly figures and their causes." for i in range(40))


def converters() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("convert ")]


async def test_child_converts_like_the_function_and_reports_progress_on_the_loop(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "r.pdf", [PAGE] * 12 + [None])
    seen: list[tuple[int, int, bool]] = []
    loop_thread = threading.get_ident()
    doc = await convert_in_worker(
        path, progress=lambda d, t: seen.append((d, t, threading.get_ident() == loop_thread)))
    assert doc == convert_document(path)
    assert seen and seen[-1][:2] == (13, 13) and all(on_loop for *_, on_loop in seen)
    assert converters() == []


async def test_errors_come_back_typed_with_the_file_name(tmp_path: Path) -> None:
    with pytest.raises(AttachmentError) as caught:
        await convert_in_worker(make_pdf(tmp_path / "locked.pdf", ["x"], password="pw"))
    assert (caught.value.reason, caught.value.name) == ("encrypted", "locked.pdf")
    with pytest.raises(AttachmentError) as gone:
        await convert_in_worker(tmp_path / "nowhere.txt")
    assert gone.value.reason == "vanished"


async def test_the_loop_keeps_ticking_while_a_big_pdf_converts(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "big.pdf", [PAGE] * 120)
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    doc = await convert_in_worker(path)
    done.set()
    await tick
    assert doc.pages == 120
    # Generous bounds for a loaded 2-core CI (bench/bench_convert.py has the real figures:
    # ~20-30 ms longest gap in a child against 50-150 ms in a thread).
    assert len(gaps) >= 20
    assert max(gaps) < 0.25, f"longest loop gap {max(gaps) * 1000:.0f} ms"


async def test_cancel_kills_the_child_at_once(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "long.pdf", [PAGE] * 400)
    started = asyncio.Event()
    task = asyncio.create_task(convert_in_worker(path, progress=lambda d, t: started.set()))
    await asyncio.wait_for(started.wait(), 30)
    (child,) = converters()
    pid = child.pid
    assert pid is not None and psutil.pid_exists(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not psutil.pid_exists(pid)  # killed and reaped by the time the cancel returns
    assert converters() == []


async def test_thread_mode_converts_and_stops_at_the_next_page_when_cancelled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = make_pdf(tmp_path / "s.pdf", [PAGE] * 3)
    assert (await convert_in_worker(small, mode="thread")) == convert_document(small)
    # The cancel must land while the thread converts. Page count alone did not make sure of it:
    # CI once saw 400 pages and then 2,000 all done before the loop ran the second page's
    # progress. So the real conversion is paced: each page's report also sleeps 2 ms in the
    # thread (a sleep lets the loop have the GIL), at least 4 s for the whole file.
    from victor_gui.services import doc_convert

    def paced(path: object, *, progress: object = None, cancelled: object = None) -> object:
        def report(done: int, total: int) -> None:
            time.sleep(0.002)
            progress(done, total)  # type: ignore[operator]

        return convert_document(path, progress=report, cancelled=cancelled)  # type: ignore[arg-type]

    monkeypatch.setattr(doc_convert, "convert_document", paced)
    path = make_pdf(tmp_path / "long.pdf", [PAGE] * PAGES_LONG)
    pages: list[int] = []
    holder: list[asyncio.Task[object]] = []

    def progress(done: int, total: int) -> None:
        pages.append(done)
        if len(pages) == 2 and holder:  # a page is done: cancel from here, with no loop turn between
            holder[0].cancel()

    task = asyncio.create_task(convert_in_worker(path, mode="thread", progress=progress))
    holder.append(task)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), 60)
    stopped_at = len(pages)
    await asyncio.sleep(0.3)
    assert len(pages) == stopped_at < PAGES_LONG  # the thread stopped; nothing more arrives


async def test_auto_mode_takes_a_thread_for_small_text_and_a_child_for_a_pdf(tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("# Title\n\nsmall text\n")
    children_seen: list[int] = []
    doc = await convert_in_worker(note, progress=lambda d, t: children_seen.append(len(converters())))
    assert doc == convert_document(note) and children_seen and set(children_seen) == {0}
    pdf = make_pdf(tmp_path / "p.pdf", [PAGE] * 3)
    doc = await convert_in_worker(pdf, progress=lambda d, t: children_seen.append(len(converters())))
    assert doc.pages == 3 and children_seen[-1] == 1  # the child, still alive while it reports


@pytest.mark.skipif(sys.platform == "win32", reason="the address-space cap is POSIX only")
async def test_the_childs_memory_cap_turns_a_too_big_conversion_into_too_large(tmp_path: Path) -> None:
    path = tmp_path / "wide.txt"
    path.write_bytes(("é ünï " * 10 + "\n").encode() * (25 * 2**20 // 80))  # 25 MB of 2-byte text
    with pytest.raises(AttachmentError) as caught:
        await convert_in_worker(path, mode="process", memory_limit=64 * 2**20)
    assert caught.value.reason == "too_large" and "needs more memory" in str(caught.value)
    assert converters() == []
