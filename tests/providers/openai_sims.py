"""Shared helpers for the OpenAI-compatible protocol tests: the three dialect simulators, a
fast retry policy and a recording sleep (so Retry-After is checked without waiting)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from tests.servers import llamacpp, lmstudio, vllm
from tests.servers.base import SimServer
from victor_gui.providers.protocols.openai_compat import OpenAICompatProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.resilience import RetryPolicy
from victor_gui.providers.types import Message, StreamChunk

FACTORIES = {"llamacpp": llamacpp.make_server, "vllm": vllm.make_server, "lmstudio": lmstudio.make_server}
DIALECTS = tuple(FACTORIES)
FAST = RetryPolicy(max_retries=2, base_delay=0.0, max_delay=0.0, jitter=0.0)
HI = [Message(role="user", content="hi")]


class RecordingSleep:
    """An injectable ``sleep`` that records the delays asked for and does not wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@contextmanager
def running(dialect: str, **options: Any) -> Iterator[SimServer]:
    server = FACTORIES[dialect](**options).start()
    try:
        yield server
    finally:
        server.stop()


def make_provider(
    dialect: str, server: SimServer, *, sleep: RecordingSleep | None = None, **kwargs: Any
) -> OpenAICompatProvider:
    kwargs.setdefault("retry_policy", FAST)
    provider = ProviderRegistry.create(
        dialect, base_url=server.url + "/v1", sleep=sleep or RecordingSleep(), **kwargs
    )
    assert isinstance(provider, OpenAICompatProvider)
    return provider


async def collect(stream: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    return [chunk async for chunk in stream]


def text_of(chunks: list[StreamChunk]) -> str:
    return "".join(c.content for c in chunks)


def reasoning_of(chunks: list[StreamChunk]) -> str:
    return "".join(c.reasoning for c in chunks)
