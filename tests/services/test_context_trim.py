"""Trimming to the model's context window: oldest turns first, tool call/result pairs together,
never the system prompt nor the last user turn, with a visible note; the window comes from the
server (vLLM's ``max_model_len``) when it says."""

from __future__ import annotations

from pathlib import Path

from tests.providers import ollama_support
from tests.providers.openai_sims import make_provider, running
from tests.servers import ollama
from tests.servers.base import Script
from tests.services.sessions import assert_valid_openai
from victor_gui.providers.types import Message, ToolCall
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.context_trim import estimate_tokens, prompt_budget, trim_history
from victor_gui.services.context_window import OLLAMA_DEFAULT_CONTEXT, discover_context_window
from victor_gui.storage import open_store

LINE = "x" * 80  # 80 chars -> ceil(80 / 4 * 1.1) = 22 tokens + 4 framing = 26 per message


def test_estimate_is_chars_over_four_with_margin_and_overhead() -> None:
    assert estimate_tokens(Message(role="user", content=LINE)) == 26
    call = ToolCall(id="c1", name="f", arguments={"a": 1})  # 'f{"a": 1}' = 9 chars -> 3 tokens
    assert estimate_tokens(Message(role="assistant", tool_calls=[call])) == 4 + 8 + 3
    assert prompt_budget(300, 100) == 200
    assert prompt_budget(1000, 4096) == 500  # reserve capped at half the window


def test_oldest_turns_go_first_and_pairs_stay_together() -> None:
    turns: list[Message] = [Message(role="system", content="sys")]
    for i in range(5):
        turns.append(Message(role="user", content=f"{i}{LINE}"))
        if i == 1:  # a tool call and its result inside turn 1
            turns.append(Message(role="assistant", tool_calls=[ToolCall(id="t1", name="f")]))
            turns.append(Message(role="tool", tool_call_id="t1", content=LINE))
        turns.append(Message(role="assistant", content=LINE))
    turns.append(Message(role="user", content="last " + LINE))
    result = trim_history(turns, context_window=300, max_tokens=100)
    assert result.trimmed and result.fits and result.estimated_tokens <= 200
    assert result.messages[0].content == "sys" and result.messages[-1].content == "last " + LINE
    kept_ids = {c.id for m in result.messages for c in m.tool_calls or []}
    results = {m.tool_call_id for m in result.messages if m.role == "tool"}
    assert kept_ids == results  # both halves of the pair kept, or both dropped
    first_user = next(m for m in result.messages if m.role == "user")
    assert first_user.text.startswith(str(result.dropped_turns))  # the oldest ones went


def test_last_turn_is_kept_even_when_it_alone_is_too_big() -> None:
    messages = [Message(role="system", content="sys"), Message(role="user", content="old"),
                Message(role="user", content=LINE * 50)]
    result = trim_history(messages, context_window=200, max_tokens=0)
    assert [m.role for m in result.messages] == ["system", "user"] and not result.fits
    assert result.messages[1].text == LINE * 50 and result.dropped_turns == 1


async def test_session_trims_to_server_window_with_note(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    conv = await store.create_conversation("long", system_prompt="You are terse.")
    for i in range(6):
        await store.add_message(conv.id, "user", f"{i} {LINE}")
        if i == 3:  # a tool pair right at the trimming edge
            await store.add_message(conv.id, "assistant", "", tool_calls=[
                {"id": "edge", "name": "f", "arguments": {}}])
            await store.add_message(conv.id, "tool", LINE, tool_call_id="edge")
        await store.add_message(conv.id, "assistant", LINE)
    with running("vllm", max_model_len=300) as vllm:
        provider = make_provider("vllm", vllm)
        session = ChatSession(store, conv.id, provider, "sim-model", max_tokens=100)
        vllm.script(Script(text="ok"))
        result = await session.send("final question " + LINE)
        await session.close()
    assert result.status == "complete", result.error
    sent = vllm.chat_requests()[-1].body["messages"]
    assert_valid_openai(sent)
    assert sent[0] == {"role": "system", "content": "You are terse."}
    assert sent[-1] == {"role": "user", "content": "final question " + LINE}
    assert not any("[Result of tool" in str(m["content"]) for m in sent)  # no pair was split
    estimate = sum(estimate_tokens(Message(**{k: v for k, v in m.items() if k != "tool_calls"}))
                   for m in sent)
    assert estimate <= 300
    stored = await store.get_messages(conv.id)
    note = next(m for m in stored if m.is_note)
    assert note.meta is not None and note.meta["kind"] == "trim"
    dropped = note.meta["dropped_turns"]
    assert dropped >= 1 and note.meta["context_window"] == 300 and note.meta["source"] == "server"
    assert f"{dropped} older turn" in note.content
    users_sent = [m["content"] for m in sent if m["role"] == "user"]
    assert users_sent[0].startswith(f"{dropped} ")  # exactly the oldest turns were dropped
    reply = await store.get_message(result.message_id)
    assert reply is not None and reply.meta is not None and reply.meta["trimmed_turns"] == dropped
    await store.close()


async def test_ollama_window_is_the_one_it_runs_with() -> None:
    with ollama.make_server(models=[{"name": "tiny-ctx", "num_ctx": 512}], default_context=2048) as oll:
        provider = ollama_support.make_provider(oll.url)
        modelfile = await discover_context_window(provider, "tiny-ctx")
        assert (modelfile.tokens, modelfile.source) == (512, "server")  # PARAMETER num_ctx
        cold = await discover_context_window(provider, "sim-model")
        assert cold.tokens == OLLAMA_DEFAULT_CONTEXT  # not the trained 131,072: Ollama runs at its default
        await ollama_support.collect(provider, model="sim-model")
        loaded = await discover_context_window(provider, "sim-model")
        assert (loaded.tokens, loaded.source) == (2048, "server")  # the runner's context, from /api/ps
        await provider.close()
    dead = await discover_context_window(provider, "sim-model")
    assert dead.unreachable is not None and dead.source in ("table", "default")
    await provider.close()
