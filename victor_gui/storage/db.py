"""Threads and connections behind the async store.

Decision: one dedicated writer thread with its own connection (a single-thread executor), one
reader thread with another, and a search thread with a third (searches can be slow and are
cancelled by the next keystroke's search; opening a chat must never wait behind one). Writes are
serialised in submission order, so the streaming flushes of a reply can never overtake each
other; WAL lets the reader run while a write is in progress. ``sqlite3`` releases the GIL while
SQLite works, so the event loop keeps ticking. Each connection is created in, and only used
from, its own thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from victor_gui.errors import StorageError

T = TypeVar("T")

# How long a statement waits for another connection's lock before SQLITE_BUSY.
BUSY_TIMEOUT_S = 10.0


def read_only_uri(path: Path, *, immutable: bool = False) -> str:
    """The ``file:`` URI that opens ``path`` read-only (``immutable``: without the -shm, for a
    file in a folder this process cannot write; only safe when nobody else writes it)."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    return uri + "&immutable=1" if immutable else uri


def connect(path: Path, *, uri: str | None = None) -> sqlite3.Connection:
    """A connection with the store's settings: WAL, NORMAL sync, foreign keys, busy timeout.

    ``synchronous=NORMAL`` in WAL mode is durable against a crash or kill of the app (only an
    OS crash or power cut can lose the last transactions), at a fraction of FULL's fsyncs.
    ``uri`` (from :func:`read_only_uri`) opens the file read-only and changes nothing in it.
    A PRAGMA that fails closes the connection before the error goes up: an open handle left
    behind keeps Windows from renaming the file (moving a damaged database aside).
    """
    if uri is not None:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_S)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    try:
        if uri is None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    except BaseException:
        conn.close()
        raise
    return conn


class _Lane:
    """One thread with one connection; jobs run there in order."""

    def __init__(self, path: Path, name: str, uri: str | None = None) -> None:
        self._path = path
        self._uri = uri
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self._path, uri=self._uri)
        return self._conn

    async def run(
        self, fn: Callable[[sqlite3.Connection], T], *, transaction: bool, busy_ms: int | None = None
    ) -> T:
        loop = asyncio.get_running_loop()

        def job() -> T:
            conn = self._connection()
            if not transaction:
                return fn(conn)
            if busy_ms is not None:
                conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
            try:
                conn.execute("BEGIN IMMEDIATE")
            finally:
                if busy_ms is not None:
                    conn.execute("PRAGMA busy_timeout=10000")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (disk full) can leave the transaction open: roll it back, or the
                # next job's BEGIN would fail too. SQLite may also have rolled back on its own.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return await loop.run_in_executor(self._pool, job)

    def close(self) -> None:
        """Finish queued jobs, then close the connection (call from a worker thread)."""
        self._pool.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _SearchLane(_Lane):
    """The search thread: a new search interrupts the one running (``sqlite3.Connection.interrupt``,
    safe from another thread), whose caller gets :class:`asyncio.CancelledError`."""

    def __init__(self, path: Path, name: str, uri: str | None = None) -> None:
        super().__init__(path, name, uri)
        self._latest = 0  # generation of the newest search asked for
        self._running: int | None = None  # generation of the one running now

    async def search(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            self._latest += 1
            generation = self._latest
            if self._running is not None and self._conn is not None:
                self._conn.interrupt()

        def job(conn: sqlite3.Connection) -> T:
            with self._lock:
                if generation != self._latest:
                    raise _Superseded
                self._running = generation
            try:
                result = fn(conn)
            finally:
                with self._lock:
                    self._running = None
                    superseded = generation != self._latest
            if superseded:  # finished between the interrupt and a statement: still out of date
                raise _Superseded
            return result

        try:
            return await self.run(job, transaction=False)
        except _Superseded:
            raise asyncio.CancelledError("a newer search replaced this one") from None
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise asyncio.CancelledError("a newer search replaced this one") from None
            raise


    def interrupt(self) -> None:
        """Stop the search running now, if any (closing does not wait for a slow one)."""
        with self._lock:
            self._latest += 1
            if self._running is not None and self._conn is not None:
                self._conn.interrupt()


class _Superseded(Exception):
    """A queued search that a newer one replaced before it started."""


class Database:
    """Async access to one SQLite file: ``write`` (in a transaction) and ``read``.

    ``read_only`` (a sentence saying why) opens the file through ``uri`` for reading only: the
    history stays viewable, and every write raises :class:`StorageError` with that sentence.
    """

    def __init__(self, path: Path, *, read_only: str | None = None, uri: str | None = None) -> None:
        self.path = path
        self.read_only = read_only
        self._writer = _Lane(path, "store-writer", uri)
        self._reader = _Lane(path, "store-reader", uri)
        # Searches get their own thread and connection: a slow one never holds up opening a chat
        # on the reader, and a newer one interrupts it.
        self._search = _SearchLane(path, "store-search", uri)
        self.closed = False

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, busy_ms: int | None = None) -> T:
        """Run ``fn(conn)`` on the writer thread inside ``BEGIN IMMEDIATE``/``COMMIT``.

        ``busy_ms``: wait at most this long for another connection's lock to start (default:
        the connection's 10 s), then raise ``sqlite3.OperationalError`` (database is locked).
        """
        if self.read_only is not None:
            raise StorageError(self.read_only)
        return await self._writer.run(fn, transaction=True, busy_ms=busy_ms)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the reader thread (sees every committed write)."""
        return await self._reader.run(fn, transaction=False)

    async def search(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a search ``fn(conn)`` on the search thread; a newer search interrupts it (this one
        then raises :class:`asyncio.CancelledError`)."""
        return await self._search.search(fn)

    async def close(self) -> None:
        """Drain pending writes and close the connections."""
        if self.closed:
            return
        self.closed = True
        await asyncio.to_thread(self._close_sync)

    def _close_sync(self) -> None:
        self._search.interrupt()
        self._search.close()
        self._reader.close()
        self._writer.close()
        if self.read_only is not None:
            return
        # A final checkpoint folds the WAL back into the main file so a copied data folder is
        # complete on its own.
        conn = sqlite3.connect(self.path)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        finally:
            conn.close()


def run_sync(path: Path, fn: Callable[[sqlite3.Connection], Any]) -> Any:
    """Open, run ``fn``, close: for start-up checks that run in a worker thread."""
    conn = connect(path)
    try:
        return fn(conn)
    finally:
        conn.close()
