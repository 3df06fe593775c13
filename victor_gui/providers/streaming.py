"""Readers for the two stream framings local and cloud servers use: Server-Sent Events and
newline-delimited JSON.

Both split lines with :func:`iter_lines`, which decodes UTF-8 incrementally (a character split
across network chunks is joined, never mangled) and bounds a line while it grows: past
:data:`MAX_EVENT_BYTES` it raises before holding more, and a line that takes longer than the
client's idle limit to complete (bytes trickling in, no newline: a slow-loris) ends the stream.
Both hand control back to the event loop every few lines: a burst from a fast server would
otherwise stall the UI for a noticeable time.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

import httpx

from victor_gui.errors import InvalidResponseError
from victor_gui.providers.bounded import BoundedStream, ResponseStalled
from victor_gui.providers.json_guard import loads

# Lines handled between two explicit yields to the loop (measured: keeps p99 loop gaps ~10 ms
# at ~10k tokens/s without costing throughput).
YIELD_EVERY = 8
# A single SSE event or NDJSON line larger than this is a broken or hostile server.
MAX_EVENT_BYTES = 8 * 1024 * 1024
_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SSEEvent:
    """One Server-Sent Event: its ``event`` name (``message`` when absent) and ``data`` text."""

    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        """The data as JSON; :class:`InvalidResponseError` when it is not (or nested too deeply)."""
        return loads(self.data, where=f"The stream's {self.event!r} event")


async def iter_lines(response: httpx.Response, *, provider: str | None = None,
                     limit: int = MAX_EVENT_BYTES) -> AsyncIterator[str]:
    """The lines of a streamed body (``\\n``, ``\\r\\n`` or ``\\r`` ends one, as in SSE), each
    checked while it grows: longer than ``limit`` characters raises :class:`InvalidResponseError`
    at once, and one not complete within the client's idle limit raises
    :class:`~victor_gui.providers.bounded.ResponseStalled` (typed by the adapter as a stalled
    reply, with its partial text)."""
    idle_s = response.stream.idle_s if isinstance(response.stream, BoundedStream) else None
    loop = asyncio.get_running_loop()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    held: list[str] = []  # the start of the line being received
    size = 0
    begun = loop.time()
    after_cr = False
    async for chunk in response.aiter_bytes():
        text = decoder.decode(chunk)
        if not text:
            continue
        if after_cr and text[0] == "\n":
            text = text[1:]  # the \n of a \r\n split across two chunks
        after_cr = text.endswith("\r")
        parts = _NEWLINE.split(text) if "\r" in text else text.split("\n")
        tail = parts.pop()  # the start of a line not ended yet ("" when the text ends a line)
        if parts:
            if held:
                size += len(parts[0])
                if size > limit:
                    raise _too_long(limit, provider)
                parts[0] = "".join(held) + parts[0]
                held, size = [], 0
            if len(text) > limit and max(map(len, parts)) > limit:
                raise _too_long(limit, provider)
            for line in parts:
                yield line
            begun = loop.time()
        if tail:
            held.append(tail)
            size += len(tail)
            if size > limit:
                raise _too_long(limit, provider)
            if idle_s is not None and loop.time() - begun > idle_s:
                raise ResponseStalled(f"The reply stopped: no complete line for {idle_s:g} s "
                                      "(bytes trickle in without a line end)", request=response.request)
    tail = decoder.decode(b"", final=True)
    if tail:
        held.append(tail)
    if held:
        yield "".join(held)


def _too_long(limit: int, provider: str | None) -> InvalidResponseError:
    return InvalidResponseError(f"A stream line exceeded {limit // (1024 * 1024)} MiB", provider)


def _lines(response: httpx.Response, provider: str | None) -> AsyncGenerator[str, None]:
    # iter_lines is an async generator typed as AsyncIterator: it has aclose().
    return cast("AsyncGenerator[str, None]", iter_lines(response, provider=provider))


async def iter_sse(response: httpx.Response, *, provider: str | None = None) -> AsyncIterator[SSEEvent]:
    """Yield the events of an SSE response (comments and keep-alives skipped)."""
    event_name = ""
    data_lines: list[str] = []
    size = 0
    event_id: str | None = None
    count = 0
    async with aclosing(_lines(response, provider)) as lines:
        async for line in lines:
            count += 1
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if not line:
                if data_lines:
                    yield SSEEvent(event_name or "message", "\n".join(data_lines), event_id)
                event_name, data_lines, size = "", [], 0
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                size += len(value)
                if size > MAX_EVENT_BYTES:
                    raise InvalidResponseError("A stream event exceeded 8 MiB", provider)
                data_lines.append(value)
            elif field == "event":
                event_name = value
            elif field == "id":
                event_id = value
            elif field == "error":
                # Older llama-server builds report a mid-stream failure as an "error: {json}" line.
                data_lines.append(value)
                event_name = "error"
    if data_lines:
        # A stream cut before its blank line still delivers what it carried.
        yield SSEEvent(event_name or "message", "\n".join(data_lines), event_id)


async def iter_ndjson(response: httpx.Response, *, provider: str | None = None) -> AsyncIterator[Any]:
    """Yield one decoded JSON value per non-empty line."""
    count = 0
    async with aclosing(_lines(response, provider)) as lines:
        async for line in lines:
            count += 1
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            line = line.strip()
            if not line:
                continue
            if len(line) > MAX_EVENT_BYTES:
                raise InvalidResponseError("A stream line exceeded 8 MiB", provider)
            try:
                value = json.loads(line)
            except RecursionError:
                raise InvalidResponseError("A stream line is nested too deeply to read", provider) from None
            except ValueError as exc:  # JSONDecodeError, or an integer past the digit limit
                raise InvalidResponseError(f"Malformed JSON line in the stream: {line[:120]!r}",
                                           provider, raw_error=exc) from None
            yield value
