"""Streaming half of the OpenAI-compatible provider: one SSE attempt, read into chunks.

Kept apart from :mod:`.openai_compat` for size. :func:`stream_once` is what
:func:`~victor_gui.providers.resilience.stream_with_retry` calls per attempt; it uses the
provider's request planning, sending and decoding.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Protocol, cast

import httpx

from victor_gui.errors import InvalidResponseError, ProviderError
from victor_gui.providers.http import looks_like_html, read_reply, transport_error
from victor_gui.providers.protocols.openai_payload import RequestPlan, rejects_tools
from victor_gui.providers.protocols.openai_stream import StreamAssembler
from victor_gui.providers.streaming import SSEEvent, iter_sse
from victor_gui.providers.types import StreamChunk

if TYPE_CHECKING:
    from victor_gui.providers.types import CompletionResponse, ToolCall


class StreamOwner(Protocol):
    """What one streamed request uses of the OpenAI-compatible provider that sends it (declared
    here so this module does not import its owner: no import cycle)."""

    _no_native_tools: set[str]

    @property
    def name(self) -> str: ...
    async def _send(self, method: str, path: str, *, body: dict[str, Any] | None = None,
                    model: str | None = None, accept: str | None = None) -> httpx.Response: ...
    def _decode(self, response: httpx.Response, raw: bytes, model: str | None) -> Any: ...
    def _completion(self, data: Any, plan: RequestPlan, started: float) -> CompletionResponse: ...
    def _think_anywhere(self) -> bool: ...
    def _text_tool_plan(self, plan: RequestPlan) -> RequestPlan: ...
    def _text_tool_calls(self, plan: RequestPlan, text: str) -> tuple[list[ToolCall], str]: ...

TRUNCATED = "The stream ended before the reply was complete (truncated: no [DONE] and no finish reason)"


async def stream_once(
    provider: StreamOwner, state: dict[str, RequestPlan]
) -> AsyncIterator[StreamChunk]:
    """One streamed request. ``state["plan"]`` is replaced when the server refuses native tools
    (before any output), so a retry goes out in the text-tools form too."""
    plan = state["plan"]
    started = time.monotonic()
    response = await provider._send(
        "POST", "/chat/completions", body=plan.body, model=plan.model, accept="text/event-stream"
    )
    fallback = False
    try:
        ctype = response.headers.get("content-type", "")
        if not response.is_success or "text/event-stream" not in ctype:
            try:
                raw = await read_reply(response, provider=provider.name, model=plan.model)
                data = provider._decode(response, raw, plan.model)
            except ProviderError as exc:
                if not (plan.native_tools and rejects_tools(exc)):
                    raise
                fallback = True
            else:
                # A whole JSON reply to a stream request (some proxies): deliver it as chunks.
                whole = provider._completion(data, plan, started)
                yield StreamChunk(content=whole.content, reasoning=whole.reasoning or "")
                yield StreamChunk(
                    is_final=True,
                    stop_reason=whole.stop_reason,
                    tool_calls=whole.tool_calls,
                    usage=whole.usage,
                    timings=whole.timings,
                    model=whole.model,
                    metadata=whole.metadata,
                )
                return
        else:
            async for chunk in read_sse(provider, response, plan, started):
                yield chunk
    except httpx.HTTPError as exc:
        raise transport_error(exc, provider.name, model=plan.model) from exc
    finally:
        await response.aclose()
    if fallback:  # the server refused native tools before sending anything
        provider._no_native_tools.add(plan.model)
        state["plan"] = provider._text_tool_plan(plan)
        async for chunk in stream_once(provider, state):
            yield chunk


async def read_sse(
    provider: StreamOwner, response: httpx.Response, plan: RequestPlan, started: float
) -> AsyncIterator[StreamChunk]:
    """The chunks of one SSE body; errors carry the text delivered so far."""
    name = provider.name
    asm = StreamAssembler(
        provider=name, model=plan.model, think_anywhere=provider._think_anywhere(), started=started
    )
    done = False
    try:
        # iter_sse is an async generator; closing it promptly releases the connection.
        events_gen = cast(AsyncGenerator[SSEEvent, None], iter_sse(response, provider=name))
        async with aclosing(events_gen) as events:
            async for event in events:
                text = event.data.strip()
                if text == "[DONE]":
                    done = True
                    break
                data = event_json(text, asm, name, plan.model)
                if event.event == "error" and "error" not in data:
                    data = {"error": data}  # old llama.cpp "error: {...}" lines
                for chunk in asm.feed(data):
                    yield chunk
    except httpx.HTTPError as exc:
        raise transport_error(exc, name, model=plan.model, partial=asm.partial or None) from exc
    except ProviderError as exc:
        if exc.partial_content is None and asm.partial:
            exc.partial_content = asm.partial
        raise
    tail = asm.flush_text()
    if tail is not None:
        yield tail
    if not done and asm.finish_reason is None:
        raise InvalidResponseError(TRUNCATED, name, model=plan.model, partial_content=asm.partial or None)
    final = asm.final_chunk(dict(plan.metadata))
    if plan.text_tools and not final.tool_calls:
        calls, remaining = provider._text_tool_calls(plan, asm.partial)
        if calls:
            final.tool_calls, final.stop_reason = calls, "tool_calls"
            final.metadata["content_without_tool_calls"] = remaining
    yield final


def event_json(text: str, asm: StreamAssembler, provider: str, model: str) -> dict[str, Any]:
    """One event's JSON object; anything else is an :class:`InvalidResponseError`."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidResponseError("A stream event is nested too deeply to read", provider, model=model,
                                   partial_content=asm.partial or None) from None
    except (json.JSONDecodeError, ValueError):
        kind = "an HTML page" if looks_like_html(text) else "malformed JSON"
        raise InvalidResponseError(
            f"The stream carried {kind}: {text[:120]!r}",
            provider,
            model=model,
            partial_content=asm.partial or None,
        ) from None
    if not isinstance(data, dict):
        raise InvalidResponseError(
            f"Unexpected stream event: {text[:120]!r}",
            provider,
            model=model,
            partial_content=asm.partial or None,
        )
    return data
