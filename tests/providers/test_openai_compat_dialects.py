"""The OpenAI-compatible provider against the llama.cpp, vLLM and LM Studio simulators:
chat, stream, tool calls (streamed and whole), reasoning, usage, timings, images."""

from __future__ import annotations

import base64

import pytest

from tests.providers.openai_sims import DIALECTS, HI, collect, make_provider, reasoning_of, running, text_of
from tests.servers.base import Script, ScriptedToolCall
from victor_gui.errors import BadRequestError
from victor_gui.providers.types import ImagePart, Message, TextPart, ToolCall, ToolDefinition

pytestmark = pytest.mark.parametrize("dialect", DIALECTS)
WEATHER = ToolDefinition(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


async def test_chat(dialect: str) -> None:
    with running(dialect) as server:
        server.script(Script(text="Bonjour à tous"))
        async with make_provider(dialect, server) as provider:
            reply = await provider.chat(HI, model="sim-model", temperature=0.2, max_tokens=64)
        assert reply.content == "Bonjour à tous" and reply.stop_reason == "stop"
        sent = server.chat_requests()[0].body
        assert sent["stream"] is False and sent["max_tokens"] == 64 and sent["temperature"] == 0.2
        assert sent["messages"] == [{"role": "user", "content": "hi"}]


async def test_stream_text_usage_and_cached_tokens(dialect: str) -> None:
    with running(dialect, cached_tokens=7) as server:
        server.script(Script(text="one two three four five six", pieces=6, prompt_tokens=30))
        async with make_provider(dialect, server) as provider:
            chunks = await collect(provider.stream(HI, model="sim-model"))
        assert text_of(chunks) == "one two three four five six"
        assert len([c for c in chunks if c.content]) >= 5  # really streamed in pieces
        final = chunks[-1]
        assert final.is_final and final.stop_reason == "stop" and sum(c.is_final for c in chunks) == 1
        assert final.usage is not None and final.usage.prompt_tokens == 30 and final.usage.cached_tokens == 7
        assert final.timings is not None and final.timings.ttft_ms is not None and final.timings.ttft_ms > 0
        assert server.chat_requests()[0].body["stream_options"] == {"include_usage": True}


async def test_timings_to_tokens_per_second(dialect: str) -> None:
    with running(dialect) as server:
        server.script(Script(text="a b c d e f g h", pieces=8, delay_s=0.01))
        async with make_provider(dialect, server) as provider:
            final = (await collect(provider.stream(HI, model="sim-model")))[-1]
        assert final.timings is not None and final.timings.tokens_per_second
        if dialect == "llamacpp":  # server timings in ms -> tokens/s
            assert final.timings.source == "server"
            assert final.timings.tokens_per_second == pytest.approx(50.0)
            assert final.timings.prompt_tokens_per_second == pytest.approx(300.0)
        else:  # measured by the client from the deltas' arrival
            assert final.timings.source == "client" and 10 < final.timings.tokens_per_second < 1000


async def test_streamed_tool_call_fragments_and_assembled_call(dialect: str) -> None:
    with running(dialect) as server:
        server.script(
            Script(
                text="",
                tool_calls=[
                    ScriptedToolCall("get_weather", {"city": "Paris"}, id="call_abc"),
                    ScriptedToolCall("get_weather", {"city": "Oslo"}, id="call_def"),
                ],
            )
        )
        async with make_provider(dialect, server) as provider:
            chunks = await collect(provider.stream(HI, model="sim-model", tools=[WEATHER]))
        deltas = [d for c in chunks for d in c.tool_call_deltas or []]
        assert {d.index for d in deltas} == {0, 1} and len(deltas) > 2
        assert deltas[0].id == "call_abc" and deltas[0].name == "get_weather"
        final = chunks[-1]
        assert final.stop_reason == "tool_calls"
        assert final.tool_calls == [
            ToolCall(id="call_abc", name="get_weather", arguments={"city": "Paris"}),
            ToolCall(id="call_def", name="get_weather", arguments={"city": "Oslo"}),
        ]
        tools = server.chat_requests()[0].body["tools"]
        assert tools == [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": WEATHER.parameters,
                },
            }
        ]


async def test_whole_tool_call_and_tool_result_round_trip(dialect: str) -> None:
    with running(dialect) as server:
        server.script(
            Script(text="", tool_calls=[ScriptedToolCall("get_weather", {"city": "Rome"}, id="call_1")]),
            Script(text="Sunny in Rome"),
        )
        async with make_provider(dialect, server) as provider:
            first = await provider.chat(HI, model="sim-model", tools=[WEATHER])
            assert first.tool_calls == [ToolCall(id="call_1", name="get_weather", arguments={"city": "Rome"})]
            history = [*HI, first.to_message(), Message(role="tool", tool_call_id="call_1", content="sunny")]
            second = await provider.chat(history, model="sim-model", tools=[WEATHER])
        assert second.content == "Sunny in Rome"
        sent = server.chat_requests()[1].body["messages"]
        assert sent[1] == {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                }
            ],
        }
        assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


async def test_reasoning_field_kept_apart(dialect: str) -> None:
    with running(dialect) as server:
        server.script(
            Script(text="It is 4.", reasoning="2+2 is 4"), Script(text="It is 4.", reasoning="2+2 is 4")
        )
        async with make_provider(dialect, server) as provider:
            chunks = await collect(provider.stream(HI, model="sim-model"))
            whole = await provider.chat(HI, model="sim-model")
        assert text_of(chunks) == "It is 4." and reasoning_of(chunks) == "2+2 is 4"
        assert whole.content == "It is 4." and whole.reasoning == "2+2 is 4"


async def test_inline_think_split_across_chunks(dialect: str) -> None:
    with running(dialect) as server:
        # Many small pieces: the <think> tags are cut across SSE events.
        server.script(
            Script(text="Final answer.", reasoning="let me think", inline_think=True, pieces=20),
            Script(text="Final answer.", reasoning="let me think", inline_think=True),
        )
        async with make_provider(dialect, server) as provider:
            chunks = await collect(provider.stream(HI, model="sim-model"))
            whole = await provider.chat(HI, model="sim-model")
        assert all("<" not in c.content and "think>" not in c.content for c in chunks)
        assert text_of(chunks) == "Final answer." and reasoning_of(chunks) == "let me think"
        assert whole.content == "Final answer." and whole.reasoning == "let me think"


async def test_image_payload_shape(dialect: str) -> None:
    png = ImagePart.from_bytes(b"\x89PNG\r\n\x1a\nfake", "image/png")
    msg = Message(role="user", content=[TextPart(text="What is this?"), png])
    with running(dialect, model="qwen2.5-vl-7b") as server:
        async with make_provider(dialect, server) as provider:
            assert provider.supports_vision("qwen2.5-vl-7b")
            reply = await provider.chat([msg], model="qwen2.5-vl-7b")
        assert reply.content
        content = server.chat_requests()[0].body["messages"][0]["content"]
        assert content == [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": png.to_data_url()}},
        ]
        assert base64.b64decode(server.options["images_received"][0].split(",", 1)[1]).startswith(b"\x89PNG")


async def test_image_to_a_text_only_model_is_refused_before_sending(dialect: str) -> None:
    msg = Message(role="user", content=[TextPart(text="see"), ImagePart.from_bytes(b"img")])
    # llama-server reports its projector in /props; this one has none, like the table says.
    with running(dialect, vision=False) as server:
        async with make_provider(dialect, server) as provider:
            assert not provider.supports_vision("sim-model")
            with pytest.raises(BadRequestError, match="does not take images"):
                await provider.chat([msg], model="sim-model")
            with pytest.raises(BadRequestError, match="does not take images"):
                await collect(provider.stream([msg], model="sim-model"))
        assert server.chat_requests() == []


async def test_list_models(dialect: str) -> None:
    with running(dialect, models=["qwen2.5-7b", "qwen2.5-vl-3b"]) as server:
        async with make_provider(dialect, server) as provider:
            models = await provider.list_models()
    assert [m.id for m in models] == ["qwen2.5-7b", "qwen2.5-vl-3b"]
    first = models[0]
    assert first.provider == dialect
    if dialect == "vllm":
        assert first.context_length == 32768 and first.loaded is None
    elif dialect == "llamacpp":
        assert first.context_length == 32768 and first.size_bytes == 4683074048
    else:  # LM Studio REST v0: state and context
        assert first.loaded is True and models[1].loaded is False
        assert first.context_length == 8192 and models[1].context_length == 131072
        assert "vision" in models[1].capabilities and first.quantization == "Q4_K_M"


async def test_text_tool_fallback_when_server_rejects_tools(dialect: str) -> None:
    reply_text = '```json\n{"name": "get_weather", "arguments": {"city": "Lima"}}\n```'
    with running(dialect, tools=False) as server:
        server.script(Script(text=reply_text), Script(text=reply_text))
        async with make_provider(dialect, server) as provider:
            whole = await provider.chat(HI, model="sim-model", tools=[WEATHER])
            chunks = await collect(provider.stream(HI, model="sim-model", tools=[WEATHER]))
        assert whole.tool_calls is not None and whole.tool_calls[0].arguments == {"city": "Lima"}
        assert whole.metadata["tool_text_fallback"] is True
        assert chunks[-1].tool_calls is not None and chunks[-1].tool_calls[0].name == "get_weather"
        bodies = [r.body for r in server.chat_requests()]
        # chat: rejected once with tools, then once without; stream: remembered, no tools at all
        assert ["tools" in b for b in bodies] == [True, False, False]
        assert "get_weather" in bodies[1]["messages"][0]["content"]

