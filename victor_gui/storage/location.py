"""Where conversations live, and moving them somewhere else without risking them.

The data folder defaults to ``platformdirs.user_data_dir("victor_gui")`` and is never allowed
inside the install folder (the Python prefix, a frozen app's folder, or the package itself): an
update or uninstall replaces those, which is how other clients lost their users' history.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from victor_gui.core import app_dirs
from victor_gui.core.files import copy_file
from victor_gui.errors import StorageError
from victor_gui.storage.schema import backup_to
from victor_gui.storage.store import DB_NAME

APP_NAME = "victor_gui"


def default_data_dir() -> Path:
    """The per-user data folder for this platform."""
    return app_dirs.data_dir()


def install_dirs() -> list[Path]:
    """Folders an installer or updater owns; data must never be placed inside them."""
    dirs = {Path(sys.prefix), Path(sys.base_prefix), Path(__file__).resolve().parents[1]}
    if getattr(sys, "frozen", False):
        dirs.add(Path(sys.executable).resolve().parent)
    return [d.resolve() for d in dirs]


def check_data_dir(path: Path | str) -> Path:
    """``path`` resolved, or :class:`StorageError` if it lies inside an install folder."""
    resolved = Path(path).expanduser().resolve()
    for inst in install_dirs():
        if resolved == inst or inst in resolved.parents:
            raise StorageError(
                f"The data folder {resolved} is inside the application's install folder ({inst}). "
                "An update or uninstall would delete it; choose a folder outside it."
            )
    return resolved


@dataclass(frozen=True)
class MoveResult:
    """What :func:`move_data_dir` did: the new database and how much it verified."""

    new_dir: Path
    conversations: int
    messages: int


def _counts(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise StorageError(f"the copy at {db} failed its integrity check")
        convs = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
        msgs = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        return int(convs), int(msgs)
    finally:
        conn.close()


def _move_sync(old: Path, new: Path) -> MoveResult:
    if new.exists() and any(new.iterdir()):
        raise StorageError(f"The new data folder {new} is not empty; choose an empty or new folder.")
    created = not new.exists()
    new.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    try:
        for item in sorted(old.iterdir()):
            if item.name.endswith(("-wal", "-shm")):
                continue  # folded in by the backup API below
            if item.name.endswith(".locks"):
                continue  # this folder's process locks (instance_lock): they belong to it alone
            target = new / item.name
            copied.append(target)
            if item.name == DB_NAME:
                src = sqlite3.connect(item)
                try:
                    backup_to(src, target)
                finally:
                    src.close()
            elif item.is_dir():
                shutil.copytree(item, target, copy_function=copy_file)
            else:
                copy_file(item, target)
        db_old, db_new = old / DB_NAME, new / DB_NAME
        if db_old.exists():
            if _counts(db_old) != _counts(db_new):
                raise StorageError("the copied database does not hold the same conversations")
            convs, msgs = _counts(db_new)
        else:
            convs = msgs = 0
        return MoveResult(new, convs, msgs)
    except BaseException:
        for path in copied:  # remove only what this call made; the old folder is untouched
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if created:
            shutil.rmtree(new, ignore_errors=True)
        raise


async def move_data_dir(old: Path | str, new: Path | str) -> MoveResult:
    """Copy the data folder ``old`` to ``new`` and verify the copy; ``old`` is left as it was.

    Close the store first (writes after the copy would stay behind). The database is copied with
    SQLite's backup API (consistent even with a WAL), then checked and counted against the
    original. The caller switches ``settings.data_dir`` after this returns; the old folder is
    kept until the user removes it, so a failure at any step loses nothing.
    """
    return await asyncio.to_thread(_checked_move, Path(old), Path(new))


def _checked_move(old: Path, new: Path) -> MoveResult:
    old_path = old.expanduser().resolve()
    new_path = check_data_dir(new)
    if not old_path.is_dir():
        raise StorageError(f"The current data folder {old_path} does not exist.")
    if new_path == old_path or old_path in new_path.parents:
        raise StorageError("The new data folder must not be the current one or inside it.")
    return _move_sync(old_path, new_path)
