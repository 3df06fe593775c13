"""Hundreds of Ollama endpoints from one process: ``python -m tests.servers.many_ollamas N [DELAY_S]``.

Listens on ``N`` sockets spread over loopback addresses 127.0.0.1–127.0.0.20 (so every
endpoint has its own URL without N ports on one address), answers Ollama's probe routes
after ``DELAY_S`` (default 0) with HTTP/1.1 keep-alive, prints one ``http://host:port`` per
line, then ``ready``, and serves until its stdin closes. Its own process, so its work does not
share the prober's loop.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys

BODIES: dict[str, tuple[bytes, bytes]] = {
    "/": (b"text/plain; charset=utf-8", b"Ollama is running"),
    "/api/version": (b"application/json", json.dumps({"version": "0.5.7"}).encode()),
    "/api/ps": (b"application/json", json.dumps({"models": []}).encode()),
    "/api/tags": (b"application/json", json.dumps({"models": [{"name": "qwen:7b"}]}).encode()),
}
NOT_FOUND = (b"text/plain; charset=utf-8", b"404 page not found")
HOSTS = 20


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > 16384:
                break
            line = head.split(b"\r\n", 1)[0].split()
            path = line[1].decode("latin-1").split("?", 1)[0] if len(line) > 1 else "/"
            for header in head.split(b"\r\n"):
                if header.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(header.split(b":", 1)[1]))
            if delay:
                await asyncio.sleep(delay)
            content_type, body = BODIES.get(path, NOT_FOUND)
            status = b"200 OK" if path in BODIES else b"404 Not Found"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type
                         + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(count: int, delay: float) -> None:
    servers = []
    for i in range(count):
        handler = functools.partial(_serve, delay=delay)
        server = await asyncio.start_server(handler, f"127.0.0.{1 + i % HOSTS}", 0, backlog=64)
        servers.append(server)
        host, port = server.sockets[0].getsockname()[:2]
        print(f"http://{host}:{port}")
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the test ends
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0))
