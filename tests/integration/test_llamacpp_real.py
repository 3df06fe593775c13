"""The real llama-server's routes, readiness and error shapes (raw HTTP, no provider code).

These pin down what the provider adapter and the simulator rely on, measured against the
binary built from llama-cpp-python's vendored llama.cpp (``tests/support/llama_build.py``).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tests.support.llama_requests import Scripted, chat, send
from tests.support.llama_server import LlamaServer
from tests.support.tiny_vocab import build_vocab

pytestmark = pytest.mark.llamacpp

LOADING = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}


def get(server: LlamaServer, path: str) -> object:
    exchange = send(server.base_url, Scripted(path, "GET", path))
    assert exchange.status == 200, exchange.raw
    return exchange.json()


def test_health_answers_503_loading_model_before_200(start_llama, tiny_model) -> None:
    """How the loading phase is observed: the HTTP listener starts before the model loads, and
    the launcher polls /health every 5 ms from process start, keeping each distinct answer. On
    the -O0 build the phase lasts ~0.1-0.3 s (mostly the warm-up decode), so the tiny model is
    enough; a start that was too quick to catch it is retried (twice at most)."""
    for _attempt in range(3):
        server = start_llama(tiny_model())
        seen = [(h.status, h.body) for h in server.health_trace if h.status is not None]
        if (503, LOADING) in seen:
            break
        server.stop()
    assert (503, LOADING) in seen, server.health_trace
    assert seen[-1] == (200, {"status": "ok"})
    assert seen.index((503, LOADING)) < len(seen) - 1
    # Nothing but "loading" and "ok" on the way: no other status, no half-ready state.
    assert {s for s, _ in seen} == {503, 200}


def test_v1_models_lists_the_one_model_with_meta(llama_server: LlamaServer) -> None:
    body = get(llama_server, "/v1/models")
    assert isinstance(body, dict)
    assert body["object"] == "list"
    (card,) = body["data"]
    assert card["id"] == str(llama_server.model)
    assert (card["object"], card["owned_by"]) == ("model", "llamacpp")
    assert isinstance(card["created"], int)
    meta = card["meta"]
    assert meta["n_vocab"] == build_vocab().size == 283
    assert (meta["n_ctx_train"], meta["n_embd"], meta["vocab_type"]) == (4096, 128, 2)
    assert meta["n_ctx"] == 4096  # this build also reports the allocated context
    assert 0 < meta["size"] <= Path(llama_server.model).stat().st_size  # tensor bytes only
    assert isinstance(meta["n_params"], int) and meta["n_params"] > 0
    # Ollama-style listing beside "data" (servers.md trap 2): same model, stub fields.
    (ollama_card,) = body["models"]
    assert ollama_card["model"] == card["id"]
    assert ollama_card["details"]["format"] == "gguf"
    # /models is an alias ("created" is the time of the request, so only the rest must agree).
    alias = get(llama_server, "/models")
    assert isinstance(alias, dict)
    assert alias["data"][0] | {"created": 0} == card | {"created": 0}


def test_props_and_slots_shapes(llama_server: LlamaServer) -> None:
    props = get(llama_server, "/props")
    assert isinstance(props, dict)
    settings = props["default_generation_settings"]
    assert settings["n_ctx"] == 4096  # per slot; one slot here
    assert isinstance(settings["params"]["temperature"], float)
    assert props["total_slots"] == 1
    assert props["model_path"] == str(llama_server.model)
    assert "<tool_call>" in props["chat_template"]
    assert props["chat_template_caps"]["supports_tool_calls"] is True
    assert (props["bos_token"], props["eos_token"]) == ("<|endoftext|>", "<|im_end|>")
    assert re.fullmatch(r"b\d+-\w+", props["build_info"])
    assert props["modalities"] == {"vision": False, "video": False, "audio": False}
    assert props["endpoint_slots"] is True and props["endpoint_metrics"] is False
    assert props["is_sleeping"] is False

    slots = get(llama_server, "/slots")
    assert isinstance(slots, list) and len(slots) == 1
    assert slots[0]["id"] == 0 and slots[0]["n_ctx"] == 4096
    assert slots[0]["is_processing"] is False


def test_server_header_on_every_reply(llama_server: LlamaServer) -> None:
    for req in (Scripted("h", "GET", "/health"), Scripted("404", "GET", "/nope"),
                Scripted("chat", "POST", "/v1/chat/completions", chat(max_tokens=1)),
                Scripted("bad", "POST", "/v1/chat/completions", {"messages": "x"})):
        assert send(llama_server.base_url, req).headers["server"] == "llama.cpp", req.name


def test_unknown_route_and_routes_this_build_lacks(llama_server: LlamaServer) -> None:
    not_found = {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}
    # "/" is 404 too: the binary is built without the web UI (LLAMA_BUILD_UI=OFF); a stock build
    # serves HTML there. /api/tags and /api/version are not routed in this version.
    for path in ("/no/such/route", "/", "/api/tags", "/api/version", "/version"):
        exchange = send(llama_server.base_url, Scripted(path, "GET", path))
        assert (exchange.status, exchange.json()) == (404, not_found), path
        assert exchange.content_type == "application/json"


def test_error_bodies_for_bad_requests(llama_server: LlamaServer) -> None:
    url = llama_server.base_url
    bad = send(url, Scripted("x", "POST", "/v1/chat/completions", {"messages": "x"}))
    assert (bad.status, bad.json()) == (400, {"error": {
        "code": 400, "message": "Expected 'messages' to be an array", "type": "invalid_request_error"}})
    # Unparseable JSON is a 500 server_error (not a 400) in this version.
    broken = send(url, Scripted("x", "POST", "/v1/chat/completions", raw=b"{not json"))
    assert broken.status == 500
    assert broken.json()["error"]["type"] == "server_error"
    assert "parse error" in broken.json()["error"]["message"]
    metrics = send(url, Scripted("m", "GET", "/metrics"))
    assert metrics.status == 501
    assert metrics.json()["error"]["type"] == "not_supported_error"
    assert "--metrics" in metrics.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_over_context_is_400_exceed_context_size_error(start_llama, tiny_model, stream: bool) -> None:
    server = start_llama(tiny_model(), ctx=512)
    req = Scripted("big", "POST", "/v1/chat/completions",
                   chat([{"role": "user", "content": "hi " * 600}], stream=stream))
    exchange = send(server.base_url, req)
    # Even with stream=true the overflow is a plain JSON 400, before any SSE starts.
    assert exchange.status == 400
    assert exchange.content_type == "application/json"
    error = exchange.json()["error"]
    assert error["type"] == "exceed_context_size_error"
    assert error["code"] == 400
    assert error["n_ctx"] == 512
    assert error["n_prompt_tokens"] > 512
    assert error["message"] == (f"request ({error['n_prompt_tokens']} tokens) exceeds the available "
                                "context size (512 tokens), try increasing it")


def _http(port: int, body: bytes) -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


def test_connection_is_closed_after_a_stream_despite_keep_alive(llama_server: LlamaServer) -> None:
    """A client must not reuse the connection a stream came on: the server advertises
    Keep-Alive but closes it, and a request sent on it gets no answer at all."""
    body = b'{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"temperature":0,"stream":true}'
    with socket.create_connection(("127.0.0.1", llama_server.port), timeout=20) as sock:
        sock.sendall(_http(llama_server.port, body))
        data = b""
        while not (b"[DONE]" in data and data.endswith(b"\r\n0\r\n\r\n")):
            chunk = sock.recv(65536)
            assert chunk, "server closed before the stream ended"
            data += chunk
        assert b"Keep-Alive: timeout=5" in data
        sock.sendall(_http(llama_server.port, body.replace(b',"stream":true', b"")))
        assert sock.recv(65536) == b""  # EOF: the second request is never answered
