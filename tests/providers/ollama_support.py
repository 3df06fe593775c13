"""Shared helpers for the Ollama provider tests: a provider pointed at a simulator, with fast
retries so retry counts can be asserted without slow backoff."""

from __future__ import annotations

from typing import Any

from tests.servers.base import RecordedRequest, SimServer
from victor_gui.providers.catalog import find_spec
from victor_gui.providers.protocols.ollama import OllamaProvider
from victor_gui.providers.resilience import RetryPolicy
from victor_gui.providers.types import Message, StreamChunk

PLAIN = {"name": "plain", "capabilities": ("completion",)}  # no tools, no thinking, no vision


def make_provider(url: str | None, *, retries: int = 2, **kwargs: Any) -> OllamaProvider:
    provider = OllamaProvider(spec=find_spec("ollama"), base_url=url, max_retries=retries, **kwargs)
    provider.retry_policy = RetryPolicy(max_retries=retries, base_delay=0.01, jitter=0.0)
    return provider


def user(text: str = "hi") -> list[Message]:
    return [Message(role="user", content=text)]


async def collect(provider: OllamaProvider, messages: list[Message] | None = None, **kwargs: Any,
                  ) -> list[StreamChunk]:
    kwargs.setdefault("model", "sim-model")
    return [chunk async for chunk in provider.stream(messages or user(), **kwargs)]


def chat_bodies(server: SimServer) -> list[dict[str, Any]]:
    return [r.body for r in server.chat_requests()]


def last_chat(server: SimServer) -> RecordedRequest:
    return server.chat_requests()[-1]
