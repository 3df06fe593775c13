"""The simulators themselves are faithful to shared/reference/servers.md: routes, headers,
error shapes, loading behaviour and byte-exact SSE framing (checked with raw HTTP)."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.providers.openai_sims import running
from tests.servers.base import Fault, Script, ScriptedToolCall, free_port

CHAT = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}


def raw_stream(url: str, body: dict) -> bytes:
    with httpx.Client(timeout=5) as client:
        with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
            return b"".join(response.iter_raw())


def test_llamacpp_routes_headers_and_errors() -> None:
    with running("llamacpp", metrics=False) as server, httpx.Client(base_url=server.url, timeout=5) as c:
        health = c.get("/health")
        assert health.json() == {"status": "ok"} and health.headers["server"] == "llama.cpp"
        missing = c.get("/api/version")
        assert missing.status_code == 404
        assert missing.json() == {
            "error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}
        }
        props = c.get("/props").json()
        assert props["build_info"].startswith("b") and "n_ctx" in props["default_generation_settings"]
        assert c.get("/slots").json()[0]["n_ctx"] == 4096
        assert c.get("/metrics").json()["error"]["type"] == "not_supported_error"
        card = c.get("/v1/models").json()["data"][0]
        assert card["owned_by"] == "llamacpp" and card["meta"]["n_ctx_train"] == 32768
        server.loading = True
        for path in ("/health", "/v1/models", "/props"):
            reply = c.get(path)
            assert reply.status_code == 503
            assert reply.json() == {
                "error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}
            }
        assert c.post("/v1/chat/completions", json=CHAT).status_code == 503
        assert c.get("/").headers["content-type"].startswith("text/html")


def test_llamacpp_metrics_when_enabled_and_context_overflow_shape() -> None:
    with running("llamacpp", metrics=True) as server, httpx.Client(base_url=server.url, timeout=5) as c:
        assert "llamacpp:n_tokens_max" in c.get("/metrics").text
        server.script(Script(fault=Fault.CONTEXT_OVERFLOW))
        err = c.post("/v1/chat/completions", json=CHAT).json()["error"]
        assert (
            err["type"] == "exceed_context_size_error" and err["n_ctx"] == 4096 and "n_prompt_tokens" in err
        )


def test_llamacpp_body_errors_and_connection_headers() -> None:
    """Pinned against the real server by the conformance tier; checked here without it."""
    with running("llamacpp") as server, httpx.Client(base_url=server.url, timeout=5) as c:
        server.script(Script(text="kept"))  # rejected requests must not consume it
        bad = c.post("/v1/chat/completions", json={"messages": "hi"})
        assert bad.status_code == 400 and bad.headers["connection"] == "close"
        assert bad.json()["error"] == {
            "code": 400, "message": "Expected 'messages' to be an array", "type": "invalid_request_error"
        }
        broken = c.post("/v1/chat/completions", content=b"{not json")
        assert broken.status_code == 500 and broken.json()["error"]["type"] == "server_error"
        assert broken.json()["error"]["message"].startswith("[json.exception.parse_error.101]")
        ok = c.post("/v1/chat/completions", json=CHAT)
        assert ok.status_code == 200 and ok.headers["keep-alive"] == "timeout=5, max=100"
        assert ok.json()["choices"][0]["message"]["content"] == "kept"
        with c.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as stream:
            assert stream.headers["x-accel-buffering"] == "no"


def test_llamacpp_current_and_old_slot_shapes() -> None:
    with running("llamacpp") as server, httpx.Client(base_url=server.url, timeout=5) as c:
        assert set(c.get("/slots").json()[0]) == {"id", "n_ctx", "speculative", "is_processing"}
        props = c.get("/props").json()
        assert "id" not in props["default_generation_settings"] and props["is_sleeping"] is False
    with running("llamacpp", old_shapes=True) as server, httpx.Client(base_url=server.url, timeout=5) as c:
        assert {"id_task", "params", "next_token"} <= set(c.get("/slots").json()[0])
        assert c.get("/props").json()["default_generation_settings"]["id"] == 0


def test_vllm_routes_and_errors() -> None:
    with running("vllm", api_key="secret") as server, httpx.Client(base_url=server.url, timeout=5) as c:
        assert c.get("/health").status_code == 200 and c.get("/health").content == b""
        assert c.get("/version").json() == {"version": "0.11.0"}
        assert c.get("/nope").json() == {"detail": "Not Found"}
        assert "vllm:kv_cache_usage_perc" in c.get("/metrics").text
        denied = c.post("/v1/chat/completions", json=CHAT)
        assert denied.status_code == 401 and denied.json() == {"error": "Unauthorized"}
        auth = {"Authorization": "Bearer secret"}
        server.script(Script(fault=Fault.UNKNOWN_MODEL))
        err = c.post("/v1/chat/completions", json=CHAT, headers=auth).json()["error"]
        assert err["type"] == "NotFoundError" and "does not exist" in err["message"] and err["code"] == 404


def test_vllm_legacy_flat_error_shape() -> None:
    with running("vllm", legacy_errors=True) as server, httpx.Client(base_url=server.url, timeout=5) as c:
        server.script(Script(fault=Fault.SERVER_ERROR))
        body = c.post("/v1/chat/completions", json=CHAT).json()
        assert body["object"] == "error" and body["type"] == "InternalServerError" and body["code"] == 500


def test_lmstudio_routes() -> None:
    with running("lmstudio") as server, httpx.Client(base_url=server.url, timeout=5) as c:
        odd = c.get("/health")
        assert odd.status_code == 200 and odd.json() == {
            "error": "Unexpected endpoint or method. (GET /health)"
        }
        assert odd.headers["x-powered-by"] == "Express"
        entry = c.get("/api/v0/models").json()["data"][0]
        assert entry["state"] == "loaded" and entry["max_context_length"] == 131072
        assert c.get("/v1/models").json()["data"][0] == {
            "id": "sim-model",
            "object": "model",
            "owned_by": "organization_owner",
        }


@pytest.mark.parametrize("dialect", ["llamacpp", "vllm", "lmstudio"])
def test_sse_framing_is_byte_exact(dialect: str) -> None:
    with running(dialect) as server:
        server.script(
            Script(text="hi there", reasoning="r", tool_calls=[ScriptedToolCall("f", {"a": 1}, id="call_x")])
        )
        raw = raw_stream(server.url, {**CHAT, "stream": True, "stream_options": {"include_usage": True}})
    assert raw.endswith(b"data: [DONE]\n\n")
    events = raw.decode().split("\n\n")[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    payloads = [json.loads(e[6:]) for e in events[:-1]]
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"
    field = "reasoning_content" if dialect == "llamacpp" else "reasoning"
    assert any(field in p["choices"][0]["delta"] for p in payloads if p["choices"])
    first_call = next(
        p["choices"][0]["delta"]["tool_calls"][0]
        for p in payloads
        if p["choices"] and "tool_calls" in p["choices"][0]["delta"]
    )
    assert first_call == {
        "index": 0,
        "id": "call_x",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    assert payloads[-1]["choices"] == [] and "usage" in payloads[-1]
    finish = payloads[-2]
    assert finish["choices"][0]["finish_reason"] == "tool_calls"
    # llama.cpp puts "timings" on the last chunk: the usage chunk when one follows the finish.
    assert "timings" not in finish
    assert ("timings" in payloads[-1]) is (dialect == "llamacpp")
    assert ("system_fingerprint" in finish) is (dialect == "llamacpp")
    # vLLM and LM Studio send "logprobs": null in every chunk choice; llama.cpp leaves it out.
    assert all(("logprobs" in p["choices"][0]) is (dialect != "llamacpp") for p in payloads if p["choices"])


@pytest.mark.parametrize(("dialect", "done"), [("llamacpp", False), ("vllm", True), ("lmstudio", False)])
def test_midstream_error_event_shape(dialect: str, done: bool) -> None:
    with running(dialect) as server:
        server.script(Script(text="abcdefgh", pieces=4, fault=Fault.MIDSTREAM_ERROR))
        raw = raw_stream(server.url, {**CHAT, "stream": True}).decode()
    events = raw.split("\n\n")[:-1]
    errors = [e for e in events if '"error"' in e]
    assert len(errors) == 1 and errors[0].startswith('data: {"error": {')
    assert raw.endswith("data: [DONE]\n\n") is done


def test_module_entry_point_runs_a_simulator() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.servers", "llamacpp", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
