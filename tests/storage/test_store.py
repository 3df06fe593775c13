"""The conversation store against a real SQLite file: CRUD, streaming flushes, search, recovery."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from victor_gui.core.redact import register_secret
from victor_gui.errors import StorageError
from victor_gui.providers.types import ImagePart, TextPart, Timings, ToolCall, Usage
from victor_gui.storage import ConversationStore, open_store
from victor_gui.storage.schema import SCHEMA_VERSION


@pytest.fixture
async def store(tmp_path: Path):
    s, notice = await open_store(tmp_path)
    assert notice is None
    yield s
    await s.close()


def raw(db: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def committed(db: Path, mid: int) -> str:
    """The text of reply ``mid`` a crash would leave: its row plus its appended chunks."""
    row = raw(db, "SELECT content FROM messages WHERE id=?", mid)[0][0]
    chunks = raw(db, "SELECT text FROM message_chunks WHERE message_id=? ORDER BY seq", mid)
    return row + "".join(r[0] for r in chunks)


async def test_database_is_wal_and_versioned(store: ConversationStore) -> None:
    assert raw(store.path, "PRAGMA journal_mode") == [("wal",)]
    assert raw(store.path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


async def test_conversation_and_messages_round_trip(store: ConversationStore) -> None:
    conv = await store.create_conversation("Plans", system_prompt="Be brief", params={"temperature": 0.3})
    await store.add_message(
        conv.id, "user", [TextPart(text="what is this?"), ImagePart.from_bytes(b"\x89PNG")]
    )
    calls = [ToolCall(id="call_1", name="lookup", arguments={"q": "x"})]
    aid = await store.add_message(
        conv.id,
        "assistant",
        "Let me look.",
        tool_calls=calls,
        provider="ollama",
        model="qwen3:8b",
        usage=Usage(prompt_tokens=12, completion_tokens=4, cached_tokens=2),
        timings=Timings(ttft_ms=85.0, tokens_per_second=41.5),
        cost=0.0,
    )
    await store.add_message(conv.id, "tool", "42", tool_call_id="call_1")
    got = await store.get_conversation(conv.id)
    assert got is not None and got.title == "Plans" and got.params == {"temperature": 0.3}
    assert got.message_count == 3
    msgs = await store.get_messages(conv.id)
    assert [m.position for m in msgs] == [0, 1, 2]
    assert msgs[0].content == "what is this?" and msgs[0].content_parts[1]["type"] == "image"
    assert msgs[0].to_message().images[0].data == ImagePart.from_bytes(b"\x89PNG").data
    a = msgs[1]
    assert a.id == aid and a.tool_calls == [{"id": "call_1", "name": "lookup", "arguments": {"q": "x"}}]
    assert (a.prompt_tokens, a.completion_tokens, a.cached_tokens) == (12, 4, 2)
    assert (a.ttft_ms, a.tokens_per_second, a.provider, a.model) == (85.0, 41.5, "ollama", "qwen3:8b")
    assert msgs[1].to_message().tool_calls[0].name == "lookup"
    assert msgs[2].to_message().tool_call_id == "call_1"


async def test_last_page_and_paging_back(store: ConversationStore) -> None:
    conv = await store.create_conversation()
    for i in range(25):
        await store.add_message(conv.id, "user", f"m{i}")
    page = await store.get_messages(conv.id, limit=10)
    assert [m.content for m in page] == [f"m{i}" for i in range(15, 25)]
    older = await store.get_messages(conv.id, limit=10, before_position=page[0].position)
    assert [m.content for m in older] == [f"m{i}" for i in range(5, 15)]


async def test_streamed_reply_flushes_by_size_and_finishes(store: ConversationStore) -> None:
    store.flush_interval = 60.0
    store.flush_chars = 100
    conv = await store.create_conversation()
    mid = await store.begin_assistant_message(
        conv.id, provider="vllm", model="m", endpoint="http://127.0.0.1:8000"
    )
    assert raw(store.path, "SELECT status, content FROM messages WHERE id=?", mid) == [("streaming", "")]
    for _ in range(35):
        await store.append_partial(mid, "x" * 9, "r")
    saved = len(committed(store.path, mid))
    assert 90 <= saved < 315  # flushed in batches, not per delta and not only at the end
    # ... as appended chunks: the message row itself is not rewritten while the reply streams
    assert raw(store.path, "SELECT content FROM messages WHERE id=?", mid) == [("",)]
    assert raw(store.path, "SELECT count(*) FROM message_chunks WHERE message_id=?", mid)[0][0] >= 1
    await store.finish_message(
        mid,
        "complete",
        usage=Usage(prompt_tokens=5, completion_tokens=30),
        timings=Timings(ttft_ms=12.5),
        cost=0.01,
    )
    m = await store.get_message(mid)
    assert m is not None and m.content == "x" * 315 and m.reasoning == "r" * 35
    assert (m.status, m.completion_tokens, m.ttft_ms, m.cost, m.endpoint) == (
        "complete",
        30,
        12.5,
        0.01,
        "http://127.0.0.1:8000",
    )
    with pytest.raises(StorageError):
        await store.append_partial(mid, "late")


async def test_stalled_stream_is_committed_by_timer(store: ConversationStore) -> None:
    store.flush_interval = 0.05
    conv = await store.create_conversation()
    mid = await store.begin_assistant_message(conv.id)
    await store.append_partial(mid, "first words")
    await asyncio.sleep(0.3)  # no further delta arrives
    assert committed(store.path, mid) == "first words"


async def test_reopen_marks_streaming_reply_interrupted(tmp_path: Path) -> None:
    s, _ = await open_store(tmp_path)
    conv = await s.create_conversation()
    mid = await s.begin_assistant_message(conv.id)
    await s.append_partial(mid, "half a rep")
    await s.flush(mid)
    s._pending.clear()  # as if the process died here: nothing more is written
    await s.close()
    s2, notice = await open_store(tmp_path)
    try:
        assert notice is None
        m = await s2.get_message(mid)
        assert m is not None and (m.status, m.content) == ("interrupted", "half a rep")
        assert [h.message_id for h in await s2.search("half")] == [mid]  # indexed once no longer streaming
    finally:
        await s2.close()


async def test_error_text_is_redacted_before_storage(store: ConversationStore) -> None:
    register_secret("zz-secret-value-123")
    conv = await store.create_conversation()
    mid = await store.begin_assistant_message(conv.id)
    await store.finish_message(mid, "error", error="401 for key zz-secret-value-123")
    assert raw(store.path, "SELECT error FROM messages WHERE id=?", mid) == [("401 for key ***",)]


async def test_search_finds_newest_first_with_snippet(store: ConversationStore) -> None:
    a = await store.create_conversation("Cooking")
    b = await store.create_conversation("Travel")
    await store.add_message(a.id, "user", "How long do I boil an egg?")
    await store.add_message(b.id, "assistant", "Boiling water at altitude is cooler.")
    assert [h.conversation_title for h in await store.search('"boil"')] == ["Cooking"]  # quoted: whole
    assert [h.conversation_title for h in await store.search("boil ")] == ["Cooking"]  # finished word
    hits = await store.search("boil")  # the last word is typed-ahead as a prefix
    assert [h.conversation_title for h in hits] == ["Travel", "Cooking"]  # newest first
    from victor_gui.storage.search import MATCH_CLOSE, MATCH_OPEN

    assert f"{MATCH_OPEN}Boiling{MATCH_CLOSE}" in hits[0].snippet
    assert f"{MATCH_OPEN}boil{MATCH_CLOSE}" in hits[1].snippet
    assert [h.conversation_title for h in await store.search("boil* water")] == ["Travel"]  # explicit prefix
    assert [h.conversation_title for h in await store.search("boil egg")] == ["Cooking"]  # last: prefix


@pytest.mark.parametrize(
    "query", ['"', "AND", "egg OR", "(egg", "egg*", "-egg", "NEAR(", "col:egg", "'; DROP", "^"]
)
async def test_search_survives_fts_syntax(store: ConversationStore, query: str) -> None:
    conv = await store.create_conversation()
    await store.add_message(conv.id, "user", "egg and col: stuff")
    hits = await store.search(query)  # no exception, whatever the text
    assert isinstance(hits, list)
    assert await store.search("   ") == [] and await store.search('" * ( -') == []
    for wrapped in ("(egg", "egg,", '"egg"', "EGG", "egg*", "stu*"):
        assert len(await store.search(wrapped)) == 1, wrapped


async def test_search_index_follows_edits_and_deletes(store: ConversationStore) -> None:
    conv = await store.create_conversation()
    mid = await store.add_message(conv.id, "user", "alpha")
    await store.add_message(conv.id, "assistant", "beta")
    await store.edit_message(mid, "gamma")
    assert await store.search("alpha") == [] and len(await store.search("gamma")) == 1
    assert await store.delete_messages_from(conv.id, 1) == 1
    assert await store.search("beta") == []
    await store.delete_conversation(conv.id)
    assert await store.search("gamma") == []
    assert raw(store.path, "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')") == []


async def test_list_conversations_most_recent_first(store: ConversationStore) -> None:
    a = await store.create_conversation("a")
    b = await store.create_conversation("b")
    await store.add_message(a.id, "user", "later")
    assert [c.title for c in await store.list_conversations()] == ["a", "b"]
    await store.update_conversation(b.id, title="renamed", params={"max_tokens": 10})
    convs = await store.list_conversations()
    assert convs[0].title == "renamed" and convs[0].params == {"max_tokens": 10}


async def test_verify_healthy_store(store: ConversationStore) -> None:
    conv = await store.create_conversation()
    await store.add_message(conv.id, "user", "fine")
    assert await store.verify() is None
