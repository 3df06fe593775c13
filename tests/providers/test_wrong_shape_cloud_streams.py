"""Cloud and TGI stream events that are not JSON objects (issue 16, finding 8): malformed JSON,
arrays nested 100,000 deep, a bare list. Our own loopback server answers every path with the
stream; each must end in InvalidResponseError, never JSONDecodeError, RecursionError or
AttributeError escaping the adapter."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.providers.cloud_sims import Sleeps
from tests.servers.hostile import reply, serving
from victor_gui.errors import InvalidResponseError
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message

USER = [Message(role="user", content="hi")]
DEEP = "[" * 100_000 + "]" * 100_000
BODIES = {"malformed": "{not json", "deep": DEEP, "list": "[1, 2]"}
PROVIDERS: dict[str, dict[str, Any]] = {
    "anthropic": {"model": "claude-sim-4", "api_key": "sk-ant-test-0123456789"},
    "google": {"model": "gemini-sim-flash", "api_key": "AIza-test-0123456789"},
    "hf": {"model": "tgi-model", "api_key": "hf_test0123456789", "suffix": "/v1"},
}


@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize("name", list(PROVIDERS))
async def test_a_stream_event_that_is_not_an_object(name: str, body: str) -> None:
    options = dict(PROVIDERS[name])
    model = options.pop("model")
    suffix = options.pop("suffix", "")
    stream = f"data: {BODIES[body]}\n\n".encode()
    with serving({}, fallback=reply(stream, Content_Type="text/event-stream")) as server:
        provider = ProviderRegistry.create(name, base_url=server.url + suffix, sleep=Sleeps(), max_retries=0,
                                           **options)
        try:
            with pytest.raises(InvalidResponseError):
                async for _ in provider.stream(USER, model=model):
                    pass
        finally:
            await provider.close()


FIELD_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("anthropic", {"type": "message_start", "message": "x"}, "message is a string, not an object"),
    ("anthropic", {"type": "content_block_delta", "index": 0, "delta": "x"},
     "delta is a string, not an object"),
    ("anthropic", {"type": "content_block_delta", "index": "a", "delta": {}}, "index is a string"),
    ("google", {"candidates": "x"}, "candidates is a string, not a list"),
    ("google", {"candidates": [5]}, "candidates[0] is a number, not an object"),
    ("google", {"candidates": [{"content": {"parts": "x"}}]}, "candidates[0].content.parts is a string"),
    ("google", {"candidates": [{"content": {"parts": [{"functionCall": "x"}]}}]},
     "candidates[0].content.parts[0].functionCall is a string, not an object"),
]


@pytest.mark.parametrize("case", FIELD_CASES, ids=[f"{c[0]}:{json.dumps(c[1])[:40]}" for c in FIELD_CASES])
async def test_a_stream_event_field_of_the_wrong_type(case: tuple[str, dict[str, Any], str]) -> None:
    name, event, expected = case
    options = dict(PROVIDERS[name])
    model = options.pop("model")
    options.pop("suffix", None)
    stream = f"data: {json.dumps(event)}\n\n".encode()
    with serving({}, fallback=reply(stream, Content_Type="text/event-stream")) as server:
        provider = ProviderRegistry.create(name, base_url=server.url, sleep=Sleeps(), max_retries=0,
                                           **options)
        try:
            with pytest.raises(InvalidResponseError) as caught:
                async for _ in provider.stream(USER, model=model):
                    pass
        finally:
            await provider.close()
    assert expected in caught.value.message, caught.value.message


USAGE_CASES: list[tuple[str, list[dict[str, Any]]]] = [
    ("anthropic", [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
                   {"type": "message_delta", "delta": {}, "usage": "x"}, {"type": "message_stop"}]),
    ("anthropic", [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
                   {"type": "message_delta", "delta": {}, "usage": {"output_tokens": "5"}},
                   {"type": "message_stop"}]),
    ("google", [{"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
                 "usageMetadata": "x"}]),
    ("google", [{"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
                 "usageMetadata": {"promptTokenCount": 1e300}}]),
]


@pytest.mark.parametrize("case", USAGE_CASES, ids=[f"{c[0]}-{n}" for n, c in enumerate(USAGE_CASES)])
async def test_a_wrong_usage_count_keeps_the_reply(case: tuple[str, list[dict[str, Any]]]) -> None:
    """Usage only describes a reply: a count of the wrong type or size is unknown (0), and the text
    the person saw is kept, never turned into an error (issue 16, finding 2)."""
    name, events = case
    options = dict(PROVIDERS[name])
    model = options.pop("model")
    options.pop("suffix", None)
    stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()
    with serving({}, fallback=reply(stream, Content_Type="text/event-stream")) as server:
        provider = ProviderRegistry.create(name, base_url=server.url, sleep=Sleeps(), max_retries=0,
                                           **options)
        try:
            chunks = [chunk async for chunk in provider.stream(USER, model=model)]
        finally:
            await provider.close()
    assert "".join(c.content or "" for c in chunks) == "hi"
    usages = [c.usage for c in chunks if c.usage is not None]
    assert all(0 <= u.prompt_tokens <= 2**53 and 0 <= u.completion_tokens <= 2**53 for u in usages)
