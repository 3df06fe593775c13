"""Opening the conversation store: create, check, migrate, recover from a crash or a damaged file.

Only a file SQLite calls damaged (``SQLITE_CORRUPT``/``SQLITE_NOTADB``, or a failed integrity
check), confirmed by a second, read-only integrity probe, is moved aside (with its
``-wal``/``-shm``) as ``<name>.corrupt-<timestamp>``; a fresh database is started and a
:class:`StoreNotice` says so, at this start and once more at the next (a marker file beside the
database), so a rename is never silent.

Everything else keeps the file exactly as it is: a lock held by another program, a full disk,
a read-only file or folder, an I/O error. The store then opens read-only where it can (the
history is viewable; a write raises :class:`StorageError` saying why) and the notice says what
is wrong and how to fix it. Where not even reading works, :class:`StorageError` says the same.

Concurrency (see :mod:`.instance_lock`): the desktop app holds the data folder's instance lock
(``instance=True``); checks, migrations and crash recovery run under the startup lock; a reply
left ``streaming`` becomes ``interrupted`` only when no other live process has the store open.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import sqlite3
import time
from pathlib import Path

from victor_gui.errors import StorageError, StoreInUseError
from victor_gui.storage import chunks, schema
from victor_gui.storage.db import connect, read_only_uri
from victor_gui.storage.instance_lock import (
    INSTANCE,
    STARTUP,
    FileLock,
    lock_dir,
    other_writers_alive,
    register_writer,
)
from victor_gui.storage.models import StoreNotice
from victor_gui.storage.store import DB_NAME, ConversationStore

# quick_check reads every page: ~3 ms per MB here. Above this size it would hold up start-up
# for seconds, so open() does the cheap checks and ConversationStore.verify() runs the full one
# in the background once the window is up.
QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024
# How long a start-up waits for another one's checks and migrations (38 s measured for 1M
# messages, see schema.FTS_PREFIXES) before giving up.
STARTUP_LOCK_TIMEOUT_S = 300.0

_CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_KIND_OF_CODE = {
    sqlite3.SQLITE_BUSY: "in_use",
    sqlite3.SQLITE_LOCKED: "in_use",
    sqlite3.SQLITE_FULL: "disk_full",
    sqlite3.SQLITE_READONLY: "read_only",
    sqlite3.SQLITE_PERM: "read_only",
    sqlite3.SQLITE_CANTOPEN: "read_only",
    sqlite3.SQLITE_AUTH: "read_only",
}
_KIND_OF_ERRNO = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EACCES: "read_only",
    errno.EPERM: "read_only",
    errno.EROFS: "read_only",
}


class _Damaged(sqlite3.DatabaseError):
    """quick_check found a problem (carries no SQLite error code of its own)."""


def _prepare(path: Path, full_check: bool, recover: bool) -> None:
    """Integrity check, migrations and (``recover``) crash recovery; raises on any problem."""
    size = path.stat().st_size if path.exists() else 0
    conn = connect(path)
    try:
        # Cheap checks first: a file that is not a database fails on its header or schema page.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if full_check or size <= QUICK_CHECK_MAX_BYTES:
            check_integrity(conn)
        schema.migrate(conn, path)
        # Can this file be written? A write statement that touches no row still needs the write
        # lock, so a read-only file or mount (SQLITE_READONLY), a full disk or another program's
        # lock shows here, at open, and not at the person's first Send (recovery below writes only
        # when a reply was left streaming, and migrations only when the schema is old).
        conn.execute("UPDATE messages SET id=id WHERE 0")
        if recover:
            chunks.recover_streaming(conn)  # a reply the app died in: its chunks folded, interrupted
    finally:
        conn.close()


def check_integrity(conn: sqlite3.Connection) -> None:
    """Raise :class:`sqlite3.DatabaseError` unless ``PRAGMA quick_check`` says ok."""
    result = conn.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise _Damaged(f"integrity check failed: {result}")


def _sqlite_cause(exc: BaseException) -> sqlite3.Error | None:
    """The SQLite error behind ``exc`` (a migration wraps it in StorageError), if any."""
    while exc is not None:
        if isinstance(exc, sqlite3.Error):
            return exc
        exc = exc.__cause__  # type: ignore[assignment]
    return None


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _confirmed_damaged(path: Path, exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says "damaged" and a fresh read-only probe agrees.

    The probe opens its own connection and runs the full quick_check: a damage report that a
    second look cannot reproduce (or that it cannot make because of a lock) keeps the file.
    """
    code = _primary_code(exc)
    if not isinstance(exc, _Damaged) and code not in _CORRUPT_CODES:
        return False
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=1.0)
    except sqlite3.Error as probe_exc:
        return _primary_code(probe_exc) in _CORRUPT_CODES
    try:
        return bool(conn.execute("PRAGMA quick_check").fetchone()[0] != "ok")
    except sqlite3.Error as probe_exc:
        return _primary_code(probe_exc) in _CORRUPT_CODES
    finally:
        conn.close()


def _kind(exc: BaseException) -> str:
    sql = _sqlite_cause(exc)
    if sql is not None:
        return _KIND_OF_CODE.get(_primary_code(sql) or 0, "io")
    if isinstance(exc, OSError):
        return _KIND_OF_ERRNO.get(exc.errno or 0, "io")
    return "io"


def _problem(kind: str, path: Path, detail: str) -> str:
    """What is wrong with the file and what the user can do about it."""
    kept = "Your conversations were not changed"
    if kind == "in_use":
        return (f"Another program is using {path} and keeps it locked ({detail}). {kept}; "
                "new messages cannot be saved. Close that program (another copy of Victor GUI, "
                "a backup or sync tool) and restart Victor GUI.")
    if kind == "disk_full":
        return (f"The disk holding {path.parent} is full ({detail}). {kept}; new messages cannot "
                "be saved. Free some space and restart Victor GUI.")
    if kind == "read_only":
        return (f"{path} (or its folder) is read-only for this user ({detail}). {kept}; new "
                "messages cannot be saved. Make the file and its folder writable, or choose "
                "another data folder in Settings, and restart Victor GUI.")
    return (f"{path} could not be read or written ({detail}); the disk may be failing or "
            f"disconnected. {kept}; new messages cannot be saved. Check the disk and restart "
            "Victor GUI.")


def _viewable_uri(path: Path, kind: str) -> str | None:
    """A read-only URI under which this app can show the history, or None."""
    if not path.is_file():
        return None
    uris = [read_only_uri(path)]
    if kind == "read_only":  # nobody can be writing a file nobody may write: skip the -shm
        uris.append(read_only_uri(path, immutable=True))
    for uri in uris:
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=1.0)
        except sqlite3.Error:
            continue
        try:
            if schema.user_version(conn) != schema.SCHEMA_VERSION:
                return None  # an older schema needs its migration, which needs writing
            conn.execute("SELECT count(*) FROM conversations").fetchone()
            return uri
        except sqlite3.Error:
            continue
        finally:
            conn.close()
    return None


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".moved-aside.json")


def _take_marker(path: Path) -> StoreNotice | None:
    """The notice of a move aside at an earlier start (shown once more, then forgotten)."""
    marker = _marker(path)
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        marker.unlink()
    except (OSError, ValueError):
        return None
    moved = data.get("moved_to") if isinstance(data, dict) else None
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, str):
        return None
    return StoreNotice(f"At the last start: {message}",
                       moved_to=Path(moved) if isinstance(moved, str) else None, kind="damaged_earlier")


def _leave_marker(path: Path, notice: StoreNotice) -> None:
    with contextlib.suppress(OSError):  # the notice of this start still says it
        _marker(path).write_text(
            json.dumps({"message": notice.message, "moved_to": str(notice.moved_to)}), encoding="utf-8")


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    path.replace(target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(target.with_name(target.name + suffix))
    return target


def _read_only_store(
    path: Path, exc: BaseException, locks: list[FileLock]
) -> tuple[ConversationStore, StoreNotice]:
    """The file kept as it is, opened for reading if possible; else StorageError saying why."""
    kind = _kind(exc)
    detail = str(_sqlite_cause(exc) or exc)
    message = _problem(kind, path, detail)
    uri = _viewable_uri(path, kind)
    if uri is None:
        raise StorageError(message.replace("new messages cannot be saved", "they cannot be shown"))
    return (ConversationStore(path, read_only=message, uri=uri, holds=locks),
            StoreNotice(message, kind=kind, read_only=True))


def _open_locked(
    path: Path, full_check: bool, locks: list[FileLock]
) -> tuple[ConversationStore, StoreNotice | None]:
    """Check, migrate, recover and register as a writer; the caller holds the startup lock."""
    earlier = _take_marker(path)
    writer = register_writer(path)
    locks.append(writer)
    recover = not other_writers_alive(path, writer)
    try:
        _prepare(path, full_check, recover)
        return ConversationStore(path, holds=locks), earlier
    except (sqlite3.Error, StorageError) as exc:
        sql = _sqlite_cause(exc)
        if sql is None:
            raise  # a newer app's file, a bad migration script: reported as it is
        if not _confirmed_damaged(path, sql):
            return _read_only_store(path, exc, locks)
        moved = _move_aside(path)
        notice = StoreNotice(
            f"The conversation database was damaged ({sql}). It was moved to {moved} and a new, "
            "empty one was started. Nothing was deleted.",
            moved_to=moved,
        )
        _leave_marker(path, notice)
        try:
            _prepare(path, True, recover)
        except (sqlite3.Error, StorageError) as fresh_exc:  # e.g. no room even for an empty one
            problem = _problem(_kind(fresh_exc), path, str(fresh_exc))
            problem = problem.replace("new messages cannot be saved", "nothing can be saved")
            raise StorageError(f"{notice.message} {problem}") from fresh_exc
        return ConversationStore(path, holds=locks), notice


def _open_sync(path: Path, full_check: bool, instance: bool) -> tuple[ConversationStore, StoreNotice | None]:
    locks: list[FileLock] = []
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if instance:
                lock = FileLock(lock_dir(path) / INSTANCE)
                if not lock.try_acquire():
                    who = lock.holder()
                    raise StoreInUseError(
                        f"Another copy of Victor GUI{f' ({who})' if who else ''} is already using the "
                        f"conversations in {path.parent}. Switch to its window, or close it and "
                        "start again.")
                locks.append(lock)
            startup = FileLock(lock_dir(path) / STARTUP)
            if not startup.acquire(STARTUP_LOCK_TIMEOUT_S):
                raise StoreInUseError(
                    f"Another copy of Victor GUI ({startup.holder() or 'unknown'}) has been opening "
                    f"{path} for over {STARTUP_LOCK_TIMEOUT_S:.0f} s (a long upgrade?). Try again "
                    "when it has finished.")
        except OSError as exc:  # no folder, no lock files: a read-only or full disk
            return _read_only_store(path, exc, locks)
        try:
            return _open_locked(path, full_check, locks)
        except OSError as exc:
            return _read_only_store(path, exc, locks)
        finally:
            startup.release()
    except BaseException:
        for lock in reversed(locks):
            lock.release(remove=lock.path.name != INSTANCE)
        raise


def _db_path(path: Path) -> Path:
    from victor_gui.storage.location import check_data_dir  # location imports this package

    path = path / DB_NAME if path.is_dir() or not path.suffix else path
    check_data_dir(path.parent)
    return path


async def open_store(
    path: Path | str, *, full_check: bool = False, instance: bool = False
) -> tuple[ConversationStore, StoreNotice | None]:
    """Open (creating, migrating or recovering) the store at ``path`` (a file or a folder).

    A folder gets ``conversations.sqlite3`` inside it. Returns the store and, when something
    needs saying (a damaged file replaced, now or at the last start; a file kept read-only
    because it is locked, on a full disk or not writable), a notice to show the user.
    ``full_check`` forces the integrity check on a large file too (after
    :meth:`ConversationStore.verify` reported a problem). ``instance``: this is the desktop
    app, which must be the only one on this data folder; :class:`StoreInUseError` if another
    already is. A path inside the install folder is refused with :class:`StorageError`.
    """
    path = await asyncio.to_thread(_db_path, Path(path))
    return await asyncio.to_thread(_open_sync, path, full_check, instance)
