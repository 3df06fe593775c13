"""The same tool loop against the Anthropic, Gemini and Ollama simulators: each protocol's
tool-result request shape as the simulator received it, and signed thinking that survives a
restart (the Anthropic simulator refuses a tool turn replayed without its signed thinking)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import anthropic as anthropic_sim
from tests.servers import gemini as gemini_sim
from tests.servers import ollama as ollama_sim
from tests.servers.base import Script, ScriptedToolCall, SimServer
from tests.services.sessions import assert_valid_ollama
from tests.services.tool_sources import FunctionTools
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.reply_types import ReplyEvent
from victor_gui.services.tool_loop import ToolChoice, record_from_meta
from victor_gui.services.tool_types import ApprovalAnswer, ApprovalRequest, ToolCallState
from victor_gui.storage import open_store

ANT_KEY = "sk-ant-api03-toolloop0000001"
GEM_KEY = "AIzaSyD-toolloop-00000000001"


async def run_once(_: ApprovalRequest) -> ApprovalAnswer:
    return ApprovalAnswer.RUN_ONCE


@pytest.fixture
def ant() -> Iterator[SimServer]:
    with anthropic_sim.make_server(api_key=ANT_KEY) as server:
        yield server


def posts(server: SimServer) -> list[Any]:
    return [r for r in server.requests if r.method == "POST"]


async def loop_on(tmp_path: Path, provider: Any, model: str, server: SimServer,
                  **kwargs: Any) -> tuple[list[Any], Any]:
    store, _ = await open_store(tmp_path / "db")
    conv = await store.create_conversation("tools")
    session = ChatSession(store, conv.id, provider, model, tools=FunctionTools(), asker=run_once, **kwargs)
    await session.set_tool_choice(ToolChoice(("calc",)))
    add = ScriptedToolCall("add", {"a": 2, "b": 3}, id="toolu_01A")
    server.script(Script(text="Adding.", tool_calls=[add]), Script(text="It is 5."))
    result = await session.send("2 + 3?")
    stored = await store.get_messages(conv.id)
    await provider.close()
    await store.close()
    assert result.status == "complete", result.error
    assert [m.role for m in stored] == ["user", "assistant", "tool", "assistant"]
    assert stored[2].content == "5" and stored[3].content == "It is 5."
    return stored, result


async def test_anthropic_tool_result_shape(tmp_path: Path, ant: SimServer) -> None:
    provider = ProviderRegistry.create("anthropic", api_key=ANT_KEY, base_url=ant.url)
    await loop_on(tmp_path, provider, ant.model, ant)
    body = posts(ant)[-1].body
    assert [t["name"] for t in posts(ant)[0].body["tools"]] == ["add", "slow", "fail"]
    last = body["messages"][-1]
    assert last["role"] == "user"
    [block] = [b for b in last["content"] if b["type"] == "tool_result"]
    assert block["tool_use_id"] == "toolu_01A"
    assert "5" in str(block["content"])
    use = [b for b in body["messages"][-2]["content"] if b["type"] == "tool_use"]
    assert use[0]["name"] == "add" and use[0]["input"] == {"a": 2, "b": 3}


async def test_gemini_function_response_shape(tmp_path: Path) -> None:
    with gemini_sim.make_server(api_key=GEM_KEY) as gem:
        provider = ProviderRegistry.create("google", api_key=GEM_KEY, base_url=gem.url)
        await loop_on(tmp_path, provider, gem.model, gem)
        body = posts(gem)[-1].body
    contents = body["contents"]
    calls = [p["functionCall"] for p in contents[-2]["parts"] if "functionCall" in p]
    responses = [p["functionResponse"] for p in contents[-1]["parts"] if "functionResponse" in p]
    assert [c["name"] for c in calls] == ["add"] and calls[0]["args"] == {"a": 2, "b": 3}
    assert [r["name"] for r in responses] == ["add"] and "5" in str(responses[0]["response"])


async def test_ollama_tool_message_shape(tmp_path: Path) -> None:
    with ollama_sim.make_server() as server:
        provider = ProviderRegistry.create("ollama", base_url=server.url)
        await loop_on(tmp_path, provider, "sim-model", server)
        body = server.chat_requests()[-1].body
    assert_valid_ollama(body["messages"])
    last = body["messages"][-1]
    assert (last["role"], last["tool_name"], last["content"]) == ("tool", "add", "5")


async def _stop_during_a_slow_call(store: Any, conversation_id: int, provider: Any, model: str) -> None:
    """Send with thinking on; the scripted 30 s tool call is approved and starts; Stop while it
    runs (the reply ends cancelled); then the provider and the store close, as at an app exit."""
    running = asyncio.Event()

    def on_event(e: ReplyEvent) -> None:
        if e.kind == "tool_call" and e.meta and e.meta["state"] == "running":
            running.set()

    session = ChatSession(store, conversation_id, provider, model, tools=FunctionTools(), asker=run_once,
                          on_event=on_event, stream_options={"thinking": 2048})
    await session.set_tool_choice(ToolChoice(("calc",)))
    task = asyncio.ensure_future(session.send("wait for it"))
    await asyncio.wait_for(running.wait(), 10)
    await session.stop()
    with pytest.raises(asyncio.CancelledError):
        await task
    await provider.close()
    await store.close()


async def test_signed_thinking_goes_on_after_a_restart(tmp_path: Path, ant: SimServer) -> None:
    """Stop during a call; restart (a new provider, the store reopened); the conversation goes on
    and the tool turn is replayed with its signed thinking, which only the store kept."""
    store, _ = await open_store(tmp_path / "db")
    conv = await store.create_conversation("thinking")
    provider = ProviderRegistry.create("anthropic", api_key=ANT_KEY, base_url=ant.url)
    ant.script(Script(text="", reasoning="A slow tool first.",
                      tool_calls=[ScriptedToolCall("slow", {"seconds": 30}, id="toolu_01S")]))
    await _stop_during_a_slow_call(store, conv.id, provider, ant.model)

    store, _ = await open_store(tmp_path / "db")
    stored = await store.get_messages(conv.id)
    assert stored[1].meta and stored[1].meta["thinking_blocks"][0]["signature"]
    assert record_from_meta(stored[2].meta).state is ToolCallState.CANCELLED  # type: ignore[union-attr]
    provider = ProviderRegistry.create("anthropic", api_key=ANT_KEY, base_url=ant.url)
    session = ChatSession(store, conv.id, provider, ant.model, tools=FunctionTools(), asker=run_once,
                          stream_options={"thinking": 2048})
    ant.script(Script(text="Going on without it."))
    result = await session.send("go on")
    await provider.close()
    await store.close()
    assert result.status == "complete", result.error
    replayed = posts(ant)[-1].body["messages"][1]["content"]
    assert replayed[0]["type"] == "thinking" and replayed[0]["signature"]


async def test_ollama_model_without_tools_falls_back_to_text_calls(tmp_path: Path) -> None:
    """A model whose Ollama capabilities lack "tools" (Ollama would answer HTTP 400 "does not
    support tools"): the tools go in the prompt and the loop runs on calls written as text."""
    with ollama_sim.make_server(models=[{"name": "plain", "capabilities": ("completion",)}]) as server:
        provider = ProviderRegistry.create("ollama", base_url=server.url)
        store, _ = await open_store(tmp_path / "db")
        conv = await store.create_conversation("plain")
        tools = FunctionTools()
        session = ChatSession(store, conv.id, provider, "plain", tools=tools, asker=run_once)
        await session.set_tool_choice(ToolChoice(("calc",)))
        server.script(Script(text='<tool_call>{"name": "add", "arguments": {"a": 4, "b": 5}}</tool_call>'),
                      Script(text="It is 9."))
        result = await session.send("4 + 5?")
        stored = await store.get_messages(conv.id)
        await provider.close()
        await store.close()
        bodies = [r.body for r in server.chat_requests()]
    assert result.status == "complete", result.error
    assert tools.calls == [("calc", "add", {"a": 4, "b": 5})]
    assert [m.role for m in stored if m.role != "note"] == ["user", "assistant", "tool", "assistant"]
    assert stored[-1].content == "It is 9."
    assert not any(b.get("tools") for b in bodies)
    assert all("add" in b["messages"][0]["content"] for b in bodies if b["messages"][0]["role"] == "system")



async def test_bedrock_signed_reasoning_goes_on_after_a_restart(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """As for Anthropic: a stop during the call, a restart, and the turn replayed with its signed
    reasoning, kept only in the store (Bedrock's simulator refuses it without)."""
    from tests.providers.cloud_sims import BEDROCK_CREDS, BEDROCK_MODEL, bedrock_provider, clear_ambient_aws
    from tests.servers.bedrock import make_server

    clear_ambient_aws(monkeypatch)
    with make_server(credentials=BEDROCK_CREDS) as server:
        store, _ = await open_store(tmp_path / "db")
        conv = await store.create_conversation("bedrock")
        provider = bedrock_provider(server)
        server.script(Script(text="Checking.", reasoning="A slow tool first.",
                             tool_calls=[ScriptedToolCall("slow", {"seconds": 30}, id="tooluse_slow1")]))
        await _stop_during_a_slow_call(store, conv.id, provider, BEDROCK_MODEL)

        store, _ = await open_store(tmp_path / "db")
        provider = bedrock_provider(server)
        session = ChatSession(store, conv.id, provider, BEDROCK_MODEL, tools=FunctionTools(), asker=run_once,
                              stream_options={"thinking": 2048})
        server.script(Script(text="Going on."))
        result = await session.send("go on")
        await provider.close()
        await store.close()
        sent = posts(server)[-1].body["messages"]
    assert result.status == "complete", result.error
    assistant = next(m for m in sent if m["role"] == "assistant")["content"]
    assert "reasoningContent" in assistant[0]
