"""The llama.cpp provider (``ProviderRegistry.create("llamacpp")``) against the real server.

Reached the way a user reaches it: ``VICTOR_LLAMACPP_HOST`` names the server. Covers whole and
streamed chat, usage and server timings (tokens/s), streamed tool calls assembled into one call,
a tool-result round trip, a prompt over the context, and a server killed mid-stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.support.llama_server import LlamaServer
from victor_gui.errors import ContextLengthExceededError, ProviderError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.resilience import RetryPolicy
from victor_gui.providers.types import Message, StreamChunk, ToolDefinition

pytestmark = pytest.mark.llamacpp

HI = [Message(role="user", content="hi")]
WEATHER = ToolDefinition(name="get_weather", description="Get the weather for a city",
                         parameters={"type": "object", "properties": {"city": {"type": "string"}},
                                     "required": ["city"]})
NO_RETRY = RetryPolicy(max_retries=0, base_delay=0.0, max_delay=0.0, jitter=0.0)


@pytest.fixture
def provider_for(monkeypatch: pytest.MonkeyPatch) -> Callable[[LlamaServer], BaseProvider]:
    def make(server: LlamaServer) -> BaseProvider:
        monkeypatch.setenv("VICTOR_LLAMACPP_HOST", f"127.0.0.1:{server.port}")
        return ProviderRegistry.create("llamacpp", retry_policy=NO_RETRY)

    return make


async def collect(stream: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    return [chunk async for chunk in stream]


async def test_list_models_names_the_served_model(llama_server: LlamaServer, provider_for) -> None:
    provider = provider_for(llama_server)
    (info,) = await provider.list_models()
    assert info.id == str(llama_server.model)
    assert info.provider == "llamacpp"


async def test_whole_chat_with_usage_and_server_timings(llama_server: LlamaServer, provider_for) -> None:
    provider = provider_for(llama_server)
    reply = await provider.chat(HI, model="tiny", temperature=0, max_tokens=6)
    assert reply.content and reply.content.isascii()
    assert reply.stop_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0 and 1 <= reply.usage.completion_tokens <= 6
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.timings is not None and reply.timings.source == "server"
    raw: Any = reply.raw_response
    if isinstance(raw, dict) and raw["timings"]["predicted_per_second"] > 0:
        # tokens/s is the server's own figure (it counts decode steps, predicted_n - 1).
        assert reply.timings.tokens_per_second == pytest.approx(raw["timings"]["predicted_per_second"])
    assert reply.timings.prompt_tokens_per_second and reply.timings.prompt_tokens_per_second > 0


async def test_stream_text_matches_whole_reply_and_ends_with_usage(llama_server: LlamaServer,
                                                                   provider_for) -> None:
    provider = provider_for(llama_server)
    whole = await provider.chat(HI, model="tiny", temperature=0, max_tokens=6)
    chunks = await collect(provider.stream(HI, model="tiny", temperature=0, max_tokens=6))
    assert "".join(c.content for c in chunks) == whole.content  # greedy decoding
    final = chunks[-1]
    assert final.is_final and [c for c in chunks if c.is_final] == [final]
    assert final.stop_reason in ("stop", "length")
    assert final.usage is not None and final.usage.completion_tokens == whole.usage.completion_tokens
    assert final.timings is not None and final.timings.source == "server"
    assert final.timings.tokens_per_second is None or final.timings.tokens_per_second > 0


async def test_streamed_tool_call_is_assembled_into_one_call(llama_server: LlamaServer,
                                                             provider_for) -> None:
    provider = provider_for(llama_server)
    chunks = await collect(provider.stream(HI, model="tiny", temperature=0, max_tokens=64, tools=[WEATHER]))
    deltas = [d for c in chunks for d in c.tool_call_deltas or []]
    assert len(deltas) > 1 and {d.index for d in deltas} == {0}  # arrived in fragments
    final = chunks[-1]
    assert final.is_final and final.stop_reason == "tool_calls"
    (call,) = final.tool_calls or []
    assert call.name == "get_weather"
    assert isinstance(call.arguments, dict) and "city" in call.arguments
    assert call.id == deltas[0].id


async def test_tool_result_round_trip(llama_server: LlamaServer, provider_for) -> None:
    provider = provider_for(llama_server)
    first = await provider.chat(HI, model="tiny", temperature=0, max_tokens=64, tools=[WEATHER])
    (call,) = first.tool_calls or []
    assert first.stop_reason == "tool_calls"
    history = [*HI,
               Message(role="assistant", content=first.content, tool_calls=[call]),
               Message(role="tool", content="sunny, 21 C", tool_call_id=call.id)]
    second = await provider.chat(history, model="tiny", temperature=0, max_tokens=8, tools=[WEATHER])
    assert not second.tool_calls
    assert second.stop_reason in ("stop", "length")
    assert isinstance(second.content, str) and second.content


async def test_prompt_over_context_is_context_length_exceeded(start_llama, tiny_model, provider_for) -> None:
    server = start_llama(tiny_model(), ctx=512)
    provider = provider_for(server)
    big = [Message(role="user", content="hi " * 600)]
    with pytest.raises(ContextLengthExceededError) as whole:
        await provider.chat(big, model="tiny", max_tokens=8)
    assert whole.value.status_code == 400
    with pytest.raises(ContextLengthExceededError):
        await collect(provider.stream(big, model="tiny", max_tokens=8))


async def test_server_killed_mid_stream_keeps_the_partial_text(start_llama, tiny_model, provider_for) -> None:
    # eos_bias -30: the reply never ends on its own, so the stream is still running when killed.
    server = start_llama(tiny_model(eos_bias=-30.0))
    provider = provider_for(server)
    received: list[str] = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in provider.stream(HI, model="tiny", temperature=0, max_tokens=4000):
            received.append(chunk.content)
            if len("".join(received)) >= 3 and server.running:
                await asyncio.to_thread(server.kill)
    error = caught.value
    assert not isinstance(error, ContextLengthExceededError)
    delivered = "".join(received)
    assert delivered and error.partial_content == delivered
    assert error.provider == "llamacpp"




async def test_a_request_right_after_a_stream_succeeds(llama_server: LlamaServer, provider_for) -> None:
    """llama-server closes the connection after every stream (see test_llamacpp_real.py); the
    provider's pooled client must not send the next request on that dead connection."""
    provider = provider_for(llama_server)  # no retries: a stale connection would surface
    for _ in range(5):
        chunks = await collect(provider.stream(HI, model="tiny", temperature=0, max_tokens=3))
        assert chunks[-1].is_final
        reply = await provider.chat(HI, model="tiny", temperature=0, max_tokens=3)
        assert reply.content
