"""Anthropic Messages protocol against the simulator: payloads on the wire, streams, tools,
thinking, usage, keys, model listing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers.cloud_sims import FAST, Sleeps, collect, posts, reasoning_of, text_of
from tests.servers.anthropic import make_server
from tests.servers.base import Script, ScriptedToolCall, SimServer
from victor_gui.errors import MissingAPIKeyError
from victor_gui.providers.protocols.anthropic import AnthropicProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import ImagePart, Message, TextPart, ToolCall, ToolDefinition

KEY = "sk-ant-api03-simulatorkey0001"
MODEL = "claude-sim-4"
WEATHER = ToolDefinition(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture
def server() -> Iterator[SimServer]:
    with make_server(api_key=KEY) as srv:
        yield srv


@pytest.fixture
def provider(server: SimServer) -> AnthropicProvider:
    p = ProviderRegistry.create(
        "anthropic", api_key=KEY, base_url=server.url, retry_policy=FAST, sleep=Sleeps()
    )
    assert isinstance(p, AnthropicProvider)
    return p


async def test_chat_sends_headers_system_and_returns_text(
    server: SimServer, provider: AnthropicProvider
) -> None:
    reply = await provider.chat(
        [
            Message(role="system", content="Be brief."),
            Message(role="system", content="Answer in English."),
            Message(role="user", content="Hi"),
        ],
        model=MODEL,
        temperature=0.2,
        max_tokens=99,
    )
    assert reply.content == "Hello from the simulator."
    assert reply.stop_reason == "stop" and reply.metadata["native_stop_reason"] == "end_turn"
    [req] = posts(server, "/v1/messages")
    assert req.headers["x-api-key"] == KEY
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.body == {
        "model": MODEL,
        "max_tokens": 99,
        "temperature": 0.2,
        "system": "Be brief.\n\nAnswer in English.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }
    await provider.close()


async def test_stream_text_and_final_chunk(server: SimServer, provider: AnthropicProvider) -> None:
    server.script(Script(text="Streaming works fine here.", pieces=4))
    chunks, error = await collect(provider.stream([Message(role="user", content="Hi")], model=MODEL))
    assert error is None
    assert text_of(chunks) == "Streaming works fine here."
    final = chunks[-1]
    assert final.is_final and final.stop_reason == "stop"
    assert sum(1 for c in chunks if c.is_final) == 1
    assert final.usage is not None and final.usage.prompt_tokens == 12 and final.usage.completion_tokens == 4
    assert final.timings is not None and final.timings.ttft_ms is not None and final.timings.ttft_ms >= 0
    assert final.timings.tokens_per_second is not None
    assert posts(server)[0].body["stream"] is True
    await provider.close()


async def test_streamed_tool_call_and_result_round_trip(
    server: SimServer, provider: AnthropicProvider
) -> None:
    server.script(
        Script(
            text="Let me check.",
            tool_calls=[ScriptedToolCall("get_weather", {"city": "Oslo"}, id="toolu_01A")],
        )
    )
    history = [Message(role="user", content="Weather in Oslo?")]
    chunks, error = await collect(provider.stream(history, model=MODEL, tools=[WEATHER]))
    assert error is None
    deltas = [d for c in chunks for d in (c.tool_call_deltas or [])]
    assert deltas[0].id == "toolu_01A" and deltas[0].name == "get_weather" and deltas[0].index == 0
    assert "".join(d.arguments_delta for d in deltas) == '{"city": "Oslo"}'
    final = chunks[-1]
    assert final.stop_reason == "tool_calls"
    assert final.tool_calls == [ToolCall(id="toolu_01A", name="get_weather", arguments={"city": "Oslo"})]
    assert posts(server)[0].body["tools"] == [
        {"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER.parameters}
    ]

    history += [
        Message(role="assistant", content=text_of(chunks), tool_calls=final.tool_calls),
        Message(role="tool", tool_call_id="toolu_01A", name="get_weather", content="12 °C, rain"),
    ]
    reply = await provider.chat(history, model=MODEL, tools=[WEATHER])
    assert reply.content
    assert posts(server)[1].body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "12 °C, rain"}],
        },
    ]
    await provider.close()


async def test_consecutive_tool_results_merge_into_one_user_turn(
    server: SimServer, provider: AnthropicProvider
) -> None:
    calls = [
        ToolCall(id="call_a", name="f", arguments={}),
        ToolCall(id="call_b", name="g", arguments={"x": 1}),
    ]
    history = [
        Message(role="user", content="go"),
        Message(role="assistant", tool_calls=calls),
        Message(role="tool", tool_call_id="call_b", content="B"),
        Message(role="tool", tool_call_id="call_a", content="A"),
        Message(role="user", content="and now?"),
    ]
    await provider.chat(history, model=MODEL)
    messages = posts(server)[0].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_b", "content": "B"},
        {"type": "tool_result", "tool_use_id": "call_a", "content": "A"},
        {"type": "text", "text": "and now?"},
    ]
    await provider.close()


async def test_foreign_ids_sanitised_consistently_and_orphans_repaired(
    server: SimServer, provider: AnthropicProvider
) -> None:
    history = [
        Message(role="user", content="go"),
        Message(
            role="assistant",
            tool_calls=[
                ToolCall(id="functions.search:0", name="search"),
                ToolCall(id="call.two", name="read"),
            ],
        ),
        Message(role="tool", tool_call_id="functions.search:0", content="found"),
        Message(role="tool", tool_call_id="ghost", name="other", content="stray output"),
    ]
    await provider.chat(history, model=MODEL)  # the simulator answers 400 if pairing or ids are wrong
    messages = posts(server)[0].body["messages"]
    use_ids = [b["id"] for b in messages[1]["content"] if b["type"] == "tool_use"]
    result_ids = [b["tool_use_id"] for b in messages[2]["content"] if b["type"] == "tool_result"]
    assert sorted(use_ids) == sorted(result_ids)
    assert all(c.isalnum() or c in "_-" for i in use_ids for c in i)
    assert use_ids[0].startswith("functions_search_0_")
    texts = [b["text"] for b in messages[2]["content"] if b["type"] == "text"]
    assert any("stray output" in t for t in texts)  # the orphan result survives as text
    await provider.close()


async def test_thinking_kept_apart_from_content(server: SimServer, provider: AnthropicProvider) -> None:
    server.script(
        Script(text="The answer is 4.", reasoning="2+2 is 4."), Script(text="Four.", reasoning="Simple sum.")
    )
    chunks, _ = await collect(
        provider.stream(
            [Message(role="user", content="2+2?")],
            model=MODEL,
            thinking={"type": "enabled", "budget_tokens": 2048},
        )
    )
    assert reasoning_of(chunks) == "2+2 is 4."
    assert text_of(chunks) == "The answer is 4."
    body = posts(server)[0].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "temperature" not in body  # only the default temperature is allowed with thinking
    reply = await provider.chat([Message(role="user", content="2+2?")], model=MODEL, thinking=1024)
    assert reply.reasoning == "Simple sum." and reply.content == "Four."
    assert posts(server)[1].body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    await provider.close()


async def test_usage_reports_prompt_cache_tokens() -> None:
    with make_server(api_key=KEY, cache_read=900, cache_creation=100) as server:
        provider = AnthropicProvider(
            spec=ProviderRegistry.spec("anthropic"),
            api_key=KEY,  # type: ignore[arg-type]
            base_url=server.url,
        )
        chunks, _ = await collect(provider.stream([Message(role="user", content="Hi")], model=MODEL))
        usage = chunks[-1].usage
        assert usage is not None
        assert (usage.cached_tokens, usage.cache_creation_tokens, usage.prompt_tokens) == (900, 100, 1012)
        reply = await provider.chat([Message(role="user", content="Hi")], model=MODEL)
        assert reply.usage is not None and reply.usage.cached_tokens == 900
        await provider.close()


async def test_images_become_base64_image_blocks(server: SimServer, provider: AnthropicProvider) -> None:
    image = ImagePart.from_bytes(b"\x89PNG\r\n\x1a\nfake", "image/png")
    await provider.chat([Message(role="user", content=[TextPart(text="What is this?"), image])], model=MODEL)
    content = posts(server)[0].body["messages"][0]["content"]
    assert content[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": image.data},
    }
    await provider.close()


async def test_missing_key_fails_at_request_time_without_io(
    server: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    provider = ProviderRegistry.create("anthropic", base_url=server.url)  # creation does not fail
    with pytest.raises(MissingAPIKeyError):
        await provider.chat([Message(role="user", content="Hi")], model=MODEL)
    with pytest.raises(MissingAPIKeyError):
        await collect_raise(provider)
    assert server.requests == []
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)  # a key set later is found by the next request
    assert (await provider.chat([Message(role="user", content="Hi")], model=MODEL)).content
    await provider.close()


async def collect_raise(provider: object) -> None:
    async for _ in provider.stream([Message(role="user", content="Hi")], model=MODEL):  # type: ignore[attr-defined]
        pass


async def test_wrong_key_is_an_auth_error_in_anthropic_shape(server: SimServer) -> None:
    from victor_gui.errors import ProviderAuthError

    provider = ProviderRegistry.create("anthropic", api_key="sk-ant-wrong-000000000", base_url=server.url)
    with pytest.raises(ProviderAuthError) as info:
        await provider.chat([Message(role="user", content="Hi")], model=MODEL)
    assert info.value.status_code == 401 and "invalid x-api-key" in info.value.message
    assert "sk-ant-wrong-000000000" not in str(info.value)
    await provider.close()


async def test_list_models(server: SimServer, provider: AnthropicProvider) -> None:
    server.models.append("claude-sim-haiku")
    models = await provider.list_models()
    assert [m.id for m in models] == [MODEL, "claude-sim-haiku"]
    assert all(m.provider == "anthropic" for m in models)
    assert [r.path for r in server.requests] == ["/v1/models?limit=1000"]
    await provider.close()


async def test_history_starting_with_the_model_gets_a_user_turn_first(
    server: SimServer, provider: AnthropicProvider
) -> None:
    from victor_gui.providers.protocols.anthropic_wire import CONTINUED

    history = [
        Message(role="system", content="sys"),
        Message(role="assistant", content="Earlier answer."),
        Message(role="user", content="More?"),
    ]
    await provider.chat(history, model=MODEL)
    messages = posts(server)[0].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == [{"type": "text", "text": CONTINUED}]
    await provider.close()


async def test_signed_thinking_replayed_in_a_tool_loop(
    server: SimServer, provider: AnthropicProvider
) -> None:
    """With thinking on, the thinking block (and its signature) that preceded a tool_use goes
    back with it; the simulator rejects the follow-up otherwise, as the API does."""
    server.script(
        Script(
            text="",
            reasoning="I should look.",
            tool_calls=[ScriptedToolCall("get_weather", {"city": "Rome"})],
        )
    )
    history = [Message(role="user", content="Weather in Rome?")]
    chunks, error = await collect(provider.stream(history, model=MODEL, tools=[WEATHER], thinking=2048))
    assert error is None
    final = chunks[-1]
    assert final.metadata["thinking_blocks"][0]["signature"]
    history += [
        Message(role="assistant", content="", reasoning=reasoning_of(chunks), tool_calls=final.tool_calls),
        Message(role="tool", tool_call_id=final.tool_calls[0].id, content="sunny"),  # type: ignore[index]
    ]
    reply = await provider.chat(history, model=MODEL, tools=[WEATHER], thinking=2048)
    assert reply.content
    assistant = posts(server)[1].body["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "I should look.", "signature": "EqQBCgIYAhIM"}
    assert assistant[1]["type"] == "tool_use"
    # Without thinking the blocks are not sent (they would be ignored at best).
    await provider.chat(history, model=MODEL, tools=[WEATHER])
    assert posts(server)[2].body["messages"][1]["content"][0]["type"] == "tool_use"
    await provider.close()
