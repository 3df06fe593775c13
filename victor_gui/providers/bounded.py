"""Every HTTP reply bounded in bytes and in time, in one place: the client :func:`make_client`
builds (:class:`BoundedClient`) and the readers every adapter uses.

Bytes. The client decodes ``gzip``/``deflate`` itself, :data:`DECODE_STEP` bytes at a time
(httpx's own decoder inflates a whole network chunk at once: 64 KiB of a gzip bomb become
64 MiB), and counts *decoded* bytes: a reply read whole stops at :data:`MAX_BODY_BYTES`, any
reply (a stream too) at :data:`MAX_STREAM_BYTES`. Only the encodings we ask for are accepted.
:func:`read_bounded` and :func:`read_head` stop while reading, never after.

Time. Three limits, each with its reason:

* the first byte may take long (a local server loads a model, or reads a long prompt, before
  it answers): that wait is the client's ``read`` timeout (300 s local, 120 s cloud);
* after the first byte of the body, a gap longer than ``idle_s`` between two bytes ends the
  reply: a generating server sends a token every second or faster, even a large model on a CPU
  (60 s by default is far beyond that, and still ends a "headers then nothing" server in a minute);
* ``deadline_s`` bounds the whole exchange, headers included, so a slow-loris that trickles one
  byte every few seconds (never idle) ends too: 30 min locally (a 4096-token reply at 3 tokens/s
  on a CPU takes ~23 min), 15 min for cloud APIs (they end their own requests sooner).

A reply that ends on one of these raises an httpx exception of its own (:class:`ResponseTooLarge`,
:class:`ResponseStalled`), so the adapters' existing ``except httpx.HTTPError`` paths type it,
with the partial text, through :func:`victor_gui.providers.http.transport_error`.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

MIB = 1024 * 1024
MAX_BODY_BYTES = 16 * MIB
"""A reply read whole (a non-streamed chat, a model list, ``/props``): the largest legitimate
ones (a 128k-token reply, a gateway's list of thousands of models) are a few MiB."""
MAX_STREAM_BYTES = 256 * MIB
"""Any one reply, streamed or not (about a million streamed tokens): a backstop, since streams
are bounded line by line (:data:`victor_gui.providers.streaming.MAX_EVENT_BYTES`) and in time."""
DECODE_STEP = 64 * 1024
"""Most decoded bytes produced from compressed input in one step."""
ACCEPT_ENCODING = "gzip, deflate"
"""What the client asks for, and therefore all it decodes."""


IDLE_EXTENSION = "victor_idle_s"
DEADLINE_EXTENSION = "victor_deadline_s"
LONG_TRANSFER: dict[str, Any] = {IDLE_EXTENSION: None, DEADLINE_EXTENSION: None}
"""Request ``extensions`` for a transfer that may rightly go quiet for minutes and last hours (an
Ollama pull verifying a large blob's digest): only its read timeout bounds it, as the caller set."""


class ResponseTooLarge(httpx.DecodingError):
    """A reply (or a line of a stream) grew past its cap; reading stopped there."""


class ResponseStalled(httpx.ReadTimeout):
    """A reply went quiet after it started, or did not finish before its deadline. Unlike a
    plain read timeout it is not worth a retry: the server took the request and is stuck."""


class _Inflater:
    """Incremental gzip/deflate decoding, at most :data:`DECODE_STEP` bytes out per step; a
    gzip body of several members (concatenated) is decoded whole, like ``gzip -d``."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._raw_deflate = False
        self._first = True
        self._z = self._new()

    def _new(self) -> Any:
        if self.encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if self._raw_deflate else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        pending = data
        while True:
            try:
                out = self._z.decompress(pending, DECODE_STEP)
            except zlib.error as exc:
                if self.encoding == "deflate" and self._first and not self._raw_deflate:
                    # "deflate" is zlib-wrapped by the standard, raw by some servers: try both.
                    self._raw_deflate = True
                    self._z = self._new()
                    out = self._z.decompress(pending, DECODE_STEP)
                else:
                    raise httpx.DecodingError(f"The reply's {self.encoding} data is corrupt: {exc}") from None
            self._first = False
            pending = self._z.unconsumed_tail
            if self._z.eof and self._z.unused_data:
                if self.encoding != "gzip":
                    pending = b""  # trailing bytes after a deflate stream: ignored, as httpx does
                else:
                    pending = self._z.unused_data
                    self._z = self._new()
            if out:
                yield out
            if not pending and len(out) < DECODE_STEP:
                return


class BoundedStream(httpx.AsyncByteStream):
    """A reply's body decoded, counted and timed (see the module docstring). ``limit`` is the
    decoded-byte cap: :data:`MAX_STREAM_BYTES` until a reader that reads whole lowers it."""

    def __init__(self, raw: httpx.AsyncByteStream, *, encoding: str, idle_s: float | None,
                 deadline: float | None, deadline_s: float | None, request: httpx.Request) -> None:
        self._raw = raw
        self._inflater = _Inflater(encoding) if encoding in ("gzip", "deflate") else None
        self.idle_s = idle_s
        self._deadline = deadline  # on the loop's clock
        self._deadline_s = deadline_s
        self._request = request
        self.limit = MAX_STREAM_BYTES
        self.size = 0

    def _wait_limit(self, started: bool, loop: asyncio.AbstractEventLoop) -> tuple[float | None, str]:
        """Seconds the next read may take and what it means when it runs out."""
        waits: list[tuple[float, str]] = []
        if started and self.idle_s:
            waits.append((self.idle_s, f"The reply stopped: no data for {self.idle_s:g} s after it began"))
        if self._deadline is not None:
            waits.append((self._deadline - loop.time(),
                          f"The reply did not finish within its {self._deadline_s:g} s deadline"))
        if not waits:
            return None, ""
        return min(waits, key=lambda w: w[0])

    async def __aiter__(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        chunks = self._raw.__aiter__()
        started = False
        while True:
            wait, why = self._wait_limit(started, loop)
            try:
                if wait is None:
                    raw = await anext(chunks)
                else:
                    async with asyncio.timeout(max(0.0, wait)):
                        raw = await anext(chunks)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise ResponseStalled(why, request=self._request) from None
            started = started or bool(raw)
            for piece in self._inflater.feed(raw) if self._inflater is not None else (raw,):
                self.size += len(piece)
                if self.size > self.limit:
                    raise ResponseTooLarge(f"The response exceeded {_size(self.limit)}",
                                           request=self._request)
                yield piece

    async def aclose(self) -> None:
        await self._raw.aclose()


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // 1024} KiB"


class BoundedClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose every reply is a :class:`BoundedStream`, with the whole
    exchange (headers included) held to ``deadline_s``. A non-streamed ``send`` reads at most
    :data:`MAX_BODY_BYTES`."""

    def __init__(self, *, idle_s: float | None = None, deadline_s: float | None = None,
                 **kwargs: Any) -> None:
        headers = httpx.Headers(kwargs.pop("headers", None))
        headers.setdefault("Accept-Encoding", ACCEPT_ENCODING)
        super().__init__(headers=headers, **kwargs)
        self.idle_s = idle_s
        self.deadline_s = deadline_s

    async def send(self, request: httpx.Request, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        """Send as httpx does, bounded; a request's ``extensions`` may override the client's
        idle and deadline (:data:`IDLE_EXTENSION`, :data:`DEADLINE_EXTENSION`, None: no limit)."""
        idle_s = request.extensions.get(IDLE_EXTENSION, self.idle_s)
        deadline_s = request.extensions.get(DEADLINE_EXTENSION, self.deadline_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s if deadline_s else None
        try:
            async with asyncio.timeout_at(deadline):
                response = await super().send(request, stream=True, **kwargs)
        except TimeoutError:
            raise ResponseStalled(f"No answer within the request's {deadline_s:g} s deadline "
                                  "(its headers did not arrive)", request=request) from None
        encodings = [e.strip().lower() for e in response.headers.get("content-encoding", "").split(",")]
        encodings = [e for e in encodings if e and e != "identity"]
        if len(encodings) > 1 or (encodings and encodings[0] not in ("gzip", "deflate")):
            await response.aclose()
            raise ResponseTooLarge(f"The reply is encoded as {', '.join(encodings)}, which was not asked "
                                   f"for (only {ACCEPT_ENCODING})", request=request)
        if "content-encoding" in response.headers:
            del response.headers["content-encoding"]  # decoded below: httpx must not decode again
        if not isinstance(response.stream, httpx.AsyncByteStream):  # pragma: no cover - async client
            return response
        bounded = BoundedStream(response.stream, encoding=encodings[0] if encodings else "",
                                idle_s=idle_s, deadline=deadline, deadline_s=deadline_s,
                                request=request)
        response.stream = bounded
        if not stream:
            bounded.limit = MAX_BODY_BYTES
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response


async def read_bounded(response: httpx.Response, limit: int = MAX_BODY_BYTES) -> bytes:
    """The decoded body of a streamed reply, raising :class:`ResponseTooLarge` as soon as it
    passes ``limit`` bytes (not after reading it all). Any client's reply works; a
    :class:`BoundedClient`'s also decodes in small steps."""
    if isinstance(response.stream, BoundedStream):
        response.stream.limit = min(response.stream.limit, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"The response exceeded {_size(limit)}", request=response.request)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_head(response: httpx.Response, limit: int) -> bytes:
    """The first ``limit`` decoded bytes of a reply's body; stops reading there (the rest is
    never received). The caller closes the response."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk[: limit - size])
        size += len(chunks[-1])
        if size >= limit:
            break
    return b"".join(chunks)
