"""ChatSession with the real OpenAI-compatible provider against the llama.cpp, vLLM and LM Studio
simulators: what the user saw is what the store holds, whatever happens to the stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.providers.openai_sims import DIALECTS, make_provider, running
from tests.servers.base import Fault, Script
from victor_gui.services.chat_session import ChatSession
from victor_gui.storage import open_store


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_reply_with_reasoning_lands_in_store(dialect: str, tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    with running(dialect) as server:
        provider = make_provider(dialect, server)
        conv = await store.create_conversation("dialect")
        session = ChatSession(store, conv.id, provider, "sim-model")
        server.script(Script(text="The answer is 42.", reasoning="Think: six times seven.", pieces=4))
        result = await session.send("What is six times seven?")
        await provider.close()
    m = await store.get_message(result.message_id)
    await store.close()
    assert result.status == "complete", result.error
    assert m is not None and m.content == "The answer is 42." and m.reasoning == "Think: six times seven."
    assert (m.provider, m.endpoint) == (dialect, server.url + "/v1")
    assert m.model and m.prompt_tokens and m.completion_tokens
    assert m.ttft_ms is not None and m.ttft_ms >= 0


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_stop_keeps_what_arrived(dialect: str, tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    with running(dialect) as server:
        provider = make_provider(dialect, server)
        conv = await store.create_conversation("dialect")
        got_text = asyncio.Event()
        session = ChatSession(
            store, conv.id, provider, "sim-model", on_event=lambda e: got_text.set() if e.text else None
        )
        server.script(Script(text="alpha beta gamma delta epsilon zeta", pieces=6, delay_s=0.3))
        task = asyncio.create_task(session.send("go"))
        await asyncio.wait_for(got_text.wait(), 10)
        await session.stop()
        with pytest.raises(asyncio.CancelledError):
            await task
        await provider.close()
    msgs = await store.get_messages(conv.id)
    await store.close()
    assert msgs[-1].status == "interrupted"
    assert msgs[-1].content and "alpha beta gamma delta epsilon zeta".startswith(msgs[-1].content)
    assert len(msgs[-1].content) < len("alpha beta gamma delta epsilon zeta")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_truncated_stream_keeps_partial_as_error(dialect: str, tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    with running(dialect) as server:
        provider = make_provider(dialect, server)
        conv = await store.create_conversation("dialect")
        session = ChatSession(store, conv.id, provider, "sim-model")
        server.script(
            Script(text="one two three four", pieces=4, fault=Fault.TRUNCATED, fail_after=2, repeat=5)
        )
        result = await session.send("go")
        await provider.close()
    m = await store.get_message(result.message_id)
    await store.close()
    assert result.status == "error" and result.error is not None
    assert m is not None and m.status == "error" and m.error
    assert m.content and "one two three four".startswith(m.content) and m.content != "one two three four"
