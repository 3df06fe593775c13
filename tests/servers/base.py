"""Machinery shared by the protocol simulators: a real threaded HTTP/1.1 server on 127.0.0.1,
scripted replies, fault injection, and exact stream framing (chunked transfer encoding).

Each dialect (llama.cpp, vLLM, LM Studio, Ollama, ...) subclasses :class:`SimHandler` and fills
in its routes and body shapes from ``shared/reference/servers.md``. Tests drive a simulator by
queueing :class:`Script` objects; each chat request consumes the next one (or the default).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar


class Fault:
    """Names of the fault modes every simulator understands."""

    NONE = "none"
    UNAUTHORIZED = "unauthorized"  # 401 in the dialect's error shape
    UNKNOWN_MODEL = "unknown_model"  # 404 model not found
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After
    SERVER_ERROR = "server_error"  # 500
    LOADING = "loading"  # 503 while the model loads (dialect-specific)
    HTML = "html"  # an HTML error page from a proxy
    MALFORMED = "malformed"  # a malformed JSON line inside the stream
    TRUNCATED = "truncated"  # the connection drops mid-stream, no terminator
    MIDSTREAM_ERROR = "midstream_error"  # an error event after some content
    STALL = "stall"  # headers sent, then silence (slow-loris)
    UTF8_SPLIT = "utf8_split"  # a multi-byte character split across two network chunks
    CONTEXT_OVERFLOW = "context_overflow"  # the prompt exceeds the context (dialect-specific)

    ALL: ClassVar[tuple[str, ...]] = (
        UNAUTHORIZED, UNKNOWN_MODEL, RATE_LIMIT, SERVER_ERROR, LOADING, HTML, MALFORMED,
        TRUNCATED, MIDSTREAM_ERROR, STALL, UTF8_SPLIT, CONTEXT_OVERFLOW,
    )


@dataclass
class ScriptedToolCall:
    name: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass
class Script:
    """What the next reply says and how it misbehaves."""

    text: str = "Hello from the simulator."
    reasoning: str = ""
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    prompt_tokens: int = 12
    completion_tokens: int | None = None  # default: one per text piece
    fault: str = Fault.NONE
    retry_after: str = "1"
    # How many pieces text is cut into when streamed, and the pause between pieces.
    pieces: int | None = None
    delay_s: float = 0.0
    # For faults that fire after some output: how many pieces go out first.
    fail_after: int = 2
    # Send reasoning inline as <think>...</think> in content rather than a separate field.
    inline_think: bool = False
    # Repeat this script for this many requests (0 = once).
    repeat: int = 0
    # The finish reason to report ("length" for a reply cut by max_tokens); None: stop/tool_calls.
    finish_reason: str | None = None

    def text_pieces(self) -> list[str]:
        text = self.text
        if not text:
            return []
        n = self.pieces or min(len(text), max(1, len(text) // 4))
        size = max(1, -(-len(text) // n))
        return [text[i : i + size] for i in range(0, len(text), size)]

    def completion_count(self) -> int:
        if self.completion_tokens is not None:
            return self.completion_tokens
        return max(1, len(self.text_pieces()) + len(self.tool_calls))


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class SimHandler(BaseHTTPRequestHandler):
    """Base request handler. Subclasses set ``routes`` mapping (METHOD, path) to method names."""

    protocol_version = "HTTP/1.1"
    routes: ClassVar[dict[tuple[str, str], str]] = {}
    server: SimServer  # type: ignore[assignment]

    # -- plumbing ---------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # The real servers (Go, uvicorn, Node, cpp-httplib) set TCP_NODELAY. Without it, headers
        # and body go out as two small segments and Nagle + delayed ACK add ~40 ms per reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # stdlib's signature (shadows format)
        pass  # keep test output clean

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:  # JSONDecodeError, or UnicodeDecodeError for undecodable bytes
            body = raw.decode("utf-8", "replace")
        self.body = body
        self.raw_body = raw  # for dialects that answer a parse error their own way
        self.server.requests.append(
            RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        name = self.routes.get((self.command, path))
        target = self.requestline.split(" ")[1] if self.requestline.count(" ") >= 2 else self.path
        if target.startswith("//"):
            # The stdlib folds a leading "//" into "/" (gh-87389); the real servers (cpp-httplib,
            # gin, Express, uvicorn) do not route it, so neither do we.
            name = None
        if name is None:
            self.unknown_route(path)
            return
        getattr(self, name)()

    do_GET = _dispatch
    do_POST = _dispatch
    do_DELETE = _dispatch
    do_HEAD = _dispatch

    def unknown_route(self, path: str) -> None:
        self.send_json(404, {"detail": "Not Found"})

    def send_bytes(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None,
                   ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        for key, value in self.extra_headers().items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers)

    def send_text(self, status: int, text: str, headers: dict[str, str] | None = None,
                  content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_bytes(status, text.encode(), content_type, headers)

    def extra_headers(self) -> dict[str, str]:
        """Headers the real server puts on every reply (``Server: llama.cpp``, ...)."""
        return {}

    # -- chunked streaming --------------------------------------------------------------------------

    def start_stream(self, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        for key, value in self.extra_headers().items():
            self.send_header(key, value)
        self.end_headers()

    def write_chunk(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        if not data:
            return
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def write_frame(self, frame: bytes, script: Script | None = None) -> None:
        """Write one stream frame; under ``Fault.UTF8_SPLIT`` as two chunks cut inside its first
        multi-byte character (else at its middle), so neither chunk is valid UTF-8 alone."""
        if script is not None and script.fault == Fault.UTF8_SPLIT:
            cut = next((i + 1 for i, b in enumerate(frame) if b >= 0xC0), len(frame) // 2)
            self.write_chunk(frame[:cut])
            self.write_chunk(frame[cut:])
        else:
            self.write_chunk(frame)

    def stall_at_start(self, script: Script) -> bool:
        """Stall before the first frame when the script asks (``STALL`` with ``fail_after=0``);
        True when the reply must end here."""
        if script.fault == Fault.STALL and script.fail_after == 0:
            self.stall()
            return True
        return False

    def mid_fault(self, script: Script) -> bool:
        """Misbehave after ``fail_after`` pieces as ``script.fault`` says; True when the reply must
        end here. Dialects say how their broken frames look (the three hooks below)."""
        if script.fault == Fault.TRUNCATED:
            self.write_chunk(self.truncated_frame())
            self.drop_connection()
        elif script.fault == Fault.MIDSTREAM_ERROR:
            self.midstream_error()
            self.end_stream()
        elif script.fault == Fault.MALFORMED:
            self.write_chunk(self.malformed_frame())
            self.end_stream()
        elif script.fault == Fault.STALL:
            self.stall()
        else:
            return False
        return True

    def truncated_frame(self) -> bytes:
        """What is written before the connection drops (``Fault.TRUNCATED``); nothing by default."""
        return b""

    def malformed_frame(self) -> bytes | str:
        """A frame cut inside its JSON (``Fault.MALFORMED``), in the dialect's framing."""
        raise NotImplementedError

    def midstream_error(self) -> None:
        """Write the dialect's in-stream error event (``Fault.MIDSTREAM_ERROR``)."""
        raise NotImplementedError

    def send_truncated(self, status: int, data: bytes, content_type: str) -> None:
        """Announce the whole body's length, send half of it, then cut the connection."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.drop_connection()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop_connection(self) -> None:
        """Cut the connection mid-body, as a crashed server would."""
        self.wfile.flush()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def stall(self) -> None:
        """Send nothing more until the client gives up or the server stops."""
        self.server.stop_event.wait(self.server.stall_seconds)
        self.close_connection = True

    def pause(self, script: Script) -> None:
        if script.delay_s:
            time.sleep(script.delay_s)

    def next_script(self) -> Script:
        return self.server.take_script()

    def html_error_page(self, status: int = 502) -> None:
        page = ("<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
                "<body><h1>Bad Gateway</h1><p>nginx</p></body></html>")
        self.send_text(status, page, content_type="text/html")


class SimServer(ThreadingHTTPServer):
    """A simulator listening on 127.0.0.1 in a background thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[SimHandler], port: int = 0, *, model: str = "sim-model",
                 **options: Any) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.model = model
        self.models: list[str] = [model]
        self.options = options
        self.scripts: deque[Script] = deque()
        self.default_script = Script()
        self.requests: list[RecordedRequest] = []
        self.stop_event = threading.Event()
        self.stall_seconds = 30.0
        self.loading = False  # dialects answer their "loading" shape while True
        self.api_key: str | None = options.get("api_key")
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._drop_after: int | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *scripts: Script) -> SimServer:
        with self._lock:
            self.scripts.extend(scripts)
        return self

    def take_script(self) -> Script:
        with self._lock:
            if not self.scripts:
                return self.default_script
            script = self.scripts[0]
            if script.repeat > 0:
                script.repeat -= 1
            else:
                self.scripts.popleft()
            return script

    def drop_next(self, after_bytes: int) -> None:
        """The next download (of a simulator that serves files) closes its connection after
        ``after_bytes`` body bytes, once."""
        with self._lock:
            self._drop_after = after_bytes

    def take_drop(self) -> int | None:
        """The drop :meth:`drop_next` asked for, consumed (None: none)."""
        with self._lock:
            drop, self._drop_after = self._drop_after, None
            return drop

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and "chat" in r.path]

    def start(self) -> SimServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"sim-{type(self).__name__}")
        self._thread.start()
        return self

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self._lock:
            self._connections.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def stop(self) -> None:
        self.stop_event.set()
        self.shutdown()
        self.server_close()
        # A stopped server drops its open (keep-alive) connections too, as a killed process does;
        # otherwise a pooled client connection would go on being answered after stop().
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A port nothing listens on right now (for connection-refused tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
