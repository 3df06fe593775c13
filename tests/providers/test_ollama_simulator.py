"""The Ollama simulator itself, checked against servers.md §1 with a raw HTTP client: if these
drift, every provider test above proves less."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.servers.base import Fault, Script, ScriptedToolCall, free_port
from tests.servers.ollama import BUSY, BUSY_MESSAGE, OllamaServer, make_server


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with make_server(models=[{"name": "plain", "capabilities": ("completion",)}]) as srv:
        yield srv


@pytest.fixture
def client(server: OllamaServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as c:
        yield c


def test_fingerprint_routes(client: httpx.Client) -> None:
    root = client.get("/")
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert root.headers["content-type"].startswith("text/plain") and "server" not in root.headers
    assert client.head("/").status_code == 200
    assert client.get("/api/version").json() == {"version": "0.33.0"}
    missing = client.get("/version")
    assert (missing.status_code, missing.text) == (404, "404 page not found")  # gin's plain text
    wrong = client.post("/api/tags")
    assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")


def test_stream_is_byte_exact_ndjson(server: OllamaServer) -> None:
    server.script(Script(text="a <b> & c", reasoning="think", pieces=1,
                         tool_calls=[ScriptedToolCall("f", {"x": 1}, id="call_abcd1234")]))
    chunks: list[bytes] = []
    with httpx.Client(base_url=server.url, timeout=5) as c, c.stream("POST", "/api/chat", json={
            "model": "sim-model", "think": True, "messages": [{"role": "user", "content": "hi"}]}) as r:
        assert r.headers["content-type"] == "application/x-ndjson"
        chunks = list(r.iter_raw())
    body = b"".join(chunks)
    lines = body.split(b"\n")
    assert lines[-1] == b"" and all(lines[:-1])  # every object ends with exactly one \n
    assert b"\\u003cb\\u003e \\u0026 c" in body  # Go's json.Marshal escapes < > &
    objects = [json.loads(line) for line in lines[:-1]]
    assert [o["done"] for o in objects] == [False] * (len(objects) - 1) + [True]
    assert objects[0]["message"] == {"role": "assistant", "content": "", "thinking": "th"}
    calls = [o["message"]["tool_calls"] for o in objects if "tool_calls" in o["message"]]
    assert calls == [[{"id": "call_abcd1234", "function": {"index": 0, "name": "f", "arguments": {"x": 1}}}]]
    final = objects[-1]
    assert list(final)[:5] == ["model", "created_at", "message", "done_reason", "done"]  # Go field order
    assert final["message"] == {"role": "assistant", "content": ""}
    assert {"total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
            "eval_duration"} <= set(final)
    assert final["created_at"].endswith("Z") and "T" in final["created_at"]


def test_non_stream_reply_and_length_stop(client: httpx.Client) -> None:
    r = client.post("/api/chat", json={"model": "sim-model", "stream": False, "options": {"num_predict": 2},
                                       "messages": [{"role": "user", "content": "hi"}]})
    data = r.json()
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert data["done"] is True and data["done_reason"] == "length"
    assert data["message"]["content"] == "Hello from"


def test_errors_have_ollamas_shapes(server: OllamaServer, client: httpx.Client) -> None:
    msg = [{"role": "user", "content": "hi"}]
    r = client.post("/api/chat", json={"model": "ghost", "messages": msg})
    assert (r.status_code, r.json()) == (404, {"error": 'model "ghost" not found, try pulling it first'})
    r = client.post("/api/show", json={"model": "ghost"})
    assert (r.status_code, r.json()) == (404, {"error": "model 'ghost' not found"})
    r = client.post("/api/chat", json={"model": "plain", "messages": msg, "tools": [{"type": "function"}]})
    assert r.status_code == 400 and r.json()["error"].endswith("does not support tools")
    r = client.post("/api/chat", json={"model": "plain", "messages": msg, "think": True})
    assert (r.status_code, r.json()) == (400, {"error": '"plain" does not support thinking'})
    server.script(Script(fault=BUSY))
    r = client.post("/api/chat", json={"model": "sim-model", "messages": msg})
    assert (r.status_code, r.json()["error"]) == (503, BUSY_MESSAGE)
    assert "again.  maximum" in r.text  # the double space is Ollama's
    server.script(Script(fault=Fault.MIDSTREAM_ERROR, fail_after=1))
    r = client.post("/api/chat", json={"model": "sim-model", "messages": msg})
    assert r.status_code == 200 and json.loads(r.text.splitlines()[-1]) == {
        "error": "an error was encountered while running the model: unexpected EOF"}
    r = client.post("/api/chat", content=b"")
    assert (r.status_code, r.json()) == (400, {"error": "missing request body"})


def test_host_check_answers_bare_403(client: httpx.Client) -> None:
    for host, status in (("evil.example.com", 403), ("localhost:11434", 200), ("box.local", 200),
                         ("192.168.1.20", 200), ("[::1]:11434", 200)):
        r = client.get("/", headers={"Host": host})
        assert r.status_code == status, host
        if status == 403:
            assert r.content == b""


def test_ps_load_unload_and_keep_alive(client: httpx.Client) -> None:
    assert client.get("/api/ps").json() == {"models": []}
    r = client.post("/api/chat", json={"model": "sim-model", "messages": [], "keep_alive": -1})
    assert r.json()["done_reason"] == "load" and r.json()["done"] is True
    (entry,) = client.get("/api/ps").json()["models"]
    assert entry["name"] == "sim-model:latest" and entry["size_vram"] == entry["size"]
    assert entry["expires_at"].startswith("2318") and entry["context_length"] == 4096
    r = client.post("/api/generate", json={"model": "sim-model", "keep_alive": 0})
    assert r.json()["done_reason"] == "unload" and "response" in r.json()
    assert client.get("/api/ps").json() == {"models": []}


def test_tags_and_show_shapes(client: httpx.Client) -> None:
    models = client.get("/api/tags").json()["models"]
    assert [m["name"] for m in models] == ["sim-model:latest", "plain:latest"]
    details = models[0]["details"]
    assert details["format"] == "gguf" and details["quantization_level"] == "Q4_K_M"
    show = client.post("/api/show", json={"model": "sim-model"}).json()
    arch = show["model_info"]["general.architecture"]
    assert show["model_info"][f"{arch}.context_length"] == 131072
    assert "vision" in show["capabilities"]


def test_pull_progress_and_delete(client: httpx.Client) -> None:
    with client.stream("POST", "/api/pull", json={"model": "tinyllama"}) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line]
    statuses = [line["status"] for line in lines]
    assert statuses[0] == "pulling manifest" and statuses[-3:] == [
        "verifying sha256 digest", "writing manifest", "success"]
    progress = [line for line in lines if "total" in line]
    assert "completed" not in progress[0]  # absent until bytes arrive
    assert progress[3]["completed"] == progress[3]["total"]
    assert "tinyllama:latest" in [m["name"] for m in client.get("/api/tags").json()["models"]]
    with client.stream("POST", "/api/pull", json={"model": "nonexistent"}) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert r.status_code == 200 and lines == [{"status": "pulling manifest"},
                                              {"error": "pull model manifest: file does not exist"}]
    r = client.request("DELETE", "/api/delete", json={"model": "tinyllama"})
    assert (r.status_code, r.content) == (200, b"")
    r = client.request("DELETE", "/api/delete", json={"model": "tinyllama"})
    assert (r.status_code, r.json()) == (404, {"error": "model 'tinyllama' not found"})


def test_utf8_split_fault_cuts_inside_a_character(server: OllamaServer) -> None:
    server.script(Script(text="é", fault=Fault.UTF8_SPLIT))
    with httpx.Client(base_url=server.url, timeout=5) as c, c.stream("POST", "/api/chat", json={
            "model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}) as r:
        raw = list(r.iter_raw())
    assert any(part.endswith(b"\xc3") for part in raw)  # the first half of "é" alone
    assert json.loads(b"".join(raw).split(b"\n")[0])["message"]["content"] == "é"


def test_command_line_entry_point() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.servers", "ollama", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert r.text == "Ollama is running"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
