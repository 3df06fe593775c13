"""Issue 16, finding 5: a streaming reply is stored in appended chunks (linear, never a rewrite of
the growing row), readers see the chunks, a crash leaves them folded on the next open, and a save
that fails mid-stream (file locked, disk full) is reported and retried, never lost."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from victor_gui.errors import StorageError
from victor_gui.storage import ConversationStore, open_store, schema
from victor_gui.storage.export import export_json
from victor_gui.storage.store import DB_NAME

DELTA = ("0123456789 abcdefghi " * 49)[:1023] + "\n"  # 1 KB


@pytest.fixture
async def store(tmp_path: Path):
    s, _ = await open_store(tmp_path)
    yield s
    await s.close()


def _wchar() -> int:
    """Bytes this process has passed to write(): the store's writer thread is in it."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def _raw(db: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def test_a_long_reply_writes_about_its_own_size(store: ConversationStore) -> None:
    # Before: every flush rewrote the whole row (content=content||?), so 1 MB in 1 KB deltas
    # wrote ~1 GiB (2 MB: 4 GiB, 17 s). Now each flush appends one chunk.
    conv = await store.create_conversation()
    mid = await store.begin_assistant_message(conv.id)
    size = 1024 * len(DELTA)
    before = _wchar()
    for _ in range(1024):
        await store.append_partial(mid, DELTA)
    await store.finish_message(mid, "complete")
    await store.flush()
    written = _wchar() - before
    assert written < 40 * size, f"{written / 2**20:.0f} MiB written for a {size / 2**20:.0f} MiB reply"
    m = await store.get_message(mid)
    assert m is not None and len(m.content) == size and m.content == DELTA * 1024
    assert _raw(store.path, "SELECT count(*) FROM message_chunks") == [(0,)]  # folded at the end
    assert [h.message_id for h in await store.search("abcdefghi")] == [mid]  # indexed once finished


async def test_readers_see_a_live_reply_whole(store: ConversationStore) -> None:
    store.flush_chars = 10
    conv = await store.create_conversation("live")
    await store.add_message(conv.id, "user", "hi")
    mid = await store.begin_assistant_message(conv.id)
    for i in range(20):
        await store.append_partial(mid, f"part{i} ", "why ")
    expected = "".join(f"part{i} " for i in range(20))
    assert _raw(store.path, "SELECT content FROM messages WHERE id=?", mid) == [("",)]  # row untouched
    msgs = await store.get_messages(conv.id)
    assert (msgs[-1].content, msgs[-1].reasoning) == (expected, "why " * 20)
    page = await store.get_messages(conv.id, limit=1)
    assert page[0].content == expected
    got = await store.get_message(mid)
    assert got is not None and got.content == expected
    assert expected in await export_json(store)


async def test_crash_leaves_chunks_that_the_next_open_folds(tmp_path: Path) -> None:
    s, _ = await open_store(tmp_path)
    conv = await s.create_conversation()
    mid = await s.begin_assistant_message(conv.id)
    s.flush_chars = 5
    for word in ("alpha ", "bravo ", "charlie ", "zanzibar"):
        await s.append_partial(mid, word, "thinking ")
    await s.flush(mid)
    s._pending.clear()  # the process dies here: no finish
    await s.close()
    assert _raw(tmp_path / DB_NAME, "SELECT count(*) FROM message_chunks")[0][0] >= 2
    s2, _ = await open_store(tmp_path)
    try:
        m = await s2.get_message(mid)
        assert m is not None
        assert (m.status, m.content) == ("interrupted", "alpha bravo charlie zanzibar")
        assert m.reasoning == "thinking " * 4
        assert [h.message_id for h in await s2.search("zanzibar")] == [mid]
    finally:
        await s2.close()
    db = tmp_path / DB_NAME
    assert _raw(db, "SELECT count(*) FROM message_chunks") == [(0,)]
    assert _raw(db, "SELECT content FROM messages WHERE id=?", mid) == [("alpha bravo charlie zanzibar",)]


async def test_migration_to_chunks_keeps_an_existing_database(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    conn = sqlite3.connect(db, isolation_level=None)
    schema.migrate(conn, None, target=4)
    conn.execute("INSERT INTO conversations(id, title, created, updated) VALUES (1, 'old', 1, 1)")
    conn.execute(
        "INSERT INTO messages(conversation_id, position, role, content, created, updated, status)"
        " VALUES (1, 0, 'user', 'quokka question', 1, 1, 'complete'),"
        " (1, 1, 'assistant', 'half an answer', 1, 1, 'streaming')"
    )
    conn.close()
    store, notice = await open_store(tmp_path)
    try:
        assert notice is None
        assert _raw(db, "PRAGMA user_version") == [(schema.SCHEMA_VERSION,)]
        msgs = await store.get_messages(1)
        assert [(m.content, m.status) for m in msgs] == [
            ("quokka question", "complete"), ("half an answer", "interrupted")]
        assert [h.message_id for h in await store.search("quokka")] == [msgs[0].id]
        mid = await store.begin_assistant_message(1)  # streaming works on the migrated file
        await store.append_partial(mid, "new text")
        await store.finish_message(mid)
        assert (await store.get_message(mid)).content == "new text"  # type: ignore[union-attr]
    finally:
        await store.close()
    backups = await asyncio.to_thread(lambda: list(tmp_path.glob(f"{DB_NAME}.bak-v4-*")))
    assert backups  # the v4 file was copied aside first


def _hold_exclusive(db: Path, held: threading.Event, release: threading.Event) -> None:
    conn = sqlite3.connect(db, isolation_level=None, timeout=5)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        held.set()
        release.wait(10)
        conn.execute("COMMIT")
    finally:
        conn.close()


async def test_a_locked_file_mid_stream_is_reported_retried_and_nothing_lost(
    store: ConversationStore,
) -> None:
    # Before: the background flush raised "database is locked" in a task nobody awaited
    # ("Task exception was never retrieved") and its text was gone.
    store.flush_interval = 0.05
    store.append_busy_ms = 100
    unretrieved: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: unretrieved.append(ctx))
    conv = await store.create_conversation()
    mid = await store.begin_assistant_message(conv.id)
    await store.append_partial(mid, "before the lock. ")
    await store.flush(mid)
    held, release = threading.Event(), threading.Event()
    locker = threading.Thread(target=_hold_exclusive, args=(store.path, held, release))
    locker.start()
    assert await asyncio.to_thread(held.wait, 5)
    errors: list[StorageError] = []
    try:
        await store.append_partial(mid, "while locked. ")
        await asyncio.sleep(0.4)  # the stalled-stream timer flush fails in the background
        for i in range(5):
            try:
                await store.append_partial(mid, f"more{i} ")
            except StorageError as exc:
                errors.append(exc)
            await asyncio.sleep(0.06)
    finally:
        release.set()
        await asyncio.to_thread(locker.join, 10)
    assert errors, "a failed save must be reported to the caller"
    assert "locked" in str(errors[0])
    await store.append_partial(mid, "after. ")
    await store.finish_message(mid)
    m = await store.get_message(mid)
    assert m is not None and m.status == "complete"
    assert m.content == "before the lock. while locked. " + "".join(f"more{i} " for i in range(5)) + "after. "
    await asyncio.sleep(0)
    assert not unretrieved


async def test_a_full_disk_mid_stream_is_reported_and_saved_once_there_is_room(
    store: ConversationStore,
) -> None:
    store.flush_chars = 1
    conv = await store.create_conversation()
    mid = await store.begin_assistant_message(conv.id)
    await store.append_partial(mid, "start ")
    pages = (await store._db.write(lambda c: c.execute("PRAGMA page_count").fetchone()))[0]
    await store._db.write(lambda c: c.execute(f"PRAGMA max_page_count={pages}"))
    big = "y" * 20_000  # needs new pages: the file may not grow
    with pytest.raises(StorageError, match="disk is full"):
        await store.append_partial(mid, big)
    with pytest.raises(StorageError):
        await store.finish_message(mid)
    await store._db.write(lambda c: c.execute("PRAGMA max_page_count=1073741823"))
    await store.finish_message(mid)  # the kept text goes in now
    m = await store.get_message(mid)
    assert m is not None and (m.status, m.content) == ("complete", "start " + big)


async def test_a_reply_deleted_while_streaming_takes_its_chunks_and_later_flushes_with_it(
    store: ConversationStore,
) -> None:
    store.flush_chars = 1
    conv = await store.create_conversation()
    await store.add_message(conv.id, "user", "q")
    mid = await store.begin_assistant_message(conv.id)
    await store.append_partial(mid, "some text")
    await store.delete_messages_from(conv.id, 1)
    await store.append_partial(mid, "more text")  # no row any more: nothing stored, no error
    assert _raw(store.path, "SELECT count(*) FROM message_chunks") == [(0,)]


async def test_a_flush_behind_a_failing_one_keeps_the_text_in_order(store: ConversationStore) -> None:
    """A flush that starts while another is still writing waits for it: when that write fails
    (the disk was full) and its text goes back to the buffer, it is still saved before the text
    that came after it (CI saw 'chunk06' stored before 'chunk04' without this)."""
    store.flush_chars = 1
    conv = await store.create_conversation()
    mid = await store.begin_assistant_message(conv.id)
    await store.append_partial(mid, "start ")
    pages = (await store._db.write(lambda c: c.execute("PRAGMA page_count").fetchone()))[0]
    await store._db.write(lambda c: c.execute(f"PRAGMA max_page_count={pages}"))
    big = "y" * 20_000  # needs new pages: this write fails
    first = asyncio.ensure_future(store.append_partial(mid, big))
    await asyncio.sleep(0)  # its write is queued
    room = asyncio.ensure_future(store._db.write(lambda c: c.execute("PRAGMA max_page_count=1073741823")))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(store.append_partial(mid, "after "))
    results = await asyncio.gather(first, room, second, return_exceptions=True)
    assert isinstance(results[0], StorageError) and "disk is full" in str(results[0])
    assert not isinstance(results[2], BaseException)
    await store.finish_message(mid)
    m = await store.get_message(mid)
    assert m is not None and (m.status, m.content) == ("complete", "start " + big + "after ")
