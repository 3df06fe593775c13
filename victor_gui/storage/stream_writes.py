"""The store's base: its database and locks, and the buffered writes of streamed replies.

A streamed reply is a row in status ``streaming`` from its first moment; deltas are buffered
and committed every :attr:`StreamWrites.flush_interval` seconds or
:attr:`StreamWrites.flush_chars` characters, each flush its own transaction that appends one
chunk (:mod:`victor_gui.storage.chunks`: linear in the reply, never a rewrite of the row). The
chunks are folded into the row when the reply ends (:meth:`StreamWrites.finish_message`).

A flush that fails (the file is locked by another program, the disk is full) loses nothing: the
text stays buffered and is retried on the next flush, and the caller hears a
:class:`StorageError` saying why (from :meth:`StreamWrites.append_partial`, also for a failure
of the background flush of a stalled stream); never an unretrieved task exception.

:class:`~victor_gui.storage.store.ConversationStore` builds on this class; every read of
messages flushes first (:meth:`StreamWrites._flush_quietly`) so it sees the live text.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from victor_gui.core.redact import redact
from victor_gui.errors import StorageError
from victor_gui.providers.types import Timings, ToolCall, Usage
from victor_gui.storage.blobs import BLOB_DIR, BlobStore
from victor_gui.storage.chunks import append_chunk, fold
from victor_gui.storage.db import Database
from victor_gui.storage.instance_lock import INSTANCE, FileLock
from victor_gui.storage.message_rows import dumps, tool_calls_json, usage_columns
from victor_gui.storage.models import STATUSES
from victor_gui.storage.vectors import VectorStore


@dataclass
class _Pending:
    """Text of a streaming reply received but not yet committed."""

    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    chars: int = 0
    last_flush: float = field(default_factory=time.monotonic)
    timer: asyncio.TimerHandle | None = None
    # When a flush last failed: size-triggered retries wait flush_interval after it, so a
    # locked file is not retried (and waited on) at every delta.
    failed_at: float | None = None
    # A failure of the background (timer) flush, told to the caller at its next append.
    unreported: StorageError | None = None
    # Held from taking the text to committing it (or putting it back): a flush that starts
    # while another is writing waits, so text a failed write puts back still goes before the
    # text that came after it.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class StreamWrites:
    """The database handle, the file's locks and the buffer of streaming replies (the base of
    :class:`~victor_gui.storage.store.ConversationStore`)."""


    flush_interval = 0.25
    flush_chars = 2048
    # How long a streaming flush waits for another program's lock before it gives up, keeps the
    # text and reports (the next flush retries): short, so the person hears about it at once.
    append_busy_ms = 1000

    def __init__(
        self, path: Path, *, read_only: str | None = None, uri: str | None = None,
        holds: Sequence[FileLock] = (),
    ) -> None:
        self.path = path
        self._db = Database(path, read_only=read_only, uri=uri)
        self._holds = list(holds)  # this process's locks on the file (released by close)
        self._pending: dict[int, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Attachment originals live beside the database, in the same data folder.
        self.blobs = BlobStore(path.parent / BLOB_DIR)

    @property
    def read_only(self) -> str | None:
        """Why nothing can be saved (the file is kept read-only), or None when writable."""
        return self._db.read_only

    @property
    def vectors(self) -> VectorStore:
        """The attached documents' chunks and embedding vectors (same file, same threads)."""
        return VectorStore(self._db)

    @property
    def holds_instance(self) -> bool:
        """Whether this store holds its data folder's single-instance lock (the desktop app)."""
        return any(lock.path.name == INSTANCE and lock.held for lock in self._holds)

    # -- streaming -----------------------------------------------------------------------------

    def _stream_started(self, message_id: int) -> None:
        """Buffer deltas for ``message_id``, a reply row just committed in status ``streaming``."""
        self._pending[message_id] = _Pending()

    async def append_partial(self, message_id: int, text_delta: str = "", reasoning_delta: str = "") -> None:
        """Buffer a delta of a streaming reply; commits when enough time or text has gathered.

        Raises :class:`StorageError` when saving failed (this flush, or the background flush of
        a stalled stream since the last call): the delta and everything unsaved stay buffered and
        the next flush retries, so the caller reports it and goes on streaming.
        """
        pending = self._pending.get(message_id)
        if pending is None:
            raise StorageError(f"message {message_id} is not streaming")
        if text_delta:
            pending.content.append(text_delta)
        if reasoning_delta:
            pending.reasoning.append(reasoning_delta)
        pending.chars += len(text_delta) + len(reasoning_delta)
        now = time.monotonic()
        due = now - pending.last_flush >= self.flush_interval
        backing_off = pending.failed_at is not None and now - pending.failed_at < self.flush_interval
        if due or (pending.chars >= self.flush_chars and not backing_off):
            pending.unreported = None  # this flush reports for itself
            await self.flush(message_id)
        elif pending.timer is None and pending.chars:
            # A stalled stream still gets its text committed within flush_interval.
            loop = asyncio.get_running_loop()
            pending.timer = loop.call_later(self.flush_interval, self._flush_later, message_id)
        if pending.unreported is not None:
            error, pending.unreported = pending.unreported, None
            raise error

    def _flush_later(self, message_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self._flush_in_background(message_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_in_background(self, message_id: int) -> None:
        # Nobody awaits this task: a failure is kept for the next append_partial to raise.
        try:
            await self.flush(message_id)
        except Exception as exc:  # any failure (e.g. the store closing) must reach a caller
            pending = self._pending.get(message_id)
            if pending is not None:
                pending.unreported = exc if isinstance(exc, StorageError) else StorageError(
                    f"Saving this reply failed ({type(exc).__name__}: {exc}).")

    async def _flush_quietly(self, message_id: int | None = None) -> None:
        """Flush before a read; a failure leaves the text buffered (the streaming caller hears
        about it from append_partial) and must not make the read fail."""
        try:
            await self.flush(message_id)
        except StorageError:
            pass

    def _put_back(self, message_id: int, text: str, reasoning: str) -> None:
        """Return text a failed flush took to the front of the buffer (nothing is lost)."""
        pending = self._pending.get(message_id)
        if pending is None:
            return
        pending.failed_at = time.monotonic()
        if text:
            pending.content.insert(0, text)
        if reasoning:
            pending.reasoning.insert(0, reasoning)
        pending.chars += len(text) + len(reasoning)

    def _take(self, message_id: int) -> tuple[str, str]:
        pending = self._pending.get(message_id)
        if pending is None:
            return "", ""
        if pending.timer is not None:
            pending.timer.cancel()
            pending.timer = None
        text, reasoning = "".join(pending.content), "".join(pending.reasoning)
        pending.content.clear()
        pending.reasoning.clear()
        pending.chars = 0
        pending.last_flush = time.monotonic()
        return text, reasoning

    async def flush(self, message_id: int | None = None) -> None:
        """Commit buffered stream text now (one message, or every streaming one).

        Raises :class:`StorageError` if a message's text could not be saved; that text is kept
        buffered and goes with the next flush (or the finish).
        """
        ids = [message_id] if message_id is not None else list(self._pending)
        failed: StorageError | None = None
        for mid in ids:
            pending = self._pending.get(mid)
            if pending is None:
                continue
            async with pending.lock:
                text, reasoning = self._take(mid)
                if not (text or reasoning):
                    continue
                job = functools.partial(append_chunk, message_id=mid, text=text, reasoning=reasoning)
                try:
                    await self._db.write(job, busy_ms=self.append_busy_ms)
                except sqlite3.Error as exc:
                    self._put_back(mid, text, reasoning)
                    failed = failed or save_failed(exc)
                    continue
                pending.failed_at = None
        if failed is not None:
            raise failed

    async def finish_message(
        self,
        message_id: int,
        status: str = "complete",
        *,
        usage: Usage | None = None,
        timings: Timings | None = None,
        cost: float | None = None,
        tool_calls: Sequence[ToolCall | dict[str, Any]] | None = None,
        error: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        endpoint: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Commit the rest of a streamed reply with its final status, usage, speed and cost.

        ``provider``/``endpoint``/``model`` replace the ones given at the start when the reply
        came from elsewhere (a fallback); None keeps them.
        """
        if status not in STATUSES or status == "streaming":
            raise StorageError(f"cannot finish a message with status {status!r}")
        values = {
            "status": status,
            "error": redact(error) if error else None,
            "cost": cost,
            "tool_calls": tool_calls_json(tool_calls),
            "model": model,
            "provider": provider,
            "endpoint": endpoint,
            "meta": dumps(meta),
            **usage_columns(usage, timings),
        }
        pending = self._pending.get(message_id)
        # After any flush still writing: text it puts back goes into the fold, in order.
        async with pending.lock if pending is not None else contextlib.nullcontext():
            text, reasoning = self._take(message_id)
            try:
                await self._db.write(lambda conn: fold(conn, message_id, text, reasoning, values))
            except sqlite3.Error as exc:
                # Keep the text (a retry of finish_message, or close(), still saves it); the row
                # stays 'streaming' with its chunks, which the next open folds and marks interrupted.
                self._put_back(message_id, text, reasoning)
                raise save_failed(exc) from exc
            self._pending.pop(message_id, None)

    # -- lifecycle -------------------------------------------------------------------------------

    async def verify(self) -> str | None:
        """Run SQLite's quick_check (off the loop); None when healthy, else what it found.

        :func:`open_store` skips this for large files to keep start-up fast; the app calls it
        once the window is shown and, on a problem, offers to start over (the damaged file is
        then moved aside on the next open, see :func:`victor_gui.storage.opening.open_store`).
        """

        def op(conn: sqlite3.Connection) -> str | None:
            try:
                result = conn.execute("PRAGMA quick_check").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                return str(exc)
            return None if result == "ok" else str(result)

        return await self._db.read(op)

    async def close(self) -> None:
        """Commit buffered stream text, drain writes, close the database, release the locks."""
        if not self._db.closed:
            await self._flush_quietly()
            for task in list(self._tasks):
                await task
            await self._db.close()
        holds, self._holds = self._holds, []
        if holds:
            await asyncio.to_thread(_release, holds)


def _release(locks: list[FileLock]) -> None:
    for lock in reversed(locks):  # the writer lock first, then the instance lock
        lock.release(remove=not lock.path.name == INSTANCE)


def save_failed(exc: sqlite3.Error) -> StorageError:
    """The typed error for a streaming save that failed: why, and that the text is kept."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        why = "the conversation file is locked by another program"
    elif "full" in text:
        why = "the disk is full"
    else:
        why = text
    return StorageError(f"Saving this reply failed ({why}). It stays on screen; saving is retried.")
