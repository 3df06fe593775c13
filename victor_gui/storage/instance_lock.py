"""OS file locks that keep processes sharing one conversation database from tripping over each other.

Three locks live in ``<db>.locks/`` next to the database (never copied by a data-folder move):

* ``instance.lock``: held by the desktop app for as long as it has the store open. A second
  window on the same data folder cannot take it and says so (two windows would each think they
  own the history's live replies).
* ``startup.lock``: held by anyone (the app or ``victor-gui chat``) only while opening: the
  integrity check, migrations, crash recovery and registering as a writer happen under it, so
  two start-ups never migrate at once ("Migration 1 failed" on a new folder).
* ``writer-<pid>-<token>.lock``: one per process with the store open, held until it closes.
  Crash recovery (``streaming`` → ``interrupted``) runs only when no other writer's lock is
  still held: a row left ``streaming`` then has no live writer, and a live reply of another
  process (the app while ``chat`` runs, or the other way round) is never marked interrupted.

Decision: locks rather than a pid + start time on each streaming row. The OS releases a lock the
moment its process dies (no pid reuse, no clock questions, no schema change), and the same
mechanism gives the single instance and the migration guard.

``fcntl.flock`` on POSIX, ``msvcrt.locking`` (byte 0) on Windows, both imported inside the
functions that use them so that importing this module works everywhere.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from pathlib import Path

INSTANCE = "instance.lock"
STARTUP = "startup.lock"
_WRITER_PREFIX = "writer-"


def lock_dir(db_path: Path) -> Path:
    """The folder holding ``db_path``'s locks (created on first use)."""
    return db_path.with_name(db_path.name + ".locks")


def _try_os_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError: someone else holds it
        return False
    return True


def _os_unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)


class FileLock:
    """An exclusive lock on one file. The OS drops it when the process dies, however it dies.

    The holder writes ``pid <n>`` after byte 0 (the byte Windows locks), so a refused caller
    can say who holds it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False (at once) if another holder has it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not _try_os_lock(fd):
                os.close(fd)
                return False
            info = f"\npid {os.getpid()}\n".encode()
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, info)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, len(info))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def acquire(self, timeout: float, poll: float = 0.05) -> bool:
        """Wait up to ``timeout`` seconds for the lock (call from a worker thread)."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def holder(self) -> str:
        """What the holder wrote (``pid 1234``), or '' if unknown."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(1)
                return fh.read(64).decode("ascii", "replace").strip()
        except OSError:
            return ""

    def release(self, *, remove: bool = False) -> None:
        """Let go of the lock (``remove``: delete the file first, for one-off writer locks)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        removed = False
        if remove:  # before unlocking, so nobody takes a lock on a file about to vanish
            with contextlib.suppress(OSError):
                self.path.unlink()
                removed = True
        _os_unlock(fd)
        os.close(fd)
        if remove and not removed:  # Windows deletes a file only once no handle is open
            with contextlib.suppress(OSError):
                self.path.unlink()


def register_writer(db_path: Path) -> FileLock:
    """A new writer lock for this process, held until released (call under the startup lock)."""
    lock = FileLock(lock_dir(db_path) / f"{_WRITER_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.lock")
    if not lock.try_acquire():  # a fresh random name: only a broken file system refuses
        raise OSError(f"could not lock {lock.path}")
    return lock


def other_writers_alive(db_path: Path, mine: FileLock | None = None) -> bool:
    """Whether another process still holds a writer lock on ``db_path``; locks left by
    processes that died are removed on the way (call under the startup lock)."""
    folder = lock_dir(db_path)
    if not folder.is_dir():
        return False
    alive = False
    for path in sorted(folder.glob(f"{_WRITER_PREFIX}*.lock")):
        if mine is not None and path == mine.path:
            continue
        probe = FileLock(path)
        try:
            free = probe.try_acquire()
        except OSError:
            continue  # vanished while we looked: its owner closed
        if free:
            probe.release(remove=True)  # its process is gone
        else:
            alive = True
    return alive
