"""Issue 16, finding 6: search over big messages is linear and bounded, runs on its own thread
(opening a chat never waits behind it), and a newer search interrupts the running one."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from victor_gui.storage import ConversationStore, open_store
from victor_gui.storage.search import HEAD_CHARS, MATCH_CLOSE, MATCH_OPEN, make_snippet, search_sync


@pytest.fixture
async def store(tmp_path: Path):
    s, _ = await open_store(tmp_path)
    yield s
    await s.close()


def _words(n_chars: int) -> str:
    """A word that matches all over the text: what makes FTS5's snippet() slow (it scores a
    window around every instance; 0.25 MB took 3.6 s, 0.5 MB 17 s, 1 MB 80 s)."""
    return ("ocelot runs far and wide " * (n_chars // 25 + 1))[:n_chars]


async def test_snippet_of_a_big_message_is_quick_and_marks_the_match(store: ConversationStore) -> None:
    # Before: snippet() over this 0.5 MB message took ~17 s.
    conv = await store.create_conversation("big")
    big = "quetzal at the start " + _words(2**19) + " zebu at the end"
    mid = await store.add_message(conv.id, "assistant", big)
    small = await store.add_message(conv.id, "user", "a small zebu")
    t0 = time.perf_counter()
    start_hits = await store.search("quetzal")
    many_hits = await store.search("ocelot")
    end_hits = await store.search("zebu")
    took = time.perf_counter() - t0
    assert took < 1.5, f"three searches over a 0.5 MB message took {took:.1f} s"
    assert [h.message_id for h in start_hits] == [mid]
    assert start_hits[0].snippet.startswith(f"{MATCH_OPEN}quetzal{MATCH_CLOSE} at the start")
    assert len(start_hits[0].snippet) < 400
    assert [h.message_id for h in many_hits] == [mid]
    assert many_hits[0].snippet.count(f"{MATCH_OPEN}ocelot{MATCH_CLOSE}") >= 2
    assert [h.message_id for h in end_hits] == [small, mid]
    deep = end_hits[1].snippet  # past the head read for snippets: found with instr(), still marked
    assert f"{MATCH_OPEN}zebu{MATCH_CLOSE} at the end" in deep and deep.startswith("…")
    assert len(deep) < 600


def test_snippet_is_linear_in_what_it_reads() -> None:
    import re

    matcher = re.compile(r"(?<!\w)kube\w*", re.IGNORECASE)
    text = "x " * 10 + "Kubernetes pods and kubelet logs " + "y " * 200
    snip = make_snippet(text, matcher)
    assert snip is not None and f"{MATCH_OPEN}Kubernetes{MATCH_CLOSE}" in snip
    assert f"{MATCH_OPEN}kubelet{MATCH_CLOSE}" in snip
    assert snip.endswith("…")
    assert make_snippet("nothing here", matcher) is None
    assert HEAD_CHARS <= 256 * 1024  # the read per hit is bounded


async def test_opening_a_chat_does_not_wait_behind_a_search(store: ConversationStore) -> None:
    # Before: search and every read shared the one reader thread; a slow search (a big
    # message's snippet) held up opening any chat until it finished.
    conv = await store.create_conversation("big")
    await store.add_message(conv.id, "assistant", _words(2**19))
    other = await store.create_conversation("other")
    await store.add_message(other.id, "user", "hello")
    search = asyncio.ensure_future(store.search("ocelot"))
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    msgs = await store.get_messages(other.id)
    opened = time.perf_counter() - t0
    await search
    assert [m.content for m in msgs] == ["hello"]
    assert opened < 0.5, f"opening a chat waited {opened:.2f} s"


async def test_a_new_search_interrupts_the_running_one(store: ConversationStore) -> None:
    conv = await store.create_conversation()
    await store.add_message(conv.id, "user", "find me")

    def slow(conn: sqlite3.Connection) -> int:  # a search that would run for many seconds
        sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n) SELECT count(*) FROM n"
        return int(conn.execute(sql + " WHERE i < 1000000000").fetchone()[0])

    first = asyncio.ensure_future(store._db.search(slow))
    await asyncio.sleep(0.2)  # it is running
    t0 = time.perf_counter()
    hits = await store.search("find")
    assert [h.snippet for h in hits] == [f"{MATCH_OPEN}find{MATCH_CLOSE} me"]
    with pytest.raises(asyncio.CancelledError):
        await first
    assert time.perf_counter() - t0 < 2.0


async def test_a_live_reply_is_found_in_its_chunks(store: ConversationStore) -> None:
    store.flush_chars = 1
    conv = await store.create_conversation("live")
    mid = await store.begin_assistant_message(conv.id)
    await store.append_partial(mid, "the capybara ")
    await store.append_partial(mid, "is swimming")
    hits = await store.search("capyb")
    assert [h.message_id for h in hits] == [mid]
    assert hits[0].snippet == f"the {MATCH_OPEN}capybara{MATCH_CLOSE} is swimming"
    assert await store.search("capybara walrus") == []  # every term must match
    await store.finish_message(mid)
    assert [h.message_id for h in await store.search("swimming")] == [mid]


def test_search_sync_still_answers_on_a_plain_connection() -> None:
    from victor_gui.storage import schema

    conn = sqlite3.connect(":memory:", isolation_level=None)
    schema.migrate(conn, None)
    conn.execute("INSERT INTO conversations(id, title, created, updated) VALUES (1, 't', 1, 1)")
    conn.execute(
        "INSERT INTO messages(conversation_id, position, role, content, reasoning, created, updated)"
        " VALUES (1, 0, 'assistant', 'plain words', 'deep thought about [brackets]', 1, 1)"
    )
    hits = search_sync(conn, "thought")
    assert [h.snippet for h in hits] == [f"deep {MATCH_OPEN}thought{MATCH_CLOSE} about [brackets]"]
