"""Reading a GGUF header over HTTP range requests, against a real server on 127.0.0.1."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.servers.base import free_port
from tests.sizing.gguf_factory import Spec, write_gguf
from victor_gui.errors import GGUFError
from victor_gui.sizing.gguf_reader import read_gguf_file, read_gguf_header, read_gguf_url


class FileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, path: Path, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), FileHandler)
        self.path, self.mode = path, mode
        self.ranges: list[str] = []
        self.bytes_sent = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/model.gguf"


class FileHandler(BaseHTTPRequestHandler):
    server: FileServer  # type: ignore[assignment]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        size = srv.path.stat().st_size
        if srv.mode == "404":
            self.send_error(404)
            return
        header = self.headers.get("Range", "")
        srv.ranges.append(header)
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", header)
        if srv.mode == "range" and m:
            start, end = int(m.group(1)), min(int(m.group(2)), size - 1)
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:  # a server (or proxy) that ignores Range and sends the whole file
            start, end = 0, size - 1
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        with srv.path.open("rb") as fh:
            fh.seek(start)
            left = end - start + 1
            try:
                while left > 0:
                    chunk = fh.read(min(left, 64 * 1024))
                    self.wfile.write(chunk)
                    srv.bytes_sent += len(chunk)
                    left -= len(chunk)
            except OSError:
                pass  # the client stopped reading: exactly what a bounded reader does


def serve(path: Path, mode: str) -> Iterator[FileServer]:
    server = FileServer(path, mode)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def size_of(path: Path) -> int:
    return path.stat().st_size


@pytest.fixture
def model(tmp_path: Path) -> Path:
    # ~64 MB of (sparse) weights behind a header with a 5,000-token vocabulary.
    spec = Spec(n_layer=8, n_embd=1024, n_ff=2816, n_head=16, n_head_kv=4, n_vocab=5000, tokens=5000)
    return write_gguf(tmp_path / "model.gguf", spec)


async def test_range_requests_read_only_the_header(model: Path) -> None:
    for server in serve(model, "range"):
        remote = await read_gguf_url(server.url, initial_bytes=16 * 1024)
        local = await read_gguf_file(model)
        assert remote.metadata == local.metadata and remote.tensors == local.tensors
        assert remote.file_size == size_of(model)
        assert len(server.ranges) >= 2  # the range grew at least once
        assert server.bytes_sent < 1 << 20 < size_of(model) // 32


async def test_server_ignoring_range_is_cut_off(model: Path) -> None:
    for server in serve(model, "ignore"):
        header = await read_gguf_header(server.url)
        assert header.tensors and header.architecture == "llama"
        assert server.ranges[0].startswith("bytes=0-")
    # The server was writing a 60+ MB body; the reader stopped after its first megabyte.
    assert server.bytes_sent < size_of(model) // 2


async def test_short_file_over_http_is_truncated_error(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "model.gguf", Spec(), header_only=True)
    path.write_bytes(path.read_bytes()[:500])
    for server in serve(path, "range"):
        with pytest.raises(GGUFError) as info:
            await read_gguf_url(server.url)
        assert info.value.reason == "truncated"


async def test_http_404_and_refused_are_io_errors(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "model.gguf", Spec(), header_only=True)
    for server in serve(path, "404"):
        with pytest.raises(GGUFError, match="HTTP 404") as info:
            await read_gguf_url(server.url)
        assert info.value.reason == "io"
    async with httpx.AsyncClient(timeout=2.0) as client:
        with pytest.raises(GGUFError, match="ConnectError") as info:
            await read_gguf_url(f"http://127.0.0.1:{free_port()}/m.gguf", client=client)
    assert info.value.reason == "io"
