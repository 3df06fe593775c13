"""Readers for the two stream framings local and cloud servers use: Server-Sent Events and
newline-delimited JSON.

Both decode UTF-8 incrementally (a character split across network chunks is joined, never
mangled), and both hand control back to the event loop every few lines: ``aiter_lines`` does
not yield between lines it already holds, and a burst from a fast server would otherwise stall
the UI for a noticeable time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

import httpx

from victor_gui.errors import InvalidResponseError
from victor_gui.providers.json_guard import loads

# Lines handled between two explicit yields to the loop (measured: keeps p99 loop gaps ~10 ms
# at ~10k tokens/s without costing throughput).
YIELD_EVERY = 8
# A single SSE event or NDJSON line larger than this is a broken or hostile server.
MAX_EVENT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class SSEEvent:
    """One Server-Sent Event: its ``event`` name (``message`` when absent) and ``data`` text."""

    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        """The data as JSON; :class:`InvalidResponseError` when it is not (or nested too deeply)."""
        return loads(self.data, where=f"The stream's {self.event!r} event")


def _lines(response: httpx.Response) -> AsyncGenerator[str, None]:
    # httpx types aiter_lines() as AsyncIterator, but it is an async generator: it has aclose().
    return cast("AsyncGenerator[str, None]", response.aiter_lines())


async def iter_sse(response: httpx.Response, *, provider: str | None = None) -> AsyncIterator[SSEEvent]:
    """Yield the events of an SSE response (comments and keep-alives skipped)."""
    event_name = ""
    data_lines: list[str] = []
    size = 0
    event_id: str | None = None
    count = 0
    async with aclosing(_lines(response)) as lines:
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
    async with aclosing(_lines(response)) as lines:
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
