"""Simulator conformance: the same scripted requests against the real llama-server and the
project's llama.cpp simulator (tests/servers/llamacpp.py), compared by *shape* -- status,
headers, JSON keys and types, contract values (object, finish_reason, error type/message),
SSE event order and terminal events.

Every difference found is listed in KNOWN_DIFFERENCES with the request it shows up in. The test
fails on a difference not listed (the simulator drifted) and on a listed one that is gone (it was
fixed: delete the entry), so the list stays the true account of where the simulator deviates.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ModelFactory
from tests.servers import llamacpp as sim_llamacpp
from tests.servers.base import Fault, Script, ScriptedToolCall
from tests.support.conformance import compare_exchanges
from tests.support.llama_requests import CONFORMANCE_REQUESTS, Exchange, Scripted, chat, send
from tests.support.llama_server import LlamaServer, start_llama_server

pytestmark = pytest.mark.llamacpp


@pytest.fixture(scope="module")
def fresh_server(llama_binary: Path, tiny_model: ModelFactory, llama_logs: Path) -> Iterator[LlamaServer]:
    """A server no other test has talked to: what ``/slots`` and ``/props`` report depends on
    the requests a server has already served (a used slot lists its last task's fields), and
    the shared server's history depends on which tests ran before this module."""
    server = start_llama_server(tiny_model(), binary=llama_binary, log_dir=llama_logs)
    yield server
    server.stop()

# What the simulator is told to answer, per request, so that it mirrors the real server's reply
# to the same request (the tiny model answers short text, or one get_weather call with tools).
SCRIPTS: dict[str, Script] = {
    "chat": Script(text="tg abc", pieces=3),
    "chat_stream": Script(text="tg abc", pieces=3),
    "chat_stream_usage": Script(text="tg abc", pieces=3),
    "tools": Script(text="", tool_calls=[ScriptedToolCall("get_weather", {"city": ""})]),
    "tools_stream": Script(text="", tool_calls=[ScriptedToolCall("get_weather", {"city": ""})]),
    "context_overflow": Script(fault=Fault.CONTEXT_OVERFLOW),
    "context_overflow_stream": Script(fault=Fault.CONTEXT_OVERFLOW),
    "length": Script(text="t", pieces=1, finish_reason="length"),
    "length_stream": Script(text="t", pieces=1, finish_reason="length"),
}
# Simulator options per request, for server settings the real one has (no --mmproj: no vision).
SIM_OPTIONS: dict[str, dict[str, Any]] = {"image_without_mmproj": {"vision": False}}

# Found against llama-server from llama-cpp-python 0.3.36 (llama.cpp 0.5.0-dev). An entry ending
# in "..." matches any difference line that starts with the rest (long key lists). Each entry says
# why the simulator cannot sensibly follow; empty means the simulator answers every request here
# like the real server.
KNOWN_DIFFERENCES: dict[str, list[str]] = {}


def _matches(line: str, entry: str) -> bool:
    return line == entry or (entry.endswith("...") and line.startswith(entry[:-3]))


def sim_exchange(req: Scripted) -> Exchange | httpx.TransportError:
    """The simulator's reply, from a fresh simulator (a request the simulator rejects early would
    otherwise leave its script queued for the next one)."""
    server = sim_llamacpp.make_server(**SIM_OPTIONS.get(req.name, {}))
    if req.name in SCRIPTS:
        server.script(SCRIPTS[req.name])
    with server:
        try:
            return send(server.url, req, timeout_s=10)
        except httpx.TransportError as exc:
            return exc


@pytest.mark.parametrize("req", CONFORMANCE_REQUESTS, ids=lambda r: r.name)
def test_simulator_answers_like_the_real_server(fresh_server: LlamaServer, req: Scripted) -> None:
    real = send(fresh_server.base_url, req)
    sim = sim_exchange(req)
    found = compare_exchanges(real, sim)
    known = KNOWN_DIFFERENCES.get(req.name, [])
    new = [d for d in found if not any(_matches(d, k) for k in known)]
    gone = [k for k in known if not any(_matches(d, k) for d in found)]
    assert not new, f"simulator differs from llama-server ({req.name}); fix or list:\n" + "\n".join(new)
    where = f"KNOWN_DIFFERENCES[{req.name!r}]"
    assert not gone, f"fixed in the simulator; delete from {where}:\n" + "\n".join(gone)


_STREAM_BODY = b'{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"temperature":0,"stream":true}'
_CHAT_BODY = b'{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"temperature":0}'


def _post(body: bytes) -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


def _reply_complete(data: bytes) -> bool:
    """Whether ``data`` holds one whole HTTP reply (Content-Length or chunked framing)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return len(body) >= int(match.group(1)) if match else body.endswith(b"\r\n0\r\n\r\n")


def _second_request_gets(port: int, first: bytes) -> bytes:
    """Send ``first`` on a new connection, read its whole reply, send a second request on the
    same connection and return what that got within 5 s (b"" = the server had closed it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(first)
        data = b""
        while not _reply_complete(data):
            chunk = sock.recv(65536)
            if not chunk:
                return b"closed during the first reply"
            data += chunk
        try:
            sock.sendall(_post(_CHAT_BODY))
            return sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            return b""


# first request -> what a second request on the same connection gets
REUSE_CASES = {
    # Closed after a stream, although the reply said Keep-Alive: a pooled client's next request
    # can fail with "Server disconnected without sending a response".
    "after_stream": (_post(_STREAM_BODY), b""),
    # Open after an error reply, although the reply said Connection: close.
    "after_error": (_post(b'{"messages":"hi"}'), b"HTTP/1.1 200"),
    "after_whole_reply": (_post(_CHAT_BODY), b"HTTP/1.1 200"),
}


@pytest.mark.parametrize("case", REUSE_CASES)
def test_connection_reuse_like_the_real_server(llama_server: LlamaServer, case: str) -> None:
    first, expected = REUSE_CASES[case]
    real = _second_request_gets(llama_server.port, first)
    assert real.startswith(expected) and (expected or real == b""), real[:80]
    server = sim_llamacpp.make_server()
    server.script(Script(text="ab", pieces=2), Script(text="ab", pieces=2))
    with server:
        got = _second_request_gets(server.port, first)
    assert got.startswith(expected) and (expected or got == b""), got[:80]


def _metric_lines(text: str) -> list[str]:
    """The HELP/TYPE lines and metric names of a Prometheus text body (values vary)."""
    return [line if line.startswith("#") else line.split(" ", 1)[0] for line in text.splitlines() if line]


def test_metrics_like_the_real_server(start_llama, tiny_model) -> None:  # type: ignore[no-untyped-def]
    real_server = start_llama(tiny_model(), extra_args=["--metrics"])
    real = httpx.get(real_server.base_url + "/metrics", timeout=10)
    with sim_llamacpp.make_server(metrics=True) as server:
        sim = httpx.get(server.url + "/metrics", timeout=5)
    assert (sim.status_code, sim.headers["content-type"]) == (real.status_code, real.headers["content-type"])
    assert "process-start-time-unix" in real.headers and "process-start-time-unix" in sim.headers
    assert _metric_lines(sim.text) == _metric_lines(real.text)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_reply_names_the_loaded_model_not_the_requested_one(llama_server: LlamaServer, stream: bool) -> None:
    """Single-model mode ignores the request's ``model``: replies name the server's own model."""
    body = chat(model="gpt-4", max_tokens=2, stream=stream)
    req = Scripted("other_model", "POST", "/v1/chat/completions", body)

    def named(exchange: Exchange) -> set[str]:
        return {p["model"] for p in exchange.event_payloads()} if stream else {exchange.json()["model"]}

    assert named(send(llama_server.base_url, req)) == {str(llama_server.model)}
    with sim_llamacpp.make_server(model="sim-model") as server:
        assert named(send(server.url, req, timeout_s=10)) == {"sim-model"}
