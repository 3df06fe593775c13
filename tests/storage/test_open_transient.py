"""Start-up against a healthy database that cannot be written right now: it is never moved aside.

A lock held by another process, a full disk and a read-only file keep the file as it is; the
store opens read-only (history viewable, writes refused with the reason) and a notice says what
is wrong and how to fix it. Only real damage is moved aside, and that is said at the next
start too. Real files, real SQLite errors: a second process holding ``BEGIN EXCLUSIVE``, SQLite's
own ``max_page_count`` for a full disk, a ``mode=ro`` connection for a read-only file.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from victor_gui.errors import StorageError
from victor_gui.storage import db as db_module
from victor_gui.storage import instance_lock, open_store, opening
from victor_gui.storage.store import DB_NAME

_HOLD_EXCLUSIVE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("LOCKED", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
conn.close()
"""


async def _history_with_a_cut_reply(folder: Path, reply: str = "half a reply") -> int:
    """A store with one chat whose last reply is still ``streaming`` (as after a crash)."""
    store, _ = await open_store(folder)
    try:
        conv = await store.create_conversation("kept")
        await store.add_message(conv.id, "user", "question")
        mid = await store.begin_assistant_message(conv.id)
        await store.append_partial(mid, reply)
        await store.flush(mid)
        return mid
    finally:
        await store.close()  # leaves the row streaming, as a crash would


def _moved_aside(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{DB_NAME}.corrupt-*"))


@pytest.fixture
def short_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_S", 0.3, raising=False)


def _lock_in_another_process(db: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_EXCLUSIVE, str(db)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "LOCKED"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None and proc.poll() is None:
        proc.stdin.write("\n")
        proc.stdin.flush()
    try:
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_locked_database_is_kept_and_shown_read_only(tmp_path: Path, short_busy: None) -> None:
    mid = await _history_with_a_cut_reply(tmp_path)
    proc = _lock_in_another_process(tmp_path / DB_NAME)
    try:
        store, notice = await open_store(tmp_path)
        try:
            assert _moved_aside(tmp_path) == []  # before the fix: renamed .corrupt-<time>
            assert notice is not None and notice.kind == "in_use" and notice.read_only
            assert "Another program is using" in notice.message and "restart" in notice.message
            assert [c.title for c in await store.list_conversations()] == ["kept"]
            with pytest.raises(StorageError, match="cannot be saved"):
                await store.create_conversation("new")
        finally:
            await store.close()
    finally:
        _release(proc)
    store, notice = await open_store(tmp_path)  # the lock is gone: all as before, writable
    try:
        assert notice is None
        cut = await store.get_message(mid)
        assert cut is not None and cut.status == "interrupted" and cut.content == "half a reply"
        await store.create_conversation("writable again")
    finally:
        await store.close()


async def test_full_disk_keeps_the_file_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Recovery indexes the cut reply for search: with many distinct words that needs new pages.
    words = " ".join(f"word{i}x{i * 7919 % 10007}" for i in range(20_000))
    mid = await _history_with_a_cut_reply(tmp_path, words)
    real_connect = opening.connect

    def full_disk_connect(path: Path, **kw: object) -> sqlite3.Connection:
        conn = real_connect(path)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own SQLITE_FULL, no tmpfs needed
        return conn

    monkeypatch.setattr(opening, "connect", full_disk_connect)
    store, notice = await open_store(tmp_path)
    try:
        assert _moved_aside(tmp_path) == []
        assert notice is not None and notice.kind == "disk_full" and notice.read_only
        assert "is full" in notice.message and "Free some space" in notice.message
        assert [c.title for c in await store.list_conversations()] == ["kept"]
        with pytest.raises(StorageError, match="is full"):
            await store.create_conversation("new")
    finally:
        await store.close()
    monkeypatch.setattr(opening, "connect", real_connect)  # space freed: the next start is whole
    store, notice = await open_store(tmp_path)
    try:
        assert notice is None
        assert [c.title for c in await store.list_conversations()] == ["kept"]
        cut = await store.get_message(mid)
        assert cut is not None and cut.status == "interrupted" and cut.content == words
    finally:
        await store.close()


async def test_read_only_file_is_kept_and_viewable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await _history_with_a_cut_reply(tmp_path)
    before = (tmp_path / DB_NAME).read_bytes()

    def read_only_connect(path: Path, **kw: object) -> sqlite3.Connection:
        # What a read-only file gives (root ignores chmod, so open it the way SQLite would then).
        return db_module.connect(path, uri=db_module.read_only_uri(path))

    monkeypatch.setattr(opening, "connect", read_only_connect)
    store, notice = await open_store(tmp_path)
    try:
        assert _moved_aside(tmp_path) == []
        assert notice is not None and notice.kind == "read_only" and notice.read_only
        assert "read-only" in notice.message and "writable" in notice.message
        assert [c.title for c in await store.list_conversations()] == ["kept"]
        with pytest.raises(StorageError, match="read-only"):
            await store.create_conversation("new")
    finally:
        await store.close()
    assert (tmp_path / DB_NAME).read_bytes() == before


async def test_folder_refusing_new_files_keeps_the_history_viewable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _history_with_a_cut_reply(tmp_path)

    def refuse(self: instance_lock.FileLock) -> bool:
        # What a read-only folder answers to creating the lock file (root ignores chmod).
        raise PermissionError(errno.EACCES, "Permission denied", str(self.path))

    monkeypatch.setattr(instance_lock.FileLock, "try_acquire", refuse)
    store, notice = await open_store(tmp_path)  # before: the raw OSError, nothing viewable
    try:
        assert notice is not None and notice.kind == "read_only" and notice.read_only
        assert [c.title for c in await store.list_conversations()] == ["kept"]
        with pytest.raises(StorageError, match="cannot be saved"):
            await store.create_conversation("new")
    finally:
        await store.close()
    assert _moved_aside(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores file permissions; the mode=ro test above covers the logic")
async def test_read_only_folder_is_viewable(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    await _history_with_a_cut_reply(folder)
    for p in folder.rglob("*"):
        p.chmod(0o444 if p.is_file() else 0o555)
    folder.chmod(0o555)
    try:
        store, notice = await open_store(folder)
        try:
            assert notice is not None and notice.kind == "read_only"
            assert [c.title for c in await store.list_conversations()] == ["kept"]
        finally:
            await store.close()
    finally:
        folder.chmod(0o755)
        for p in folder.rglob("*"):
            p.chmod(0o644 if p.is_file() else 0o755)


async def test_a_move_aside_is_told_again_at_the_next_start_once(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(bytes(range(256)) * 64)
    store, notice = await open_store(tmp_path)
    await store.close()
    assert notice is not None and notice.kind == "damaged" and notice.moved_to is not None
    moved = notice.moved_to
    store, again = await open_store(tmp_path)
    await store.close()
    assert again is not None and again.kind == "damaged_earlier"
    assert again.moved_to == moved and str(moved) in again.message
    store, third = await open_store(tmp_path)
    await store.close()
    assert third is None
