"""OllamaProvider against the Ollama simulator: chat, stream, tools, thinking, images, options."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.providers.ollama_support import PLAIN, chat_bodies, collect, last_chat, make_provider, user
from tests.servers.base import Script, ScriptedToolCall
from tests.servers.ollama import OllamaServer, make_server
from victor_gui.providers.protocols.ollama import OllamaProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import ImagePart, Message, TextPart, ToolCall, ToolDefinition

WEATHER = ToolDefinition(name="get_weather", description="Weather for a city",
                         parameters={"type": "object", "properties": {"city": {"type": "string"}}})


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with make_server(models=[PLAIN], prompt_ns_per_token=4_000_000, eval_ns_per_token=20_000_000) as srv:
        yield srv


@pytest.fixture
async def ollama(server: OllamaServer) -> AsyncIterator[OllamaProvider]:
    provider = make_provider(server.url)
    yield provider
    await provider.close()


async def test_chat_text_usage_and_nanosecond_timings(server: OllamaServer, ollama: OllamaProvider) -> None:
    server.script(Script(text="Paris.", prompt_tokens=30, completion_tokens=10))
    reply = await ollama.chat(user("Capital of France?"), model="sim-model", temperature=0.2, max_tokens=64)

    assert reply.content == "Paris."
    assert reply.stop_reason == "stop"
    usage = reply.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (30, 10, 40)
    # Hand-computed: eval 10 tokens x 20 ms = 200 ms -> 50 tok/s; prompt 30 x 4 ms = 120 ms -> 250 tok/s.
    assert reply.timings.source == "server"
    assert reply.timings.tokens_per_second == pytest.approx(50.0)
    assert reply.timings.prompt_tokens_per_second == pytest.approx(250.0)
    assert reply.metadata["eval_duration_ms"] == pytest.approx(200.0)
    body = last_chat(server).body
    assert body["stream"] is False
    assert body["options"] == {"temperature": 0.2, "num_predict": 64}
    assert body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert "tools" not in body and "think" not in body


async def test_stream_deltas_and_one_final_chunk(server: OllamaServer, ollama: OllamaProvider) -> None:
    server.script(Script(text="one two three four five", pieces=5, completion_tokens=5))
    chunks = await collect(ollama)

    assert "".join(c.content for c in chunks) == "one two three four five"
    assert sum(1 for c in chunks if c.content) == 5
    finals = [c for c in chunks if c.is_final]
    assert finals == [chunks[-1]]
    final = chunks[-1]
    assert final.usage.completion_tokens == 5
    assert final.timings.tokens_per_second == pytest.approx(50.0)  # 5 / (5 x 20 ms)
    assert final.timings.ttft_ms is not None and final.timings.ttft_ms > 0
    assert last_chat(server).body["stream"] is True


async def test_streamed_tool_calls_arrive_whole_with_stable_ids(server: OllamaServer,
                                                                 ollama: OllamaProvider) -> None:
    server.script(Script(text="", tool_calls=[
        ScriptedToolCall("get_weather", {"city": "Tokyo"}, id="call_ab12cd34"),
        ScriptedToolCall("get_weather", {"city": "Oslo", "days": 2}),
    ]))
    chunks = await collect(ollama, tools=[WEATHER])

    streamed = [c.tool_calls for c in chunks if c.tool_calls and not c.is_final]
    assert [len(calls) for calls in streamed] == [1, 1]  # each call complete in its own chunk
    first, second = streamed[0][0], streamed[1][0]
    assert first.id == "call_ab12cd34"  # Ollama's id is kept
    assert second.id.startswith("call_") and second.id != first.id  # synthesised when absent
    assert second.arguments == {"city": "Oslo", "days": 2}
    final = chunks[-1]
    assert [c.id for c in final.tool_calls] == [first.id, second.id]  # same ids on the final chunk
    assert final.stop_reason == "tool_calls"
    assert final.metadata["done_reason"] == "stop"
    tools = last_chat(server).body["tools"]
    assert tools == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city", "parameters": WEATHER.parameters}}]


async def test_non_stream_tool_calls_have_object_arguments_and_ids(server: OllamaServer,
                                                                   ollama: OllamaProvider) -> None:
    server.script(Script(text="", tool_calls=[ScriptedToolCall("get_weather", {"city": "Lima"})]))
    reply = await ollama.chat(user(), model="sim-model", tools=[WEATHER])
    assert len(reply.tool_calls) == 1
    call = reply.tool_calls[0]
    assert (call.name, call.arguments) == ("get_weather", {"city": "Lima"})
    assert call.id.startswith("call_")
    assert reply.stop_reason == "tool_calls"


async def test_tool_result_round_trip_payload_shape(server: OllamaServer, ollama: OllamaProvider) -> None:
    history = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Weather in Tokyo?"),
        Message(role="assistant", content="", tool_calls=[
            ToolCall(id="call_1", name="get_weather", arguments={"city": "Tokyo"})]),
        Message(role="tool", tool_call_id="call_1", content='{"temp": 21}'),
    ]
    await ollama.chat(history, model="sim-model", tools=[WEATHER])
    sent = last_chat(server).body["messages"]
    assert sent[2] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}]}
    assert sent[3] == {"role": "tool", "content": '{"temp": 21}', "tool_name": "get_weather",
                       "tool_call_id": "call_1"}


async def test_thinking_is_requested_and_kept_apart(server: OllamaServer, ollama: OllamaProvider) -> None:
    server.script(Script(text="42", reasoning="Six times seven."), Script(text="ok", reasoning="hm"))
    chunks = await collect(ollama, think=True)
    assert last_chat(server).body["think"] is True
    assert "".join(c.reasoning for c in chunks) == "Six times seven."
    assert "".join(c.content for c in chunks) == "42"

    reply = await ollama.chat(user(), model="sim-model", think="high")
    assert last_chat(server).body["think"] == "high"
    assert (reply.content, reply.reasoning) == ("ok", "hm")


async def test_inline_think_tags_are_split_from_content(server: OllamaServer, ollama: OllamaProvider) -> None:
    # Pre-0.9 Ollama put reasoning inline; 3-character pieces cut both tags across chunks.
    server.script(Script(text="The answer.", reasoning="Let me see.", inline_think=True, pieces=9))
    chunks = await collect(ollama)
    assert "".join(c.reasoning for c in chunks) == "Let me see."
    assert "".join(c.content for c in chunks) == "The answer."


async def test_images_go_as_bare_base64(server: OllamaServer, ollama: OllamaProvider) -> None:
    image = ImagePart.from_bytes(b"\x89PNG\r\n\x1a\nfake", "image/png")
    message = Message(role="user", content=[TextPart(text="What is this?"), image])
    await ollama.chat([message], model="sim-model")
    sent = last_chat(server).body["messages"][0]
    assert sent["content"] == "What is this?"
    assert sent["images"] == [base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()]
    assert not sent["images"][0].startswith("data:")


async def test_keep_alive_num_ctx_and_options_on_the_wire(server: OllamaServer,
                                                          ollama: OllamaProvider) -> None:
    await ollama.chat(user(), model="sim-model", num_ctx=8192, keep_alive="10m", options={"seed": 7},
                      top_p=0.9)
    body = last_chat(server).body
    assert body["keep_alive"] == "10m"
    assert body["options"] == {"temperature": 0.7, "num_predict": 4096, "num_ctx": 8192, "top_p": 0.9,
                               "seed": 7}
    models = {m.id: m for m in await ollama.list_models()}
    assert models["sim-model:latest"].loaded is True
    assert models["sim-model:latest"].loaded_context_length == 8192  # type: ignore[attr-defined]


async def test_model_without_tools_falls_back_to_text_calls(server: OllamaServer,
                                                            ollama: OllamaProvider) -> None:
    call_text = '{"name": "get_weather", "arguments": {"city": "Oslo"}}'
    server.script(Script(text=call_text), Script(text=call_text))
    reply = await ollama.chat(user(), model="plain", tools=[WEATHER])
    first, second = chat_bodies(server)
    assert "tools" in first and "tools" not in second  # 400 "does not support tools", then once more
    assert second["messages"][0]["role"] == "system" and "get_weather" in second["messages"][0]["content"]
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("get_weather", {"city": "Oslo"})]
    assert reply.content == ""
    # Remembered: the next call goes straight to the text fallback, streamed this time.
    chunks = await collect(ollama, model="plain", tools=[WEATHER])
    assert len(server.chat_requests()) == 3
    assert "".join(c.content for c in chunks) == ""
    assert [c.name for c in chunks[-1].tool_calls] == ["get_weather"]
    assert chunks[-1].metadata["tool_text_fallback"] is True


async def test_think_refused_retries_without_think(server: OllamaServer, ollama: OllamaProvider) -> None:
    chunks = await collect(ollama, model="plain", think=True)
    first, second = chat_bodies(server)
    assert first["think"] is True and "think" not in second
    assert "".join(c.content for c in chunks) == "Hello from the simulator."


async def test_list_models_and_show(server: OllamaServer, ollama: OllamaProvider) -> None:
    models = {m.id: m for m in await ollama.list_models()}
    assert set(models) == {"sim-model:latest", "plain:latest"}
    sim = models["sim-model:latest"]
    assert (sim.size_bytes, sim.quantization, sim.family) == (2_019_393_189, "Q4_K_M", "llama")
    assert sim.parameter_size == "3.2B"  # type: ignore[attr-defined]
    assert sim.loaded is False
    assert ollama.supports_vision("sim-model") is False  # unknown until shown
    details = await ollama.show_model("sim-model")
    assert details.context_length == 131072
    assert {"tools", "vision", "thinking"} <= set(details.capabilities)
    assert ollama.supports_vision("sim-model") and ollama.supports_vision("sim-model:latest")
    plain = await ollama.show_model("plain")
    assert not plain.supports_tools and not ollama.supports_vision("plain")


async def test_show_then_chat_skips_the_refused_round_trip(server: OllamaServer,
                                                           ollama: OllamaProvider) -> None:
    await ollama.show_model("plain")
    server.script(Script(text="no tools needed"))
    reply = await ollama.chat(user(), model="plain", tools=[WEATHER])
    assert len(server.chat_requests()) == 1 and "tools" not in chat_bodies(server)[0]
    assert reply.content == "no tools needed" and reply.tool_calls is None


async def test_registry_creates_ollama_with_spec(server: OllamaServer) -> None:
    provider = ProviderRegistry.create("ollama", base_url=server.url)
    try:
        assert isinstance(provider, OllamaProvider)
        assert provider.supports_tools() and provider.supports_streaming()
        reply = await provider.chat(user(), model="sim-model")
        assert reply.content == "Hello from the simulator."
    finally:
        await provider.close()


async def test_stopping_a_stream_closes_it_at_once(server: OllamaServer, ollama: OllamaProvider) -> None:
    # Stop in the UI = closing the async generator; the HTTP response must go with it, and the
    # endpoint's breaker must not count it as a failure.
    server.script(Script(text="x" * 40, pieces=40, delay_s=0.05))
    started = time.monotonic()
    stream = ollama.stream(user(), model="sim-model")
    first = await anext(stream)
    await stream.aclose()
    assert first.content == "x"
    assert time.monotonic() - started < 1.0  # not the 2 s the whole reply takes
    assert ollama.breaker.failures == 0
    reply = await ollama.chat(user(), model="sim-model")  # the provider is still usable
    assert reply.content == "Hello from the simulator."


async def test_text_fallback_streams_prose_and_hides_call_markup(server: OllamaServer,
                                                                 ollama: OllamaProvider) -> None:
    text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>'
    server.script(Script(text=text, pieces=12))
    chunks = await collect(ollama, model="plain", tools=[WEATHER])
    sent = chat_bodies(server)[-1]
    assert "tools" not in sent and "<tool_call>" in sent["messages"][0]["content"]  # the shared prompt
    streamed = "".join(c.content for c in chunks if not c.is_final)
    assert streamed.startswith("Let me check.") and "<tool" not in streamed  # prose streamed live
    assert "<tool_call>" not in "".join(c.content for c in chunks)
    assert [(c.name, c.arguments) for c in chunks[-1].tool_calls] == [("get_weather", {"city": "Rome"})]


async def test_text_fallback_without_a_call_delivers_all_text(server: OllamaServer,
                                                              ollama: OllamaProvider) -> None:
    text = "Use this:\n```python\nprint({'a': 1})\n```\nDone."
    server.script(Script(text=text, pieces=10))
    chunks = await collect(ollama, model="plain", tools=[WEATHER])
    assert "".join(c.content for c in chunks) == text
    assert chunks[-1].tool_calls is None and chunks[-1].stop_reason == "stop"


def test_vision_and_reasoning_from_capabilities_file_until_shown() -> None:
    provider = OllamaProvider()
    assert provider.supports_vision("llava:7b") and not provider.supports_vision("llama3.2")
    assert provider.supports_reasoning("qwen3:8b") and not provider.supports_reasoning("llama3.2")
    # Ollama's default models run locally and may load first: reads get the file's 2x multiplier.
    assert provider.request_timeout("llama3.2").read == pytest.approx(600.0)
