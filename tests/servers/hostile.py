"""A server of our own that answers fixed bodies per path: for replies of the wrong shape.

Real HTTP over loopback (a threaded stdlib server on 127.0.0.1), every body built by the test
(so bounded in bytes), every request answered at once (so bounded in time). Routes map a path
to ``(status, body, headers)``; ``body`` is bytes, a str, or any JSON value (serialised here).
``RAW`` marks a str body to send as-is with ``application/json`` (e.g. ``"[" * 100_000``, or a
number JSON cannot write such as ``1e400``).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Raw(str):
    """A body sent verbatim with a JSON content type."""


Route = tuple[int, Any, dict[str, str]]


def reply(body: Any, status: int = 200, **headers: str) -> Route:
    return status, body, {k.replace("_", "-"): v for k, v in headers.items()}


def encode(body: Any, headers: dict[str, str]) -> tuple[bytes, str]:
    if isinstance(body, Raw):
        return body.encode(), "application/json"
    if isinstance(body, bytes):
        return body, headers.get("Content-Type", "application/octet-stream")
    if isinstance(body, str):
        return body.encode(), headers.get("Content-Type", "text/plain; charset=utf-8")
    return json.dumps(body).encode(), "application/json; charset=utf-8"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HostileServer  # type: ignore[assignment]

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # stdlib's signature
        pass

    def version_string(self) -> str:
        return self.server.headers.get("Server") or super().version_string()  # one Server header

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        path = self.path.split("?", 1)[0]
        status, body, headers = self.server.routes.get(path, self.server.fallback)
        data, content_type = encode(body, headers)
        self.send_response(status)
        self.send_header("Content-Type", headers.get("Content-Type", content_type))
        self.send_header("Content-Length", str(len(data)))
        for key, value in {**self.server.headers, **headers}.items():
            if key not in ("Content-Type", "Server"):
                self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer


class HostileServer(ThreadingHTTPServer):
    """Fixed replies per path; ``fallback`` for every other path; ``headers`` on every reply."""

    daemon_threads = True

    def __init__(self, routes: dict[str, Route], *, fallback: Route | None = None,
                 headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _Handler)
        self.routes = routes
        self.fallback = fallback or reply("404 page not found", 404)
        self.headers = headers or {}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


@contextmanager
def serving(routes: dict[str, Route], **options: Any) -> Iterator[HostileServer]:
    """Run a :class:`HostileServer` in a thread for the ``with`` block."""
    server = HostileServer(routes, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
