"""ChatSession against a real HTTP server on 127.0.0.1 streaming NDJSON, with a real store.

The provider here is a small, complete NDJSON adapter built on the project's own HTTP seam
(``raise_for_status``, ``iter_ndjson``, ``transport_error``); the protocol dialect simulators in
``tests/servers`` will replace it once they land.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers.base import Fault, Script, SimHandler, SimServer
from victor_gui.errors import ProviderError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.http import raise_for_status, transport_error
from victor_gui.providers.resilience import RetryPolicy
from victor_gui.providers.streaming import iter_ndjson
from victor_gui.providers.types import CompletionResponse, Message, StreamChunk, ToolDefinition, Usage
from victor_gui.services.chat_session import ChatSession, ReplyEvent
from victor_gui.storage import ConversationStore, open_store


class _Handler(SimHandler):
    routes = {("POST", "/stream"): "stream"}

    def stream(self) -> None:
        script = self.next_script()
        if script.fault == Fault.SERVER_ERROR:
            self.send_json(500, {"error": {"message": "backend exploded"}})
            return
        self.start_stream("application/x-ndjson")
        for i, piece in enumerate(script.text_pieces()):
            if script.fault == Fault.TRUNCATED and i == script.fail_after:
                self.drop_connection()
                return
            self.write_chunk(
                json.dumps({"text": piece, "reasoning": script.reasoning if i == 0 else ""}) + "\n"
            )
            self.pause(script)
        usage = {"prompt_tokens": script.prompt_tokens, "completion_tokens": script.completion_count()}
        self.write_chunk(json.dumps({"done": True, "usage": usage, "model": "sim-model-q4"}) + "\n")
        self.end_stream()


class NdjsonProvider(BaseProvider):
    """A whole provider for the NDJSON wire above."""

    @property
    def name(self) -> str:
        return "ndjson"

    def supports_streaming(self) -> bool:
        return True

    async def chat(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        tools: list[ToolDefinition] | None = None,
        **kwargs: Any,
    ) -> CompletionResponse:
        text = "".join([c.content async for c in self.stream(messages, model=model)])
        return CompletionResponse(content=text, model=model)

    async def stream(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        tools: list[ToolDefinition] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[StreamChunk]:
        body = {"model": model, "messages": [m.model_dump(mode="json") for m in messages]}
        got = ""
        try:
            async with self.http.stream("POST", f"{self.base_url}/stream", json=body) as response:
                await raise_for_status(response, provider=self.name, model=model)
                async for data in iter_ndjson(response, provider=self.name):
                    if data.get("done"):
                        yield StreamChunk(
                            is_final=True,
                            usage=Usage(**data["usage"]),
                            model=data["model"],
                            stop_reason="stop",
                        )
                    else:
                        got += data["text"]
                        yield StreamChunk(content=data["text"], reasoning=data.get("reasoning", ""))
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.name, model=model, partial=got) from exc


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(_Handler) as srv:
        yield srv


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ConversationStore]:
    s, _ = await open_store(tmp_path)
    yield s
    await s.close()


@pytest.fixture
async def session(server: SimServer, store: ConversationStore) -> AsyncIterator[ChatSession]:
    conv = await store.create_conversation("t", system_prompt="Be terse.")
    provider = NdjsonProvider(base_url=server.url, retry_policy=RetryPolicy(max_retries=0))
    events: list[ReplyEvent] = []
    s = ChatSession(
        store,
        conv.id,
        provider,
        "sim-model",
        cost_fn=lambda p, m, u: u.completion_tokens * 1e-6,
        on_event=events.append,
    )
    s.events = events  # type: ignore[attr-defined]
    yield s
    await s.stop()
    await provider.close()


async def test_send_streams_into_store_with_metrics(session: ChatSession, server: SimServer) -> None:
    server.script(Script(text="Hello there, how are you?", reasoning="thinking", pieces=5, delay_s=0.01))
    result = await session.send("Hi")
    assert result.status == "complete" and result.error is None
    m = await session.store.get_message(result.message_id)
    assert m is not None
    assert (m.content, m.reasoning, m.status) == ("Hello there, how are you?", "thinking", "complete")
    assert (m.provider, m.model, m.endpoint) == ("ndjson", "sim-model-q4", server.url)
    assert (m.prompt_tokens, m.completion_tokens) == (12, 5)
    assert m.ttft_ms is not None and 0 < m.ttft_ms < 5000
    assert m.tokens_per_second is not None and m.tokens_per_second > 0
    assert m.cost == pytest.approx(5e-6)
    kinds = [e.kind for e in session.events]  # type: ignore[attr-defined]
    assert kinds.count("delta") == 5 and kinds[-1] == "finished"
    sent = server.requests[0].body["messages"]
    assert [(x["role"], x["content"]) for x in sent] == [("system", "Be terse."), ("user", "Hi")]


async def test_live_tokens_per_second_equals_stored(session: ChatSession, server: SimServer) -> None:
    """The speed shown while the reply streams (the generation's figure, frozen when it ends) is
    the one stored: one formula, one clock (was 10.0 live vs 11.0 stored for the same reply)."""
    server.script(Script(text="one two three four five six seven eight nine ten", pieces=10, delay_s=0.02))
    result = await session.send("Count")
    assert session.generation is not None
    live = session.generation.state.tokens_per_second
    stored = await session.store.get_message(result.message_id)
    assert stored is not None and live is not None and stored.tokens_per_second is not None
    assert stored.tokens_per_second == pytest.approx(live, rel=1e-9)
    # (10 - 1) tokens over ~9 gaps of 20 ms: the first token starts the clock.
    assert 20 < live < 100


async def test_stop_cancels_at_once_and_keeps_partial(session: ChatSession, server: SimServer) -> None:
    server.script(Script(text="one two three four five six seven eight", pieces=8, delay_s=0.2))
    first_delta = asyncio.Event()
    session.on_event = lambda e: first_delta.set() if e.kind == "delta" else None
    task = asyncio.create_task(session.send("count"))
    await asyncio.wait_for(first_delta.wait(), 5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await session.stop()
    assert loop.time() - t0 < 0.15  # did not wait for the next piece
    with pytest.raises(asyncio.CancelledError):
        await task
    msgs = await session.store.get_messages(session.conversation_id)
    reply = msgs[-1]
    assert reply.status == "interrupted" and reply.content.startswith("one") and len(reply.content) < 39
    assert not session.busy


async def test_dropped_connection_keeps_partial_and_records_error(
    session: ChatSession, server: SimServer
) -> None:
    server.script(Script(text="abcdefghijkl", pieces=6, fault=Fault.TRUNCATED, fail_after=3))
    result = await session.send("go")
    assert result.status == "error" and isinstance(result.error, ProviderError)
    m = await session.store.get_message(result.message_id)
    assert m is not None and m.status == "error" and m.content == "abcdef" and m.error


async def test_server_error_then_regenerate(session: ChatSession, server: SimServer) -> None:
    server.script(Script(fault=Fault.SERVER_ERROR), Script(text="second try", pieces=2))
    first = await session.send("question")
    assert first.status == "error"
    second = await session.regenerate()
    assert second.status == "complete"
    msgs = await session.store.get_messages(session.conversation_id)
    assert [(m.role, m.content, m.status) for m in msgs] == [
        ("user", "question", "complete"),
        ("assistant", "second try", "complete"),
    ]
    # The failed, empty reply was not sent back to the model as history.
    assert [x["role"] for x in server.requests[1].body["messages"]] == ["system", "user"]


async def test_edit_and_resend_truncates_after_the_edit(session: ChatSession, server: SimServer) -> None:
    server.script(Script(text="A1", pieces=1), Script(text="A2", pieces=1), Script(text="B1", pieces=1))
    await session.send("Q1")
    await session.send("Q2")
    q1 = (await session.store.get_messages(session.conversation_id))[0]
    result = await session.edit_and_resend(q1.id, "Q1 edited")
    msgs = await session.store.get_messages(session.conversation_id)
    assert [(m.role, m.content) for m in msgs] == [("user", "Q1 edited"), ("assistant", "B1")]
    assert msgs[-1].id == result.message_id
    assert [x["content"] for x in server.requests[2].body["messages"]] == ["Be terse.", "Q1 edited"]


async def test_second_send_while_busy_is_refused(session: ChatSession, server: SimServer) -> None:
    server.script(Script(text="slow reply here", pieces=3, delay_s=0.2))
    task = asyncio.create_task(session.send("first"))
    await asyncio.sleep(0.05)
    with pytest.raises(RuntimeError, match="still streaming"):
        await session.send("second")
    await session.stop()
    with pytest.raises(asyncio.CancelledError):
        await task
