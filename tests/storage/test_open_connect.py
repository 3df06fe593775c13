"""A connection whose set-up fails is closed before the error goes up (Windows cannot rename
a file that is still open, so a damaged database could not be moved aside)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psutil
import pytest

from victor_gui.storage.db import connect


def _open_by_us(path: Path) -> list[str]:
    target = str(path.resolve())
    return [f.path for f in psutil.Process().open_files() if f.path == target]


def test_failed_pragma_leaves_no_handle_open(tmp_path: Path) -> None:
    db = tmp_path / "garbage.sqlite3"
    db.write_bytes(bytes(range(256)) * 64)  # not a database: the journal_mode PRAGMA fails
    with pytest.raises(sqlite3.DatabaseError) as info:
        connect(db)
    assert info.value.sqlite_errorcode == sqlite3.SQLITE_NOTADB
    # The traceback (kept alive by ``info``) still references connect()'s frame: before the
    # fix the connection lived on in it, holding the file open.
    assert _open_by_us(db) == []
    moved = db.with_name("moved.sqlite3")
    db.replace(moved)
    moved.unlink()
    assert not moved.exists()
