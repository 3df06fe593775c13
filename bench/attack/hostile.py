"""Hostile HTTP servers for the attack run: raw asyncio servers on 127.0.0.1, each bounded.

Every server runs in its own thread with its own event loop, so the process under attack (the
child) holds nothing of it: the memory the harness measures is the app's alone. Each
connection is cut after :attr:`HostileServer.max_seconds` and each behaviour stops after its
own byte budget, so a client that never stops reading cannot keep a server (or the machine)
busy for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

Writer = asyncio.StreamWriter
Behaviour = Callable[[str, str, Writer], Awaitable[None]]

MiB = 1024 * 1024


def _head(status: int, headers: dict[str, str], *, reason: str = "OK") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _sse(delta: dict[str, Any], finish: str | None = None) -> bytes:
    event = {"id": "atk", "object": "chat.completion.chunk", "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


# ---------------------------------------------------------------------------------------------
# The gzip bomb: ~10 MB on the wire, ~10 GB once inflated.
# ---------------------------------------------------------------------------------------------

_BOMB: bytes | None = None


def gzip_bomb(inflated_gib: int = 10) -> bytes:
    """One gzip member of ~10 MB that inflates to ``inflated_gib`` GiB of zeros, built in memory
    once per process by concatenating a precompressed block.

    httpx inflates only the first member of a multi-member gzip body, so the bomb is one member:
    a 64 MiB block of zeros is deflated once and ended with a full flush (byte-aligned, the
    dictionary reset), which makes the deflate bytes of every further block identical; those
    bytes are repeated. The trailer's CRC covers only the first two blocks: a client that
    inflated all 10 GiB to notice has failed already.
    """
    global _BOMB
    if _BOMB is None:
        block = bytes(64 * MiB)
        comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        first = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)  # gzip header + block 1
        unit = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)  # ~64 KiB per 64 MiB
        _BOMB = first + unit * (inflated_gib * 16 - 2) + comp.flush(zlib.Z_FINISH)
    return _BOMB


# ---------------------------------------------------------------------------------------------
# Behaviours: (method, path, writer) -> None. Each writes its reply (or does not).
# ---------------------------------------------------------------------------------------------

async def send_gzip_bomb(method: str, path: str, writer: Writer) -> None:
    """200 application/json, Content-Encoding: gzip, a body that inflates to ~10 GB of zeros."""
    body = gzip_bomb()
    writer.write(_head(200, {"Content-Type": "application/json", "Content-Encoding": "gzip",
                             "Content-Length": str(len(body))}))
    view = memoryview(body)
    for start in range(0, len(body), MiB):
        writer.write(view[start:start + MiB])
        await writer.drain()


async def endless_error_body(method: str, path: str, writer: Writer, *, budget: int = 8 * 1024 * MiB) -> None:
    """HTTP 500 whose chunked body never ends (until the byte budget): an error page that
    streams for ever."""
    writer.write(_head(500, {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"},
                       reason="Internal Server Error"))
    piece = _chunk(b"error " * (MiB // 6))
    sent = 0
    while sent < budget:
        writer.write(piece)
        await writer.drain()
        sent += len(piece)


async def huge_line(method: str, path: str, writer: Writer, *, size: int = 4 * 1024 * MiB) -> None:
    """200 text/event-stream, then one 4 GB line with no newline: ``data: {"x": "aaaa…``."""
    writer.write(_head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}))
    writer.write(_chunk(b'data: {"choices":[{"index":0,"delta":{"content":"'))
    piece = _chunk(b"a" * MiB)
    sent = 0
    while sent < size:
        writer.write(piece)
        await writer.drain()
        sent += MiB


async def silent(method: str, path: str, writer: Writer) -> None:
    """Accept, read the request, answer nothing (the connection stays open)."""
    await asyncio.sleep(3600)


async def slow_loris(method: str, path: str, writer: Writer, *, every_s: float = 0.5) -> None:
    """200 text/event-stream, then one byte every ``every_s`` seconds, never a whole line:
    no read timeout ever fires, and no token ever arrives."""
    writer.write(_head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}))
    await writer.drain()
    for byte in (b"data: " + b" " * 100_000):
        writer.write(_chunk(bytes([byte])))
        await writer.drain()
        await asyncio.sleep(every_s)


def _stream_replies(pieces: list[str], pause_s: float) -> Behaviour:
    async def reply(method: str, path: str, writer: Writer) -> None:
        if not path.endswith("/chat/completions"):
            writer.write(_head(404, {"Content-Type": "application/json", "Content-Length": "2"}) + b"{}")
            return
        writer.write(_head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}))
        writer.write(_chunk(_sse({"role": "assistant", "content": ""})))
        for text in pieces:
            # ensure_ascii keeps a lone surrogate as its \\uXXXX escape, as a server that splits
            # UTF-16 pairs writes it.
            writer.write(_chunk(_sse({"content": text})))
            await writer.drain()
            await asyncio.sleep(pause_s)
        writer.write(_chunk(_sse({}, "stop")) + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()
    return reply


def split_surrogates() -> Behaviour:
    """A stream whose emoji arrive as UTF-16 halves in separate events (``\\ud83d`` then
    ``\\ude00``), a lone high surrogate at the very end, and plain text around them."""
    pieces = ["Hello ", "\ud83d", "\ude00", " world ", "\ud83c", "\udf89", " done", "\ud83d"]
    return _stream_replies(pieces, 0.05)


def steady_stream(pieces: int = 40, pause_s: float = 0.1) -> Behaviour:
    """A well-behaved stream of numbered words (the database attacks' chat)."""
    return _stream_replies([f"w{i:03d} " for i in range(pieces)], pause_s)


_WRONG_CHAT = {
    "id": "x", "object": "chat.completion", "model": 7,
    "choices": [{"index": "zero", "message": {"role": "assistant", "content": ["not", "text"],
                                              "tool_calls": {"id": 1}}, "finish_reason": 3}],
    "usage": "lots",
}


async def wrong_shape_chat(method: str, path: str, writer: Writer) -> None:
    """Valid JSON of the wrong shape: a whole reply with lists for strings and a string for
    usage, and a stream whose events hold ``choices`` as a mapping, ``null`` and numbers."""
    body = json.dumps(_WRONG_CHAT).encode()
    writer.write(_head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))}) + body)


async def wrong_shape_stream(method: str, path: str, writer: Writer) -> None:
    writer.write(_head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}))
    events = [b'data: {"choices": {"0": {"delta": "hi"}}}\n\n', b"data: null\n\n", b"data: 42\n\n",
              b'data: {"choices": [null, 5, {"delta": ["x"]}]}\n\n',
              b'data: {"choices": [{"index": 0, "delta": {"content": {"text": 1}}}]}\n\n',
              b'data: {"choices": [], "usage": {"prompt_tokens": "many"}}\n\n', b"data: [DONE]\n\n"]
    for event in events:
        writer.write(_chunk(event))
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def _json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> bytes:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    head = {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}
    return _head(status, head) + body


async def wrong_shape_ollama(method: str, path: str, writer: Writer) -> None:
    """Says "Ollama is running", then answers every Ollama/OpenAI route in the wrong shape."""
    if path == "/":
        body = b"Ollama is running"
        writer.write(_head(200, {"Content-Type": "text/plain", "Content-Length": str(len(body))}) + body)
        return
    payloads: dict[str, Any] = {
        "/api/version": {"version": ["0", "9"]},
        "/api/tags": {"models": [{"name": 5, "size": "big", "details": "x", "model_info": 3}, None, "str"]},
        "/api/ps": {"models": {"a": 1}},
        "/v1/models": {"data": 7},
        "/api/show": {"model_info": ["x"], "capabilities": "all"},
    }
    writer.write(_json_reply(200, payloads.get(path.split("?")[0], [1, 2, 3])))


async def wrong_shape_llamacpp(method: str, path: str, writer: Writer) -> None:
    """Carries llama.cpp's Server header and answers /props, /slots, /v1/models in the wrong shape."""
    payloads: dict[str, Any] = {
        "/props": {"default_generation_settings": [1], "build_info": {"b": 1}, "n_ctx": "huge",
                   "model_path": 5, "total_slots": "two"},
        "/v1/models": {"data": [{"id": 5, "meta": "x"}, None, {"id": "m", "meta": {"n_ctx_train": "1"}}]},
        "/slots": {"slots": 1},
        "/health": ["ok"],
        "/metrics": b"\x00\xff not prometheus",
    }
    writer.write(_json_reply(200, payloads.get(path.split("?")[0], {"error": 5}), {"Server": "llama.cpp"}))


async def wrong_shape_vllm(method: str, path: str, writer: Writer) -> None:
    """Model cards owned by vllm without an id, with a list for max_model_len, and metrics that
    are not numbers."""
    route = path.split("?")[0]
    if route == "/":
        writer.write(_json_reply(404, {"detail": "Not Found"}))
    elif route == "/metrics":
        body = b'vllm:kv_cache_usage_perc{model_name="m"} not-a-number\nvllm:num_requests_running [1]\n'
        writer.write(_head(200, {"Content-Type": "text/plain", "Content-Length": str(len(body))}) + body)
    else:
        payloads: dict[str, Any] = {
            "/v1/models": {"data": [{"owned_by": "vllm"},
                                    {"id": "z", "owned_by": "vllm", "max_model_len": [1]},
                                    {"id": ["x"], "owned_by": "vllm", "parent": {"p": 1}}, 5]},
            "/version": {"version": 5},
            "/health": {},
        }
        writer.write(_json_reply(200, payloads.get(route, {"detail": "Not Found"})))


async def wrong_shape_lmstudio(method: str, path: str, writer: Writer) -> None:
    """LM Studio's unknown-route body, then model lists of the wrong shape."""
    payloads: dict[str, Any] = {
        "/api/v0/models": {"data": [{"id": 3, "state": "loaded", "max_context_length": "x",
                                     "loaded_context_length": []}, "str", None]},
        "/api/v1/models": {"models": [{"key": None, "loaded_instances": [{"config": "x"}, 7]},
                                      {"loaded_instances": "none"}, 5]},
        "/v1/models": {"data": {"id": "m"}},
    }
    route = path.split("?")[0]
    payload = payloads.get(route, {"error": f"Unexpected endpoint or method. ({method} {route})"})
    writer.write(_json_reply(200, payload))


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * MiB


class HostileServer:
    """One behaviour on 127.0.0.1:<free port>, served from a thread; use as a context manager.

    ``stream_behaviour`` answers requests whose JSON body asks for ``"stream": true`` (the
    behaviour sees no body otherwise). ``max_seconds`` cuts every connection.
    """

    def __init__(self, behaviour: Behaviour, *, stream_behaviour: Behaviour | None = None,
                 max_seconds: float = 60.0) -> None:
        self.behaviour = behaviour
        self.stream_behaviour = stream_behaviour
        self.max_seconds = max_seconds
        self.port = 0
        self.requests: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        try:
            await asyncio.wait_for(self._serve(reader, writer), self.max_seconds)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.CancelledError):  # cancelled: the server is stopping
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        while True:  # keep-alive: httpx may reuse the connection
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEAD:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = [*lines[0].split(" "), "", ""][:3]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = min(int(value.strip() or 0), MAX_BODY)
            body = await reader.readexactly(length) if length else b""
            self.requests.append(f"{method} {path}")
            streamed = self.stream_behaviour is not None and b'"stream":true' in body.replace(b" ", b"")
            await (self.stream_behaviour if streamed else self.behaviour)(method, path, writer)  # type: ignore[misc]
            await writer.drain()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def main() -> None:
            self._stop = asyncio.Event()
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0, limit=MAX_HEAD * 2)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()
            # Cut whatever still streams first: closing waits for open connections.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    def start(self) -> HostileServer:
        self._thread = threading.Thread(target=self._run, name="hostile-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("hostile server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
