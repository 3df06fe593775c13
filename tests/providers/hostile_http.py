"""Hostile HTTP/1.1 servers on 127.0.0.1 for the bounds tests (issue 16, finding 3 and 9).

Each answers every request the same way, whatever its path, with raw bytes written on an
asyncio stream: a gzip bomb, an endless error body, an endless line, headers then silence, a
slow-loris, a megabyte of headers. Every one is bounded itself, in bytes (:data:`MAX_SENT`) and
time (:data:`MAX_SECONDS`), and stops when the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import psutil

MIB = 1024 * 1024
MAX_SENT = 4 * 1024 * MIB  # the "4 GB line": the client must stop long before
MAX_SECONDS = 40.0
CHUNK = 64 * 1024
KILL_GROWTH = 2 * 1024 * MIB

Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]


def gzip_bomb_parts() -> tuple[bytes, bytes]:
    """(first, repeat): ``first + repeat * n`` is a gzip stream of ``(n + 1)`` MiB of zeros.
    Each part ends on a full flush, so the repeated part is valid after any earlier one; ~1 KiB
    per MiB, so 10 MB of it is ~10 GB of zeros (never decompressed whole here)."""
    zeros = bytes(MIB)
    co = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    repeat = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    return first, repeat


def head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def send_endless(writer: asyncio.StreamWriter, first: bytes, repeat: bytes, *,
                       chunked: bool = True, limit: int = MAX_SENT) -> None:
    """``first`` then ``repeat`` again and again (chunked), until ``limit`` bytes or the client leaves."""
    sent = 0
    data = first
    while sent < limit:
        writer.write(chunk(data) if chunked else data)
        await writer.drain()
        sent += len(data)
        data = repeat


def gzip_bomb(status: str, content_type: str) -> Writer:
    first, repeat = gzip_bomb_parts()
    block = repeat * 64  # ~64 KiB per write: 64 MiB of zeros

    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(head(status, {"Content-Type": content_type, "Content-Encoding": "gzip",
                                   "Transfer-Encoding": "chunked"}))
        await send_endless(writer, first, block, limit=10 * MIB)  # 10 MB on the wire ~ 10 GB

    return write


def endless(status: str, content_type: str, prefix: bytes = b"") -> Writer:
    """``prefix`` then 'a' without end (no newline): an endless body or a 4 GB line."""
    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(head(status, {"Content-Type": content_type, "Transfer-Encoding": "chunked"}))
        await send_endless(writer, prefix + b"a" * CHUNK, b"a" * CHUNK)

    return write


def silent_after_headers(content_type: str) -> Writer:
    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(head("200 OK", {"Content-Type": content_type, "Transfer-Encoding": "chunked"}))
        await writer.drain()
        await asyncio.sleep(MAX_SECONDS)

    return write


def slow_loris(content_type: str, every: float, prefix: bytes = b"") -> Writer:
    """Headers, ``prefix``, then one byte every ``every`` seconds: never idle, never done."""
    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(head("200 OK", {"Content-Type": content_type, "Transfer-Encoding": "chunked"}))
        if prefix:
            writer.write(chunk(prefix))
        await writer.drain()
        started = time.monotonic()
        while time.monotonic() - started < MAX_SECONDS:
            writer.write(chunk(b" "))  # whitespace: valid inside a JSON value, no line end
            await writer.drain()
            await asyncio.sleep(every)

    return write


def slow_headers(every: float) -> Writer:
    """A status line, then one header byte every ``every`` seconds."""
    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        await writer.drain()
        started = time.monotonic()
        while time.monotonic() - started < MAX_SECONDS:
            writer.write(b"a")
            await writer.drain()
            await asyncio.sleep(every)

    return write


def huge_headers(size: int = MIB) -> Writer:
    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        for i in range(size // 1024):
            writer.write(f"X-Pad-{i}: {'a' * 1000}\r\n".encode())
        writer.write(b"Content-Length: 2\r\n\r\n{}")
        await writer.drain()

    return write


@dataclass
class Hostile:
    """A running hostile server: its base URL and how many requests it took."""

    port: int
    requests: int = 0
    paths: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serve(writer_for: Writer) -> AsyncIterator[Hostile]:
    """Run a server answering every request with ``writer_for``, on a free loopback port."""
    state = Hostile(0)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            request_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            state.requests += 1
            state.times.append(time.monotonic())
            state.paths.append(request_head.split(b" ", 2)[1].decode())
            length = 0
            for line in request_head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            await asyncio.wait_for(writer_for(writer), MAX_SECONDS)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, asyncio.LimitOverrunError,
                asyncio.CancelledError):
            pass  # the client left, or the test is over (a connection task ends quietly)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class PeakRSS:
    """The process's peak resident memory above where it started, sampled every 5 ms."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.start = self._process.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss)
            if self.peak - self.start > KILL_GROWTH:
                # An unbounded read (the bug these tests catch) must not take the machine along.
                print(f"peak RSS grew past {KILL_GROWTH // MIB} MiB: stopped", flush=True)
                os._exit(99)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / MIB
