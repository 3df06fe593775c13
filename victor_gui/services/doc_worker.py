"""Converting a document off the event loop: :func:`convert_in_worker`.

The conversion runs in a **child process** (``multiprocessing``, ``spawn``), not a thread,
except for small text-like files. Measured with ``bench/bench_convert.py`` (figures in its
docstring): pypdf and python-docx are pure Python and hold the GIL, and decoding or joining a
30 MB text holds it too, so in a thread the event loop waits behind them (it gets the GIL back
only every switch interval, and not during one long C call); in a child the loop ticks as when
idle. The child also makes cancel immediate — it is killed, not asked to stop at its next page
— and contains a hostile file: its address space is capped (:data:`CHILD_MEMORY_LIMIT`, POSIX),
so a decompression bomb ends the child with an error instead of swapping the app. The price is
the child's start (0.5-1 s on the loaded bench machine), paid once per file; a text-like file up to
:data:`THREAD_MAX_BYTES` skips it and converts in a thread, where its gaps measured like idle.

The child sends progress (at most every :data:`PROGRESS_EVERY_S`), then the document section by
section, then the rest or the error, through a pipe; one reader thread per conversion turns
those into calls on the loop. A frozen app must call ``multiprocessing.freeze_support()`` first
thing (``packaging/entry.py`` does), and any script that uses this must guard its main code with
``if __name__ == "__main__"`` (the spawned child imports the main module).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

from victor_gui.errors import AttachmentError
from victor_gui.services.attachment_types import ConvertedDocument, DocumentSection
from victor_gui.services.doc_convert import check_document

ProgressFn = Callable[[int, int], None]
WorkerMode = Literal["auto", "process", "thread"]

# The child's address space (POSIX only): the largest accepted file (100 MiB of PDF) parses in
# well under this; a zip or PDF bomb hits it and ends as "too_large".
CHILD_MEMORY_LIMIT = 2 * 1024 * 1024 * 1024
PROGRESS_EVERY_S = 0.05
_KILL_WAIT_S = 2.0
# "auto": a text-like file up to this size converts in a thread (bench: its loop gap is the idle
# machine's, and it saves the child's 0.5-1 s start); everything else in a child.
THREAD_MAX_BYTES = 1024 * 1024
_HEAVY_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\xd0\xcf\x11\xe0")


def _small_text(path: Path) -> bool:
    """Whether ``path`` is small and not a PDF/Office file (so cheap to convert in a thread)."""
    try:
        if path.stat().st_size > THREAD_MAX_BYTES:
            return False
        with path.open("rb") as fh:
            head = fh.read(1024)
    except OSError:
        return True  # the converter says what is wrong, as fast in a thread
    return not head.startswith(_HEAVY_MAGIC) and not head.startswith(b"%PDF-") \
        and path.suffix.lower() != ".pdf"


def _limit_memory(limit: int | None) -> None:
    if not limit or sys.platform == "win32":
        return
    import resource

    with contextlib.suppress(ValueError, OSError):  # a lower hard limit already in place wins
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _child_main(path: str, conn: Connection, memory_limit: int | None) -> None:
    """The child process: convert ``path`` and send ``("progress", done, total)`` messages, then
    ``("section", section)`` for each section and ``("done", document without its sections)``,
    or ``("error", message, reason, name)``."""
    _limit_memory(memory_limit)
    from victor_gui.services.doc_convert import convert_document

    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S or done >= total:
            last = now
            conn.send(("progress", done, total))

    name = Path(path).name
    try:
        try:
            document = convert_document(path, progress=progress)
            # Section by section (each at most ~1 MiB: doc_convert.MAX_SECTION_CHARS): unpickling
            # one 30 MB message would hold the parent's GIL, so its event loop, for tens of ms.
            for section in document.sections:
                conn.send(("section", section))
            conn.send(("done", replace(document, sections=())))
        except AttachmentError as exc:
            conn.send(("error", str(exc), exc.reason, exc.name))
        except MemoryError:
            conn.send(("error", f"{name} needs more memory to convert than is allowed; split it or "
                                "attach the part you need.", "too_large", name))
        except Exception as exc:  # a converter's unexpected failure is a broken file, said plainly
            conn.send(("error", f"{name} could not be converted ({type(exc).__name__}).", "broken", name))
    except (BrokenPipeError, OSError):
        pass  # the parent is gone or cancelled: nothing to tell
    finally:
        conn.close()


def _error(message: tuple[Any, ...]) -> AttachmentError:
    _, text, reason, name = message
    return AttachmentError(str(text), reason=str(reason), name=name)


async def _in_process(path: Path, progress: ProgressFn | None, memory_limit: int | None) -> ConvertedDocument:
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(str(path), writer, memory_limit), daemon=True,
                            name=f"convert {path.name}")
    messages: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def read_all() -> None:
        # One thread per conversion blocks on the pipe (portable: Windows pipes have no selector).
        try:
            while True:
                item = reader.recv()
                loop.call_soon_threadsafe(messages.put_nowait, item)
                if item[0] not in ("progress", "section"):
                    return
        except (EOFError, OSError):
            with contextlib.suppress(RuntimeError):  # the loop may be closed by then
                loop.call_soon_threadsafe(messages.put_nowait, ("eof",))

    # Spawning writes the child's start-up data and waits for it: not on the loop. Shielded, so a
    # cancel during the start still knows the child and kills it below.
    started = asyncio.ensure_future(asyncio.to_thread(child.start))
    try:
        await asyncio.shield(started)
        writer.close()
        threading.Thread(target=read_all, name=f"convert-reader {path.name}", daemon=True).start()
        sections: list[DocumentSection] = []
        while True:
            message = await messages.get()
            kind = message[0]
            if kind == "progress":
                if progress is not None:
                    progress(int(message[1]), int(message[2]))
            elif kind == "section":
                sections.append(message[1])
            elif kind == "done":
                document: ConvertedDocument = message[1]
                return replace(document, sections=tuple(sections))
            elif kind == "error":
                raise _error(message)
            else:
                raise AttachmentError(
                    f"Converting {path.name} stopped: the converter ended without an answer "
                    f"(exit code {await asyncio.to_thread(_exit_code, child)}).", reason="broken",
                    name=path.name)
    finally:
        writer.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.shield(started)
        await asyncio.shield(asyncio.to_thread(_reap, child, reader))


def _exit_code(child: Any) -> int | None:
    child.join(_KILL_WAIT_S)
    code: int | None = child.exitcode
    return code


def _reap(child: Any, reader: Connection) -> None:
    """Kill the child if it still runs (cancelled, or failed: it does not get to finish), wait
    for it, close the pipe."""
    if child.pid is not None:
        if child.is_alive():
            child.kill()
        child.join(_KILL_WAIT_S)
    reader.close()
    with contextlib.suppress(ValueError):  # "process not finished": left to the daemon cleanup
        child.close()


async def _in_thread(path: Path, progress: ProgressFn | None) -> ConvertedDocument:
    from victor_gui.services.doc_convert import convert_document

    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def report(done: int, total: int) -> None:
        if progress is not None:
            loop.call_soon_threadsafe(progress, done, total)

    work = asyncio.ensure_future(asyncio.to_thread(convert_document, path, progress=report,
                                                   cancelled=stop.is_set))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        stop.set()  # the thread stops at its next page/block; wait for that, so "ended" is true
        with contextlib.suppress(AttachmentError):
            await work
        raise


async def convert_in_worker(path: str | os.PathLike[str], *, progress: ProgressFn | None = None,
                            mode: WorkerMode = "auto",
                            memory_limit: int | None = CHILD_MEMORY_LIMIT) -> ConvertedDocument:
    """:func:`~victor_gui.services.doc_convert.convert_document` in a worker (module docstring):
    ``auto`` is a thread for a text-like file up to :data:`THREAD_MAX_BYTES`, else a child
    process; ``process`` and ``thread`` force one. ``progress(done, total)`` is called on the
    event loop. Cancelling the awaiting task kills the child at once (a thread stops at its next
    block); errors are the converter's :class:`~victor_gui.errors.AttachmentError`."""
    target = Path(path)
    # The checks that need no parsing (size, format, vanished) refuse at once, without a child.
    await asyncio.to_thread(check_document, target)
    if mode == "auto":
        mode = "thread" if await asyncio.to_thread(_small_text, target) else "process"
    if mode == "thread":
        return await _in_thread(target, progress)
    return await _in_process(target, progress, memory_limit)
