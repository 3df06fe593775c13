"""Start-up against damaged, old and too-new databases: the app always gets a working store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from victor_gui.errors import StorageError
from victor_gui.storage import open_store, schema
from victor_gui.storage.store import DB_NAME


def _glob(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern))


def _first_page_past_schema(db: Path) -> int:
    """The 0-based index of the first page that is neither the schema's nor a root page."""
    conn = sqlite3.connect(db)
    try:
        roots = conn.execute("SELECT max(rootpage) FROM sqlite_master").fetchone()[0]
        try:
            pages = "SELECT max(pageno) FROM dbstat WHERE name='sqlite_schema'"
            schema_pages = conn.execute(pages).fetchone()[0]
        except sqlite3.OperationalError:  # an SQLite built without dbstat: leave a margin instead
            schema_pages = roots + 4
    finally:
        conn.close()
    return int(max(roots, schema_pages or 1))


async def _fill(path: Path, n: int = 200) -> None:
    store, _ = await open_store(path)
    conv = await store.create_conversation("kept")
    for i in range(n):
        await store.add_message(conv.id, "user", f"message number {i} " + "padding " * 40)
    await store.close()


async def _assert_fresh_and_usable(path: Path) -> None:
    store, notice = await open_store(path)
    try:
        # The start after a move aside repeats its notice once (see test_open_transient.py).
        assert notice is None or notice.kind == "damaged_earlier"
        conv = await store.create_conversation("new")
        await store.add_message(conv.id, "user", "works again")
        assert len(await store.search("works")) == 1
    finally:
        await store.close()


async def test_garbage_file_is_moved_aside(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    garbage = bytes(range(256)) * 64
    db.write_bytes(garbage)
    store, notice = await open_store(tmp_path)
    try:
        assert notice is not None and notice.moved_to is not None
        assert notice.moved_to.name.startswith(f"{DB_NAME}.corrupt-")
        assert notice.moved_to.read_bytes() == garbage  # the damaged file is kept, byte for byte
        assert str(notice.moved_to) in notice.message
        assert await store.list_conversations() == []
    finally:
        await store.close()
    await _assert_fresh_and_usable(tmp_path)


async def test_truncated_database_is_moved_aside(tmp_path: Path) -> None:
    await _fill(tmp_path)
    db = tmp_path / DB_NAME
    data = db.read_bytes()
    assert len(data) > 8 * 4096
    db.write_bytes(data[: len(data) // 2])
    store, notice = await open_store(tmp_path)
    await store.close()
    assert notice is not None and notice.moved_to is not None and notice.moved_to.exists()
    await _assert_fresh_and_usable(tmp_path)


async def test_database_from_newer_app_is_refused_untouched(tmp_path: Path) -> None:
    await _fill(tmp_path, 3)
    db = tmp_path / DB_NAME
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 5}")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StorageError, match="newer Victor GUI"):
        await open_store(tmp_path)
    assert db.read_bytes() == before


async def test_migration_from_v1_backs_up_then_indexes_old_messages(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    conn = sqlite3.connect(db, isolation_level=None)
    schema.migrate(conn, db, target=1)  # a database as the first release wrote it
    conn.execute("INSERT INTO conversations(id, title, created, updated) VALUES (1, 'old chat', 1, 1)")
    conn.execute(
        "INSERT INTO messages(conversation_id, position, role, content, created, updated)"
        " VALUES (1, 0, 'user', 'remember the zeppelin', 1, 1)"
    )
    conn.execute(
        "INSERT INTO messages(conversation_id, position, role, content, created, updated, status)"
        " VALUES (1, 1, 'assistant', 'a reply cut', 1, 1, 'streaming')"
    )
    assert schema.user_version(conn) == 1
    conn.close()

    store, notice = await open_store(tmp_path)
    try:
        assert notice is None
        backups = _glob(tmp_path, f"{DB_NAME}.bak-v1-*")
        assert len(backups) == 1
        bconn = sqlite3.connect(backups[0])
        assert schema.user_version(bconn) == 1
        assert bconn.execute("SELECT count(*) FROM messages").fetchone() == (2,)
        bconn.close()
        hits = await store.search("zeppelin")
        assert [h.conversation_title for h in hits] == ["old chat"]
        msgs = await store.get_messages(1)
        assert [m.status for m in msgs] == ["complete", "interrupted"]
        assert len(await store.search("cut")) == 1
    finally:
        await store.close()
    # Opening again: nothing to migrate, no new backup.
    store, _ = await open_store(tmp_path)
    await store.close()
    assert len(_glob(tmp_path, f"{DB_NAME}.bak-*")) == 1


def test_migrations_are_named_and_versioned() -> None:
    names = [m.name for m in schema.MIGRATIONS]
    assert len(set(names)) == len(names) == schema.SCHEMA_VERSION


async def test_large_file_skips_check_at_open_then_verify_finds_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from victor_gui.storage import opening

    await _fill(tmp_path)
    db = tmp_path / DB_NAME
    data = bytearray(db.read_bytes())
    page = 4096
    # Interior pages past the schema (its own pages and every table's root page, which each
    # migration adds to): damage there would already fail the open.
    first = _first_page_past_schema(db)
    for offset in range(first * page, len(data) - page, 3 * page):  # scribble over interior pages
        data[offset + 8 : offset + 400] = b"\xa5" * 392
    db.write_bytes(bytes(data))
    monkeypatch.setattr(opening, "QUICK_CHECK_MAX_BYTES", 0)  # treat this file as "large"
    store, notice = await open_store(tmp_path)
    assert notice is None  # start-up was not held up by a full check
    problem = await store.verify()
    await store.close()
    assert problem is not None
    store, notice = await open_store(tmp_path, full_check=True)
    await store.close()
    assert notice is not None and notice.moved_to is not None
    await _assert_fresh_and_usable(tmp_path)
