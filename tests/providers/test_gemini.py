"""Gemini (Google AI) protocol against the simulator: payloads, streams, tools paired by name and
order, thoughts, usage, safety settings, content filter, key handling, models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers.cloud_sims import FAST, Sleeps, collect, posts, reasoning_of, text_of
from tests.servers.base import Script, ScriptedToolCall, SimServer
from tests.servers.gemini import make_server
from victor_gui.errors import BadRequestError, ContentFilterError, MissingAPIKeyError, ProviderAuthError
from victor_gui.providers.protocols.gemini import GeminiProvider
from victor_gui.providers.protocols.gemini_wire import clean_schema
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import ImagePart, Message, TextPart, ToolCall, ToolDefinition

KEY = "AIzaSyD-simulator-key-000001"
MODEL = "gemini-sim-flash"
WEATHER = ToolDefinition(
    name="get_weather",
    description="Weather for a city",
    parameters={
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "city": {"type": "string", "default": "Oslo"},
            "unit": {"type": ["string", "null"], "enum": ["C", "F"]},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
)


@pytest.fixture
def server() -> Iterator[SimServer]:
    with make_server(api_key=KEY) as srv:
        yield srv


@pytest.fixture
def provider(server: SimServer) -> GeminiProvider:
    p = ProviderRegistry.create("google", api_key=KEY, base_url=server.url, retry_policy=FAST, sleep=Sleeps())
    assert isinstance(p, GeminiProvider)
    return p


async def test_chat_payload_key_header_and_safety(server: SimServer, provider: GeminiProvider) -> None:
    reply = await provider.chat(
        [Message(role="system", content="Be brief."), Message(role="user", content="Hi")],
        model=MODEL,
        temperature=0.3,
        max_tokens=77,
    )
    assert reply.content == "Hello from the simulator." and reply.stop_reason == "stop"
    [req] = posts(server)
    assert req.path == f"/v1beta/models/{MODEL}:generateContent"  # no key in the URL
    assert req.headers["x-goog-api-key"] == KEY
    assert req.body == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.3, "maxOutputTokens": 77},
        "safetySettings": [
            {"category": c, "threshold": "BLOCK_NONE"}
            for c in (
                "HARM_CATEGORY_HARASSMENT",
                "HARM_CATEGORY_HATE_SPEECH",
                "HARM_CATEGORY_SEXUALLY_EXPLICIT",
                "HARM_CATEGORY_DANGEROUS_CONTENT",
            )
        ],
    }
    await provider.close()


@pytest.mark.parametrize(
    ("level", "threshold"),
    [
        ("block_none", "BLOCK_NONE"),
        ("off", "OFF"),
        ("block_few", "BLOCK_ONLY_HIGH"),
        ("block_some", "BLOCK_MEDIUM_AND_ABOVE"),
        ("block_most", "BLOCK_LOW_AND_ABOVE"),
    ],
)
async def test_safety_level_maps_to_safety_settings(server: SimServer, level: str, threshold: str) -> None:
    provider = ProviderRegistry.create("google", api_key=KEY, base_url=server.url, safety_level=level)
    await provider.chat([Message(role="user", content="Hi")], model=MODEL)
    settings = posts(server)[0].body["safetySettings"]
    assert len(settings) == 4 and {s["threshold"] for s in settings} == {threshold}
    await provider.close()


def test_unknown_safety_level_is_refused_at_creation() -> None:
    with pytest.raises(ValueError, match="safety_level"):
        ProviderRegistry.create("google", api_key=KEY, safety_level="paranoid")


async def test_stream_with_thoughts_tool_call_and_round_trip(
    server: SimServer, provider: GeminiProvider
) -> None:
    server.script(
        Script(
            text="Checking the weather.",
            reasoning="Need the tool.",
            tool_calls=[
                ScriptedToolCall("get_weather", {"city": "Oslo"}),
                ScriptedToolCall("get_weather", {"city": "Bergen"}),
            ],
        )
    )
    history = [Message(role="user", content="Weather in Oslo and Bergen?")]
    chunks, error = await collect(provider.stream(history, model=MODEL, tools=[WEATHER], thinking=True))
    assert error is None
    assert reasoning_of(chunks) == "Need the tool." and text_of(chunks) == "Checking the weather."
    assert "Need the tool." not in text_of(chunks)
    deltas = [d for c in chunks for d in (c.tool_call_deltas or [])]
    assert [(d.index, d.name, d.arguments_delta) for d in deltas] == [
        (0, "get_weather", '{"city": "Oslo"}'),
        (1, "get_weather", '{"city": "Bergen"}'),
    ]
    final = chunks[-1]
    assert final.stop_reason == "tool_calls" and final.tool_calls is not None
    # Gemini sends no ids: stable ones are synthesised, the same in the deltas and the final chunk.
    assert [c.id for c in final.tool_calls] == [d.id for d in deltas]
    assert len({c.id for c in final.tool_calls}) == 2
    first = posts(server)[0]
    assert first.path == f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    assert first.body["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    assert first.body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string"},
                            "unit": {"type": "string", "nullable": True, "enum": ["C", "F"]},
                        },
                        "required": ["city"],
                    },
                }
            ]
        }
    ]

    oslo, bergen = final.tool_calls
    history += [
        Message(role="assistant", content=text_of(chunks), tool_calls=final.tool_calls),
        # results out of order: Gemini pairs by position, so they are re-ordered to the calls
        Message(role="tool", tool_call_id=bergen.id, content='{"temp": 9}'),
        Message(role="tool", tool_call_id=oslo.id, content="12 C"),
    ]
    await provider.chat(history, model=MODEL, tools=[WEATHER])
    assert posts(server)[1].body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Oslo and Bergen?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Checking the weather."},
                # This server signs nothing; a model not known to be 2.x gets Google's stand-in.
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                 "thoughtSignature": "skip_thought_signature_validator"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Bergen"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"result": "12 C"}}},
                {"functionResponse": {"name": "get_weather", "response": {"temp": 9}}},
            ],
        },
    ]
    await provider.close()


async def test_usage_with_cached_and_thought_tokens() -> None:
    with make_server(api_key=KEY, cached=800) as server:
        provider = ProviderRegistry.create("google", api_key=KEY, base_url=server.url)
        server.script(Script(text="Sure.", reasoning="three word thought"))
        reply = await provider.chat([Message(role="user", content="Hi")], model=MODEL)
        assert reply.reasoning == "three word thought" and reply.content == "Sure."
        assert reply.usage is not None
        assert (reply.usage.cached_tokens, reply.usage.reasoning_tokens) == (800, 3)
        assert reply.usage.completion_tokens == reply.usage.reasoning_tokens + 1
        chunks, _ = await collect(provider.stream([Message(role="user", content="Hi")], model=MODEL))
        assert chunks[-1].usage is not None and chunks[-1].usage.cached_tokens == 800
        assert chunks[-1].timings is not None and chunks[-1].timings.ttft_ms is not None
        await provider.close()


async def test_images_become_inline_data(server: SimServer, provider: GeminiProvider) -> None:
    image = ImagePart.from_bytes(b"\xff\xd8\xff\xe0jpeg", "image/jpeg")
    await provider.chat([Message(role="user", content=[TextPart(text="What is it?"), image])], model=MODEL)
    parts = posts(server)[0].body["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/jpeg", "data": image.data}}
    await provider.close()


@pytest.mark.parametrize("finish", ["SAFETY", "RECITATION"])
async def test_filtered_finish_is_content_filter_error(finish: str) -> None:
    with make_server(api_key=KEY, finish_reason=finish) as server:
        provider = ProviderRegistry.create("google", api_key=KEY, base_url=server.url)
        with pytest.raises(ContentFilterError, match=finish):
            await provider.chat([Message(role="user", content="Hi")], model=MODEL)
        server.script(Script(text="partial answer", pieces=2))
        chunks, error = await collect(provider.stream([Message(role="user", content="Hi")], model=MODEL))
        assert isinstance(error, ContentFilterError)
        assert error.partial_content == "partial answer" == text_of(chunks)
        await provider.close()


async def test_bad_and_missing_key(server: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    provider = ProviderRegistry.create("google", base_url=server.url)
    with pytest.raises(MissingAPIKeyError):
        await provider.chat([Message(role="user", content="Hi")], model=MODEL)
    assert server.requests == []
    wrong = ProviderRegistry.create("google", api_key="AIzaSyWRONG-key-999999", base_url=server.url)
    with pytest.raises(ProviderAuthError) as info:  # Google answers a bad key with 400 API_KEY_INVALID
        await wrong.chat([Message(role="user", content="Hi")], model=MODEL)
    assert info.value.status_code == 400 and "AIzaSyWRONG" not in str(info.value)
    await wrong.close()


async def test_tool_without_arguments_omits_parameters(server: SimServer, provider: GeminiProvider) -> None:
    await provider.chat(
        [Message(role="user", content="Time?")],
        model=MODEL,
        tools=[ToolDefinition(name="now", description="current time")],
    )
    assert posts(server)[0].body["tools"] == [
        {"functionDeclarations": [{"name": "now", "description": "current time"}]}
    ]
    await provider.close()


def test_clean_schema_inlines_refs_and_drops_unsupported() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "Pt": {
                "type": "object",
                "title": "Pt",
                "properties": {"x": {"type": "number", "format": "double", "examples": [1]}},
            }
        },
        "properties": {
            "p": {"$ref": "#/$defs/Pt"},
            "u": {"type": "string", "format": "uri"},
            "k": {"const": "fixed"},
            "n": {"type": "integer", "exclusiveMinimum": 0},
        },
        "required": ["p", "missing"],
    }
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {
            "p": {
                "type": "object",
                "title": "Pt",
                "properties": {"x": {"type": "number", "format": "double"}},
            },
            "u": {"type": "string"},
            "k": {"enum": ["fixed"]},
            "n": {"type": "integer"},
        },
        "required": ["p"],
    }


async def test_list_models_keeps_generate_content_models(server: SimServer, provider: GeminiProvider) -> None:
    models = await provider.list_models()
    assert [m.id for m in models] == [MODEL]
    assert models[0].context_length == 1048576
    assert server.requests[0].headers["x-goog-api-key"] == KEY and "key=" not in server.requests[0].path
    await provider.close()


async def test_orphan_call_gets_a_synthetic_response(server: SimServer, provider: GeminiProvider) -> None:
    history = [
        Message(role="user", content="go"),
        Message(role="assistant", tool_calls=[ToolCall(id="c1", name="f"), ToolCall(id="c2", name="g")]),
        Message(role="tool", tool_call_id="c1", content="done"),
        Message(role="user", content="next"),
    ]
    await provider.chat(history, model=MODEL)  # the simulator rejects unequal call/response counts
    contents = posts(server)[0].body["contents"]
    responses = [p["functionResponse"]["name"] for p in contents[2]["parts"]]
    assert responses == ["f", "g"]
    await provider.close()


async def test_thought_signatures_go_back_with_their_calls() -> None:
    """Gemini 3 signs function calls and rejects a history that drops the signature."""
    with make_server(api_key=KEY, signatures=True) as server:
        provider = ProviderRegistry.create("google", api_key=KEY, base_url=server.url)
        server.script(Script(text="", tool_calls=[ScriptedToolCall("get_weather", {"city": "Oslo"})]))
        chunks, error = await collect(
            provider.stream([Message(role="user", content="Oslo?")], model=MODEL, tools=[WEATHER])
        )
        assert error is None
        calls = chunks[-1].tool_calls
        assert calls
        history = [
            Message(role="user", content="Oslo?"),
            Message(role="assistant", tool_calls=calls),
            Message(role="tool", tool_call_id=calls[0].id, content="rain"),
        ]
        await provider.chat(history, model=MODEL, tools=[WEATHER])  # 400 without the signature
        part = posts(server)[1].body["contents"][1]["parts"][0]
        assert part["thoughtSignature"].startswith("CiQB0e2Kb")
        await provider.close()


async def test_calls_without_a_signature_get_googles_stand_in() -> None:
    """Calls Gemini never signed (made by another provider, or signed before the app restarted
    and forgot) would get a 400 from Gemini 3; they carry Google's documented stand-in instead,
    on the first call of each turn only, and never for 2.x models, which do not validate."""
    from victor_gui.providers.protocols.gemini_wire import UNSIGNED_CALL_SIGNATURE

    with make_server(api_key=KEY, signatures=True) as server:
        server.models = ["gemini-3-pro-preview", "gemini-2.5-flash"]
        provider = ProviderRegistry.create("google", api_key=KEY, base_url=server.url)
        history = [
            Message(role="user", content="Oslo and Bergen?"),
            Message(role="assistant", tool_calls=[
                ToolCall(id="call_a", name="get_weather", arguments={"city": "Oslo"}),
                ToolCall(id="call_b", name="get_weather", arguments={"city": "Bergen"}),
            ]),
            Message(role="tool", tool_call_id="call_a", content="rain"),
            Message(role="tool", tool_call_id="call_b", content="sun"),
        ]
        await provider.chat(history, model="gemini-3-pro-preview", tools=[WEATHER])  # accepted
        parts = posts(server)[-1].body["contents"][1]["parts"]
        assert parts[0]["thoughtSignature"] == UNSIGNED_CALL_SIGNATURE
        assert "thoughtSignature" not in parts[1]
        # A 2.x model does not validate signatures: nothing is invented for it.
        server.options["signatures"] = False
        await provider.chat(history, model="gemini-2.5-flash", tools=[WEATHER])
        parts = posts(server)[-1].body["contents"][1]["parts"]
        assert all("thoughtSignature" not in p for p in parts)
        # Without the stand-in the simulator refuses, as Gemini 3 does.
        server.options["signatures"] = True
        with pytest.raises(BadRequestError, match="thought_signature"):
            await provider.chat(history, model="gemini-2.5-flash", tools=[WEATHER])
        await provider.close()


@pytest.mark.parametrize(("model", "validates"), [
    ("gemini-3-pro-preview", True), ("models/gemini-3-flash", True), ("gemini-flash-latest", True),
    ("gemini-2.5-pro", False), ("gemini-2.0-flash", False), ("gemini-1.5-flash", False),
    ("gemma-3-27b-it", False),
])
def test_which_models_validate_call_signatures(model: str, validates: bool) -> None:
    from victor_gui.providers.protocols.gemini_wire import needs_call_signatures

    assert needs_call_signatures(model) is validates
