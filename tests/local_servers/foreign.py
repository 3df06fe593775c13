"""Programs that are *not* inference servers, holding a port: an nginx-style HTML site, a JSON
API that happens to serve ``/version`` and ``/api/version``, a TCP service that does not speak
HTTP, and a slow llama.cpp (for the "degraded: slow" state)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, ClassVar

from tests.servers.base import SimHandler, SimServer
from tests.servers.llamacpp import LlamaCppHandler


class HtmlSiteHandler(SimHandler):
    """A web server: HTML on /, nginx's HTML 404 page elsewhere."""

    routes: ClassVar[dict[tuple[str, str], str]] = {("GET", "/"): "index"}

    def extra_headers(self) -> dict[str, str]:
        return {"Server": "nginx/1.24.0"}

    def index(self) -> None:
        self.send_text(200, "<!DOCTYPE html><html><head><title>My blog</title></head><body>Hi</body></html>",
                       content_type="text/html")

    def unknown_route(self, path: str) -> None:
        self.send_text(404, "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found"
                            "</h1></center><hr><center>nginx/1.24.0</center></body></html>",
                       content_type="text/html")


class JsonApiHandler(SimHandler):
    """Some JSON service with its own /version and /api/version (the trap for naive probes)."""

    routes: ClassVar[dict[tuple[str, str], str]] = {
        ("GET", "/"): "index",
        ("GET", "/version"): "version",
        ("GET", "/api/version"): "version",
    }

    def index(self) -> None:
        self.send_json(200, {"name": "inventory-api", "status": "ok"})

    def version(self) -> None:
        self.send_json(200, {"version": "2.1.0"})

    def unknown_route(self, path: str) -> None:
        self.send_json(404, {"message": f"no route {path}"})


class SlowLlamaCppHandler(LlamaCppHandler):
    """llama.cpp whose web UI takes ``slow_s`` to answer."""

    def index(self) -> None:
        time.sleep(float(self.server.options.get("slow_s", 0.3)))
        super().index()


def html_site() -> SimServer:
    return SimServer(HtmlSiteHandler)


def json_api() -> SimServer:
    return SimServer(JsonApiHandler)


def slow_llamacpp(slow_s: float) -> SimServer:
    return SimServer(SlowLlamaCppHandler, slow_s=slow_s)


class GarbageTcpServer:
    """Accepts TCP connections and answers with bytes that are not HTTP, then closes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                try:
                    conn.recv(4096)
                    conn.sendall(b"\x00\x01SSH-2.0-not-http\r\n\xff\xfe")
                except OSError:
                    pass

    def __enter__(self) -> GarbageTcpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
