"""Switching provider and model mid-conversation, OpenAI-compatible (llama.cpp, vLLM) ↔ Ollama,
with tool calls in the history: the exact body each simulator received is valid for its
protocol, the switch is a stored note, and the old provider is closed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.providers import ollama_support
from tests.providers.openai_sims import make_provider, running
from tests.servers import ollama
from tests.servers.base import Script, ScriptedToolCall
from tests.services.sessions import assert_valid_ollama, assert_valid_openai
from victor_gui.services.chat_session import ChatSession, ReplyEvent
from victor_gui.storage import ConversationStore, open_store
from victor_gui.storage.export import export_json, import_json


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ConversationStore]:
    s, _ = await open_store(tmp_path)
    yield s
    await s.close()


async def test_openai_to_ollama_and_back_with_tool_calls(store: ConversationStore) -> None:
    conv = await store.create_conversation("switch", system_prompt="Be terse.")
    events: list[ReplyEvent] = []
    with running("llamacpp") as llama, running("vllm") as vllm, ollama.make_server() as oll:
        first = make_provider("llamacpp", llama)
        session = ChatSession(store, conv.id, first, "sim-model", on_event=events.append)
        # 1. llama.cpp asks for a tool (an OpenAI call id from the server); the app stores its result.
        llama.script(Script(text="", reasoning="I should look it up.", tool_calls=[
            ScriptedToolCall("get_weather", {"city": "Paris"}, id="call_llama_1")]))
        r1 = await session.send("Weather in Paris?")
        assert r1.status == "complete", r1.error
        await store.add_message(conv.id, "tool", "18°C, sunny", tool_call_id="call_llama_1")
        # An orphan result (its call was never stored) and a call that never got a result.
        await store.add_message(conv.id, "tool", "stale output", tool_call_id="call_gone")
        await store.add_message(conv.id, "assistant", "", tool_calls=[
            {"id": "call_unanswered", "name": "search", "arguments": {"q": "louvre"}}])
        old_client = first.http

        # 2. Switch to Ollama: a note is stored, the old provider's client is closed.
        second = ollama_support.make_provider(oll.url)
        switched = await session.switch(second, "sim-model")
        assert old_client.is_closed
        # Ollama's window is the num_ctx the chat will send, chosen from the fit plan (issue 17).
        assert switched.dropped_turns == 0 and switched.context_window.source == "plan"
        oll.script(Script(text="", tool_calls=[ScriptedToolCall("get_time", {"tz": "Europe/Paris"})]))
        r2 = await session.send("And the time there?")
        assert r2.status == "complete" and r2.provider == "ollama", r2.error
        sent = ollama_support.last_chat(oll).body["messages"]
        assert_valid_ollama(sent)
        assert sent[0] == {"role": "system", "content": "Be terse."}
        weather_call = next(m for m in sent if m.get("tool_calls"))["tool_calls"][0]
        assert weather_call == {"id": "call_llama_1", "function": {"name": "get_weather",
                                                                    "arguments": {"city": "Paris"}}}
        results = [m for m in sent if m["role"] == "tool"]
        assert results[0] == {"role": "tool", "content": "18°C, sunny", "tool_name": "get_weather",
                              "tool_call_id": "call_llama_1"}
        assert any("[Result of tool call_gone" in m["content"] for m in sent if m["role"] == "user")
        assert {"role": "tool", "content": "(no result: the tool was not run)", "tool_name": "search",
                "tool_call_id": "call_unanswered"} in sent
        assert all("I should look it up." not in json.dumps(m) for m in sent)  # reasoning not replayed

        # The Ollama call has no id on the wire; the stored one is synthesised, and its result pairs.
        reply = await store.get_message(r2.message_id)
        assert reply is not None and reply.tool_calls and reply.provider == "ollama"
        ollama_call_id = reply.tool_calls[0]["id"]
        await store.add_message(conv.id, "tool", "14:05", tool_call_id=ollama_call_id)

        # 3. Switch on to vLLM (OpenAI-compatible again): arguments become JSON strings.
        third = make_provider("vllm", vllm)
        await session.switch(third, "sim-model")
        assert second._client is None  # Ollama provider closed
        vllm.script(Script(text="It is 14:05 and sunny in Paris."))
        r3 = await session.send("Summarise.")
        assert r3.status == "complete", r3.error
        body = vllm.chat_requests()[-1].body
        assert_valid_openai(body["messages"])
        calls = [c for m in body["messages"] for c in m.get("tool_calls") or []]
        assert [c["function"]["arguments"] for c in calls] == [
            '{"city": "Paris"}', '{"q": "louvre"}', '{"tz": "Europe/Paris"}']
        assert {"role": "tool", "tool_call_id": ollama_call_id, "content": "14:05"} in body["messages"]
        await session.close()

    stored = await store.get_messages(conv.id)
    notes = [m for m in stored if m.is_note]
    assert [(n.meta or {})["kind"] for n in notes] == ["switch", "switch"]
    assert notes[0].meta["from"]["provider"] == "llamacpp" and notes[0].meta["to"]["provider"] == "ollama"
    assert notes[1].meta["to"] == {"provider": "vllm", "model": "sim-model", "endpoint": vllm.url + "/v1"}
    assert "Switched from llama.cpp · sim-model to Ollama · sim-model" in notes[0].content
    replies = [m for m in stored if m.id in (r1.message_id, r2.message_id, r3.message_id)]
    assert [m.provider for m in replies] == ["llamacpp", "ollama", "vllm"]
    assert replies[0].reasoning == "I should look it up." and replies[0].tool_calls
    assert replies[1].meta == {"repairs": {"orphan_tool_results": 1, "unanswered_tool_calls": 1}}
    assert [e.kind for e in events].count("note") == 2
    # Notes survive export and import with their meta.
    [copy_id] = await import_json(store, await export_json(store, [conv.id]))
    copied = [m for m in await store.get_messages(copy_id) if m.is_note]
    assert [n.meta for n in copied] == [n.meta for n in notes]


async def test_history_leaves_notes_out_and_regenerate_keeps_switch_note(store: ConversationStore) -> None:
    conv = await store.create_conversation("regen")
    with running("llamacpp") as llama, running("lmstudio") as lms:
        session = ChatSession(store, conv.id, make_provider("llamacpp", llama), "sim-model")
        llama.script(Script(text="first answer"))
        await session.send("question")
        await session.switch(make_provider("lmstudio", lms), "sim-model")
        history = await session.history()
        assert [m.role for m in history] == ["user", "assistant"]
        lms.script(Script(text="second answer"))
        result = await session.regenerate()
        assert result.status == "complete" and result.provider == "lmstudio"
        await session.close()
    stored = await store.get_messages(conv.id)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "question"),
        ("note", "Switched from llama.cpp · sim-model to LM Studio · sim-model. "
                 "The conversation so far goes along."),
        ("assistant", "second answer"),
    ]


async def test_switching_model_on_the_same_provider_keeps_it_open(store: ConversationStore) -> None:
    conv = await store.create_conversation("same")
    with running("vllm", models=["sim-model", "other-model"]) as vllm:
        provider = make_provider("vllm", vllm)
        session = ChatSession(store, conv.id, provider, "sim-model")
        vllm.script(Script(text="a"))
        await session.send("one")
        client = provider.http
        result = await session.switch(provider, "other-model")
        assert not client.is_closed and result.note_id
        vllm.script(Script(text="b"))
        reply = await session.send("two")
        assert vllm.chat_requests()[-1].body["model"] == "other-model"
        m = await store.get_message(reply.message_id)
        assert m is not None and m.model == "other-model"
        await session.close()
    assert client.is_closed


async def test_a_provider_that_never_finishes_closing_does_not_hang_the_switch(
        store: ConversationStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Seen under Wine: closing the old provider's HTTP client never returned, and the model switch
    # hung with it. Closing is tidying up: the switch goes on after CLOSE_TIMEOUT_S.
    import asyncio
    import time

    from tests.providers.openai_sims import make_provider as make
    from victor_gui.services import chat_session

    monkeypatch.setattr(chat_session, "CLOSE_TIMEOUT_S", 0.5)
    conv = await store.create_conversation("hung close")
    with running("vllm") as first, running("llamacpp") as second:
        old = make("vllm", first)
        never = asyncio.Event()

        async def close_that_hangs() -> None:
            await never.wait()

        monkeypatch.setattr(old, "close", close_that_hangs)
        session = ChatSession(store, conv.id, old, "sim-model")
        first.script(Script(text="a"))
        await session.send("one")
        started = time.monotonic()
        result = await asyncio.wait_for(session.switch(make("llamacpp", second), "sim-model"), 10)
        assert result.note_id and time.monotonic() - started < 5
        second.script(Script(text="b"))
        reply = await session.send("two")
        assert reply.status == "complete" and len(second.chat_requests()) == 1
        await session.close()
