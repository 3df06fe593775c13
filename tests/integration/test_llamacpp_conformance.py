"""Simulator conformance: the same scripted requests against the real llama-server and the
project's llama.cpp simulator (tests/servers/llamacpp.py), compared by *shape* -- status,
headers, JSON keys and types, contract values (object, finish_reason, error type/message),
SSE event order and terminal events.

Every difference found is listed in KNOWN_DIFFERENCES with the request it shows up in. The test
fails on a difference not listed (the simulator drifted) and on a listed one that is gone (it was
fixed: delete the entry), so the list stays the true account of where the simulator deviates.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.servers import llamacpp as sim_llamacpp
from tests.servers.base import Fault, Script, ScriptedToolCall
from tests.support.conformance import compare_exchanges
from tests.support.llama_requests import CONFORMANCE_REQUESTS, Exchange, Scripted, send
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llamacpp

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
}

# Found against llama-server from llama-cpp-python 0.3.36 (llama.cpp 0.5.0-dev). An entry ending
# in "..." matches any difference line that starts with the rest (long key lists).
_STREAM_LOGPROBS = [  # the simulator adds "logprobs": null to every chunk choice; llama.cpp omits it
    "<role>.choices[]: extra key 'logprobs'",
]
_ERROR_CLOSE = "header connection: 'close' != None"  # llama.cpp sends Connection: close on errors
_NO_ACCEL = "header x-accel-buffering: 'no' != None"  # llama.cpp sends X-Accel-Buffering: no on SSE
KNOWN_DIFFERENCES: dict[str, list[str]] = {
    "models": [
        "$.models[]: missing keys 'description', 'tags', 'parameters'",
        "$.models[].details: missing keys 'parent_model', 'family', 'families', 'parameter_size', "
        "'quantization_level'",
        "$.data[]: missing keys 'aliases', 'tags'",
        "$.data[].meta: missing keys 'n_ctx', 'ftype'",
    ],
    "props": [
        "$: missing keys 'model_ftype', 'media_marker', 'ui', 'ui_settings', 'chat_template_caps', "
        "'is_sleeping', 'cors_proxy_enabled'",
        "$.default_generation_settings: extra key 'id'",
        "$.default_generation_settings.params: missing keys 'seed', ...",  # ~40 sampling settings
        "$.modalities: missing key 'video'",
    ],
    "slots": ["$[]: extra keys 'id_task', 'params', 'next_token'"],  # /slots is 4 keys per slot now
    "unknown_route": [_ERROR_CLOSE],
    "metrics_disabled": [_ERROR_CLOSE],
    "chat_stream": [
        _NO_ACCEL, *_STREAM_LOGPROBS, "<content>.choices[]: extra key 'logprobs'",
        "<finish:stop>.choices[]: extra key 'logprobs'",
    ],
    "chat_stream_usage": [
        _NO_ACCEL, *_STREAM_LOGPROBS, "<content>.choices[]: extra key 'logprobs'",
        "<finish:stop>.choices[]: extra key 'logprobs'",
        # with include_usage llama.cpp moves "timings" from the finish chunk to the usage chunk
        "<finish:stop>: extra key 'timings'",
        "<usage>: missing key 'timings'",
    ],
    "tools_stream": [
        _NO_ACCEL, *_STREAM_LOGPROBS, "<tool_call_start>.choices[]: extra key 'logprobs'",
        "<tool_call_args>.choices[]: extra key 'logprobs'",
        "<finish:tool_calls>.choices[]: extra key 'logprobs'",
    ],
    "context_overflow": [_ERROR_CLOSE],
    "context_overflow_stream": [_ERROR_CLOSE],
    # The simulator's chat handler raises AttributeError on a non-list "messages" and drops the
    # connection; llama.cpp answers 400 "Expected 'messages' to be an array".
    "messages_not_array": ["no reply: RemoteProtocolError: Server disconnected without sending a response."],
    # Unparseable JSON: llama.cpp answers 500 server_error ("[json.exception.parse_error.101] ...");
    # the simulator ignores the body and replies 200 with a completion.
    "malformed_json": [
        "status: 500 != 200", _ERROR_CLOSE, "$: missing key 'error'",
        "$: extra keys 'id', 'object', 'created', 'model', 'system_fingerprint', 'choices', 'usage', "
        "'timings'",
    ],
}


def _matches(line: str, entry: str) -> bool:
    return line == entry or (entry.endswith("...") and line.startswith(entry[:-3]))


def sim_exchange(req: Scripted) -> Exchange | httpx.TransportError:
    """The simulator's reply, from a fresh simulator (a request the simulator rejects early would
    otherwise leave its script queued for the next one)."""
    server = sim_llamacpp.make_server()
    if req.name in SCRIPTS:
        server.script(SCRIPTS[req.name])
    with server:
        try:
            return send(server.url, req, timeout_s=10)
        except httpx.TransportError as exc:
            return exc


@pytest.mark.parametrize("req", CONFORMANCE_REQUESTS, ids=lambda r: r.name)
def test_simulator_answers_like_the_real_server(llama_server: LlamaServer, req: Scripted) -> None:
    real = send(llama_server.base_url, req)
    sim = sim_exchange(req)
    found = compare_exchanges(real, sim)
    known = KNOWN_DIFFERENCES.get(req.name, [])
    new = [d for d in found if not any(_matches(d, k) for k in known)]
    gone = [k for k in known if not any(_matches(d, k) for d in found)]
    assert not new, f"simulator differs from llama-server ({req.name}); fix or list:\n" + "\n".join(new)
    where = f"KNOWN_DIFFERENCES[{req.name!r}]"
    assert not gone, f"fixed in the simulator; delete from {where}:\n" + "\n".join(gone)


def _reuse_after_stream(port: int) -> bytes:
    """Run a stream to its end on one connection, send a second request on it, return what the
    second request got within 5 s (b"" = the server had closed the connection)."""
    body = b'{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"temperature":0,"stream":true}'
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while not (b"[DONE]" in data and data.endswith(b"\r\n0\r\n\r\n")):
            chunk = sock.recv(65536)
            if not chunk:
                return b"closed during the stream"
            data += chunk
        sock.sendall(request)
        try:
            return sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return b""


def test_connection_reuse_after_a_stream(llama_server: LlamaServer) -> None:
    """llama-server closes the connection after a stream (Keep-Alive header notwithstanding),
    so a pooled client's next request fails with "Server disconnected". KNOWN DIFFERENCE: the
    simulator keeps the connection open and answers the second request."""
    assert _reuse_after_stream(llama_server.port) == b""
    server = sim_llamacpp.make_server()
    server.script(Script(text="ab", pieces=2), Script(text="ab", pieces=2))
    with server:
        reply = _reuse_after_stream(server.port)
    assert reply.startswith(b"HTTP/1.1 200"), "the simulator now closes too: make this test strict"
