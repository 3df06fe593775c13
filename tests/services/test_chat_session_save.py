"""Issue 16, finding 5: a reply whose saving fails mid-stream (another program locks the file, the
disk fills) keeps streaming, the user is told why, the save is retried, and nothing is lost; no
task exception goes unretrieved. Real HTTP over loopback, a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.base import Script, SimServer
from tests.services.test_chat_session import NdjsonProvider, _Handler
from victor_gui.providers.resilience import RetryPolicy
from victor_gui.services.chat_session import ChatSession, ReplyEvent
from victor_gui.services.reply_attempt import SAVE_FAILED
from victor_gui.storage import ConversationStore, open_store

TEXT = "".join(f"word{i:03d} " for i in range(300))  # 2,400 characters in 40 pieces


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(_Handler) as srv:
        yield srv


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ConversationStore]:
    s, _ = await open_store(tmp_path)
    s.flush_interval = 0.05
    s.flush_chars = 1  # every delta is its own flush: a failure cannot hide in a buffer
    s.append_busy_ms = 100
    yield s
    await s.close()


@pytest.fixture
def unretrieved() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    asyncio.get_event_loop().set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    yield seen


async def _session(store: ConversationStore, server: SimServer, on_event: Any) -> tuple[ChatSession, Any]:
    conv = await store.create_conversation("t")
    provider = NdjsonProvider(base_url=server.url, retry_policy=RetryPolicy(max_retries=0))
    return ChatSession(store, conv.id, provider, "sim-model", on_event=on_event), provider


def _hold_exclusive(db: Path, start: threading.Event, seconds: float, held: threading.Event) -> None:
    start.wait(10)
    conn = sqlite3.connect(db, isolation_level=None, timeout=5)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        held.set()
        threading.Event().wait(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


async def test_a_lock_taken_mid_stream_is_reported_and_the_reply_saved_whole(
    store: ConversationStore, server: SimServer, unretrieved: list[dict[str, Any]]
) -> None:
    server.script(Script(text=TEXT, pieces=40, delay_s=0.03))
    events: list[ReplyEvent] = []
    start, held = threading.Event(), threading.Event()

    def on_event(event: ReplyEvent) -> None:
        events.append(event)
        if event.kind == "delta" and len(events) >= 5:
            start.set()  # another program locks the file while the reply streams

    locker = threading.Thread(target=_hold_exclusive, args=(store.path, start, 0.6, held))
    locker.start()
    session, provider = await _session(store, server, on_event)
    try:
        result = await session.send("go")
    finally:
        start.set()
        await asyncio.to_thread(locker.join, 10)
        await provider.close()
    assert held.is_set()
    notes = [e for e in events if e.kind == "note" and (e.meta or {}).get("kind") == SAVE_FAILED]
    assert notes and "locked" in notes[0].text and notes[0].message_id == result.message_id
    assert sum(e.kind == "delta" for e in events) == 40  # the reply kept streaming meanwhile
    assert result.status == "complete"
    stored = await store.get_message(result.message_id)
    assert stored is not None and (stored.status, stored.content) == ("complete", TEXT)
    assert not unretrieved


async def test_a_disk_filling_mid_stream_is_reported_and_saved_once_there_is_room(
    store: ConversationStore, server: SimServer, unretrieved: list[dict[str, Any]]
) -> None:
    big = "".join(f"chunk{i:02d}-" + "z" * 3000 + " " for i in range(12))  # each piece needs new pages
    server.script(Script(text=big, pieces=12, delay_s=0.05))
    events: list[ReplyEvent] = []
    limits: list[asyncio.Future[Any]] = []
    conn = sqlite3.connect(store.path)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()

    def set_limit(count: int) -> None:
        job = store._db.write(lambda c: c.execute(f"PRAGMA max_page_count={count}"))
        limits.append(asyncio.ensure_future(job))

    def on_event(event: ReplyEvent) -> None:
        events.append(event)
        deltas = sum(e.kind == "delta" for e in events)
        if event.kind == "delta" and deltas == 3:
            set_limit(pages + 4)  # the file may hardly grow: the disk is full
        elif event.kind == "delta" and deltas == 8:
            set_limit(1073741823)  # room again

    session, provider = await _session(store, server, on_event)
    try:
        result = await session.send("go")
    finally:
        await provider.close()
    await asyncio.gather(*limits)
    notes = [e for e in events if e.kind == "note" and (e.meta or {}).get("kind") == SAVE_FAILED]
    assert notes and "disk is full" in notes[0].text
    stored = await store.get_message(result.message_id)
    assert stored is not None and (stored.status, stored.content) == ("complete", big)
    assert not unretrieved

