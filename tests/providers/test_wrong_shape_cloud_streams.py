"""Cloud and TGI stream events that are not JSON objects (issue 16, finding 8): malformed JSON,
arrays nested 100,000 deep, a bare list. Our own loopback server answers every path with the
stream; each must end in InvalidResponseError, never JSONDecodeError, RecursionError or
AttributeError escaping the adapter."""

from __future__ import annotations

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
