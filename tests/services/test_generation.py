"""Generation against a real SSE server on 127.0.0.1: stream, stop, errors, tool calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.servers.base import Fault, Script, ScriptedToolCall, SimServer, free_port
from tests.support.recording import make_llamacpp
from victor_gui.errors import ModelNotFoundError, ProviderAuthError, ProviderConnectionError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message
from victor_gui.services.generation import Generation, ReplyDelta, ReplyState, ReplyStatus

HELLO = [Message(role="user", content="hello")]


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with make_llamacpp() as server:
        yield server


def llamacpp(url: str) -> BaseProvider:
    return ProviderRegistry.create("llamacpp", base_url=f"{url}/v1", max_retries=0)


@pytest.fixture
async def provider(sim: SimServer) -> AsyncIterator[BaseProvider]:
    p = llamacpp(sim.url)
    yield p
    await p.close()


async def test_streams_content_reasoning_usage_and_timings(sim, provider) -> None:
    sim.script(Script(text="The answer is forty-two.", reasoning="Let me think.", pieces=6))
    gen = Generation(provider, HELLO, model="sim-model")
    seen: list[ReplyDelta] = []
    gen.add_listener(lambda state, delta: seen.append(delta))
    state = await gen.run()
    assert state.status is ReplyStatus.DONE
    assert state.content == "The answer is forty-two."
    assert state.reasoning == "Let me think."
    assert "think" not in state.content
    assert state.usage is not None and state.usage.completion_tokens == 6
    assert state.completion_tokens == 6
    assert state.ttft_ms is not None and state.ttft_ms > 0
    assert "".join(d.content for d in seen) == state.content
    assert seen[0].status_changed and seen[-1].status_changed
    assert sim.chat_requests()[0].body["messages"] == [{"role": "user", "content": "hello"}]


async def test_cancel_keeps_partial_and_closes_the_request(sim, provider) -> None:
    sim.script(Script(text="x" * 400, pieces=400, delay_s=0.01))
    gen = Generation(provider, HELLO, model="sim-model")
    got_some = asyncio.Event()
    gen.add_listener(lambda state, delta: got_some.set() if len(state.content) >= 5 else None)
    gen.start()
    await asyncio.wait_for(got_some.wait(), 5)
    gen.cancel()
    # "At once": the state says so before the task has even unwound.
    assert gen.state.status is ReplyStatus.INTERRUPTED
    partial = gen.state.content
    state = await gen.run()
    assert state.status is ReplyStatus.INTERRUPTED
    assert state.content.startswith(partial) and 5 <= len(state.content) < 400
    assert state.error is None
    # The server notices the client left (its next write fails).
    assert await asyncio.to_thread(sim.disconnected.wait, 5)


async def test_tool_calls_are_assembled(sim, provider) -> None:
    sim.script(Script(text="", tool_calls=[ScriptedToolCall("get_weather", {"city": "Oslo"}, id="c1")]))
    state = await Generation(provider, HELLO, model="sim-model").run()
    assert state.status is ReplyStatus.DONE
    calls = [(c.id, c.name, c.arguments) for c in state.tool_calls]
    assert calls == [("c1", "get_weather", {"city": "Oslo"})]
    assert state.partial_tool_calls[0].name == "get_weather"
    assert state.stop_reason == "tool_calls"


@pytest.mark.parametrize(("fault", "error_type"), [
    (Fault.UNAUTHORIZED, ProviderAuthError),
    (Fault.UNKNOWN_MODEL, ModelNotFoundError),
])
async def test_http_errors_are_typed(sim, provider, fault, error_type) -> None:
    sim.script(Script(fault=fault))
    state = await Generation(provider, HELLO, model="sim-model").run()
    assert state.status is ReplyStatus.ERROR
    assert isinstance(state.error, error_type)


async def test_truncated_stream_keeps_partial_on_the_error(sim, provider) -> None:
    sim.script(Script(text="abcdefghij", pieces=10, fault=Fault.TRUNCATED, fail_after=4))
    state = await Generation(provider, HELLO, model="sim-model").run()
    assert state.status is ReplyStatus.ERROR
    assert state.content == "abcd"
    assert state.error is not None and state.error.partial_content == "abcd"


async def test_nothing_listening_is_a_connection_error() -> None:
    async with llamacpp(f"http://127.0.0.1:{free_port()}") as p:
        state: ReplyState = await Generation(p, HELLO, model="m").run()
    assert state.status is ReplyStatus.ERROR
    assert isinstance(state.error, ProviderConnectionError)


async def test_a_failing_listener_does_not_break_the_stream(sim, provider) -> None:
    gen = Generation(provider, HELLO, model="sim-model")

    def bad(state: ReplyState, delta: ReplyDelta) -> None:
        raise RuntimeError("view bug")

    gen.add_listener(bad)
    remove = gen.add_listener(lambda s, d: None)
    remove()
    state = await gen.run()
    assert state.status is ReplyStatus.DONE
    assert state.content == "Hello from the simulator."
