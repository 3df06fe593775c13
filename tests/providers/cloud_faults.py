"""The fault matrix every cloud protocol is held to, written once and run per protocol.

Each protocol's test module gives a simulator factory, a provider factory and the error type it
expects per fault; the checks here count the requests the simulator received to prove retries
happen before output and never after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.providers.cloud_sims import Sleeps, collect, posts, text_of, wait_for
from tests.servers.base import Fault, Script, SimServer
from victor_gui.errors import (
    ContextLengthExceededError,
    InvalidResponseError,
    ModelNotFoundError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.resilience import RetryPolicy
from victor_gui.providers.types import Message

# Faults answered before any output: (error type, retried?)
HTTP_FAULTS: dict[str, tuple[type[ProviderError], bool]] = {
    Fault.UNAUTHORIZED: (ProviderAuthError, False),
    Fault.UNKNOWN_MODEL: (ModelNotFoundError, False),
    Fault.RATE_LIMIT: (ProviderRateLimitError, True),
    Fault.SERVER_ERROR: (ProviderServerError, True),
    Fault.LOADING: (ProviderServerError, True),
    Fault.HTML: (InvalidResponseError, False),
    Fault.CONTEXT_OVERFLOW: (ContextLengthExceededError, False),
}
# Faults after two pieces of streamed output: never retried, partial text kept.
MID_FAULTS: dict[str, type[ProviderError]] = {
    Fault.TRUNCATED: ProviderConnectionError,
    Fault.MIDSTREAM_ERROR: ProviderServerError,
    Fault.MALFORMED: InvalidResponseError,
    Fault.STALL: ProviderTimeoutError,
}
MAX_RETRIES = 2
HI = [Message(role="user", content="Hi")]


def fault_options(sleep: Sleeps | None = None) -> dict[str, Any]:
    """Provider options for the matrix: a short timeout so a stall fails fast, recorded sleeps
    instead of real ones, and ``MAX_RETRIES`` retries without backoff."""
    return {
        "timeout": 0.4,
        "sleep": sleep if sleep is not None else Sleeps(),
        "retry_policy": RetryPolicy(max_retries=MAX_RETRIES, base_delay=0.0, jitter=0.0),
    }


@dataclass
class Harness:
    server: SimServer
    provider: BaseProvider
    model: str
    path: str  # fragment of the generation route, for counting requests

    def count(self) -> int:
        return len(posts(self.server, self.path))


async def http_fault(
    h: Harness,
    fault: str,
    *,
    stream: bool,
    expected: type[ProviderError] | None = None,
    retried: bool | None = None,
) -> ProviderError:
    want, again = HTTP_FAULTS[fault]
    want = expected or want
    again = again if retried is None else retried
    h.server.script(Script(fault=fault, repeat=10))
    if stream:
        chunks, error = await collect(h.provider.stream(HI, model=h.model))
        assert chunks == []
    else:
        with pytest.raises(ProviderError) as info:
            await h.provider.chat(HI, model=h.model)
        error = info.value
    assert type(error) is want, f"{fault}: got {type(error).__name__}: {error}"
    assert h.count() == (1 + MAX_RETRIES if again else 1), f"{fault}: {h.count()} requests"
    return error  # type: ignore[return-value]


async def mid_fault(h: Harness, fault: str, *, expected: type[ProviderError] | None = None) -> ProviderError:
    want = expected or MID_FAULTS[fault]
    h.server.stall_seconds = 1.0
    script = Script(text="one two three four five six", pieces=6, fail_after=2, fault=fault, repeat=10)
    h.server.script(script)
    delivered = "".join(script.text_pieces()[:2])
    chunks, error = await collect(h.provider.stream(HI, model=h.model))
    assert type(error) is want, f"{fault}: got {type(error).__name__}: {error}"
    assert text_of(chunks) == delivered
    assert isinstance(error, ProviderError) and error.partial_content == delivered
    assert not any(c.is_final for c in chunks)
    assert h.count() == 1, "a stream that delivered output must never be sent again"
    return error


async def stall_before_output(h: Harness) -> None:
    h.server.stall_seconds = 1.0
    h.server.script(Script(fault=Fault.STALL, fail_after=0, repeat=10))
    chunks, error = await collect(h.provider.stream(HI, model=h.model))
    assert chunks == [] and type(error) is ProviderTimeoutError
    # A silent server is asked once more, not MAX_RETRIES more times (each try waits it out).
    assert h.count() == 1 + min(MAX_RETRIES, RetryPolicy().max_timeout_retries)


async def truncated_chat_is_retried(h: Harness) -> None:
    h.server.script(Script(fault=Fault.TRUNCATED))
    reply = await h.provider.chat(HI, model=h.model)
    assert reply.content == h.server.default_script.text
    assert h.count() == 2


async def malformed_chat(h: Harness) -> None:
    h.server.script(Script(fault=Fault.MALFORMED, repeat=10))
    with pytest.raises(InvalidResponseError):
        await h.provider.chat(HI, model=h.model)
    assert h.count() == 1


async def utf8_split(h: Harness) -> None:
    text = "naïve café ✓ 漢字 ok"
    h.server.script(Script(text=text, pieces=5, fault=Fault.UTF8_SPLIT))
    chunks, error = await collect(h.provider.stream(HI, model=h.model))
    assert error is None and text_of(chunks) == text


async def cancel_mid_stream(h: Harness) -> None:
    """Stop after two chunks: the simulator sees the connection close and nothing is re-sent."""
    h.server.script(Script(text="x" * 400, pieces=200, delay_s=0.01))
    stream: Any = h.provider.stream(HI, model=h.model)
    got = []
    async for chunk in stream:
        got.append(chunk)
        if len(got) == 2:
            break
    await stream.aclose()
    disconnects: list[str] = h.server.disconnects  # type: ignore[attr-defined]
    assert await wait_for(lambda: len(disconnects) == 1), "the server never saw the client go away"
    assert h.count() == 1


async def cancel_task_mid_stream(h: Harness) -> None:
    """Cancelling the consuming task (the UI's Stop) closes the connection too."""
    h.server.script(Script(text="y" * 400, pieces=200, delay_s=0.01))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in h.provider.stream(HI, model=h.model):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    disconnects: list[str] = h.server.disconnects  # type: ignore[attr-defined]
    assert await wait_for(lambda: len(disconnects) == 1)
    assert h.count() == 1


SCENARIOS: dict[str, Callable[[Harness], Any]] = {
    "stall_before_output": stall_before_output,
    "truncated_chat_is_retried": truncated_chat_is_retried,
    "malformed_chat": malformed_chat,
    "utf8_split": utf8_split,
    "cancel_mid_stream": cancel_mid_stream,
    "cancel_task_mid_stream": cancel_task_mid_stream,
}
