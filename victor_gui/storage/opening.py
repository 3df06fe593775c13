"""Opening the conversation store: create, check, migrate, recover from a crash or a damaged file.

:func:`open_store` never refuses to start because of a damaged file: it moves the file (and its
``-wal``/``-shm``) aside as ``<name>.corrupt-<timestamp>``, starts a fresh database and returns a
:class:`StoreNotice` the UI shows. A reply left ``streaming`` by a crash becomes ``interrupted``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from victor_gui.storage import chunks, schema
from victor_gui.storage.db import connect
from victor_gui.storage.models import StoreNotice
from victor_gui.storage.store import DB_NAME, ConversationStore

# quick_check reads every page: ~3 ms per MB here. Above this size it would hold up start-up
# for seconds, so open() does the cheap checks and ConversationStore.verify() runs the full one
# in the background once the window is up.
QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024


def _prepare(path: Path, full_check: bool) -> None:
    """Integrity check, migrations and crash recovery; raises sqlite3.DatabaseError if damaged."""
    size = path.stat().st_size if path.exists() else 0
    conn = connect(path)
    try:
        # Cheap checks first: a file that is not a database fails on its header or schema page.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if full_check or size <= QUICK_CHECK_MAX_BYTES:
            check_integrity(conn)
        schema.migrate(conn, path)
        chunks.recover_streaming(conn)  # a reply the app died in: its chunks folded, interrupted
    finally:
        conn.close()


def check_integrity(conn: sqlite3.Connection) -> None:
    """Raise :class:`sqlite3.DatabaseError` unless ``PRAGMA quick_check`` says ok."""
    result = conn.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise sqlite3.DatabaseError(f"integrity check failed: {result}")


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


def _open_sync(path: Path, full_check: bool) -> StoreNotice | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _prepare(path, full_check)
        return None
    except sqlite3.DatabaseError as exc:
        moved = _move_aside(path)
        _prepare(path, True)
        return StoreNotice(
            f"The conversation database was damaged ({exc}). It was moved to {moved} and a new, "
            "empty one was started. Nothing was deleted.",
            moved_to=moved,
        )


def _db_path(path: Path) -> Path:
    from victor_gui.storage.location import check_data_dir  # location imports this package

    path = path / DB_NAME if path.is_dir() or not path.suffix else path
    check_data_dir(path.parent)
    return path


async def open_store(
    path: Path | str, *, full_check: bool = False
) -> tuple[ConversationStore, StoreNotice | None]:
    """Open (creating, migrating or recovering) the store at ``path`` (a file or a folder).

    A folder gets ``conversations.sqlite3`` inside it. Returns the store and, when the file was
    damaged and replaced, a notice to show the user. ``full_check`` forces the integrity check
    on a large file too (after :meth:`ConversationStore.verify` reported a problem). A path
    inside the install folder is refused with :class:`StorageError`.
    """
    path = await asyncio.to_thread(_db_path, Path(path))
    notice = await asyncio.to_thread(_open_sync, path, full_check)
    return ConversationStore(path), notice
