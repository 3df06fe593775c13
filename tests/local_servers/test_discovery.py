"""Discovery: candidates from defaults, the seed's variables, the user and server processes; one
concurrent sweep over them."""

from __future__ import annotations

import os
import time

import httpx
import psutil

from tests.servers import llamacpp, lmstudio, ollama, vllm
from tests.servers.base import free_port
from tests.support.wine_gaps import wine_gap
from victor_gui.servers.discovery import (
    ListeningProcess,
    candidate_endpoints,
    discover,
    env_endpoints,
    find_process_endpoints,
    match_server_process,
    process_endpoints,
    server_root,
)
from victor_gui.servers.status import Endpoint, EndpointState, ServerKind


def test_env_endpoints_follow_the_seed_variables() -> None:
    env = {
        "OLLAMA_HOST": "0.0.0.0",
        "OLLAMA_ENDPOINTS": "gpu-box:11434, http://10.0.0.5",
        "VICTOR_LM_STUDIO_HOST": "127.0.0.1:4321",
        "LMSTUDIO_ENDPOINTS": "http://studio.local:1234/v1",
        "VICTOR_VLLM_HOST": "http://127.0.0.1:9000/v1",
        "VICTOR_LLAMACPP_HOST": "localhost:9090",
    }
    got = [(e.base_url, e.kind_hint, e.source) for e in env_endpoints(env)]
    assert got == [
        ("http://gpu-box:11434", ServerKind.OLLAMA, "env:OLLAMA_ENDPOINTS"),
        ("http://10.0.0.5:80", ServerKind.OLLAMA, "env:OLLAMA_ENDPOINTS"),  # http:// without port: 80
        ("http://127.0.0.1:11434", ServerKind.OLLAMA, "env:OLLAMA_HOST"),  # 0.0.0.0 is reached on loopback
        ("http://127.0.0.1:4321", ServerKind.LMSTUDIO, "env:VICTOR_LM_STUDIO_HOST"),
        ("http://studio.local:1234", ServerKind.LMSTUDIO, "env:LMSTUDIO_ENDPOINTS"),
        ("http://127.0.0.1:9000", ServerKind.VLLM, "env:VICTOR_VLLM_HOST"),
        ("http://localhost:9090", ServerKind.LLAMACPP, "env:VICTOR_LLAMACPP_HOST"),
    ]


def test_candidates_user_first_then_env_then_defaults_without_duplicates() -> None:
    env = {"OLLAMA_HOST": "127.0.0.1:11434", "VICTOR_VLLM_HOST": "127.0.0.1:9000", "VLLM_API_KEY": "vk"}
    found = candidate_endpoints(["http://127.0.0.1:7000/v1/"], env=env)
    assert [(e.base_url, e.source) for e in found] == [
        ("http://127.0.0.1:7000", "user"),
        ("http://127.0.0.1:11434", "env:OLLAMA_HOST"),  # the default Ollama entry is a duplicate
        ("http://127.0.0.1:9000", "env:VICTOR_VLLM_HOST"),
        ("http://127.0.0.1:1234", "default"),
        ("http://127.0.0.1:8000", "default"),
        ("http://127.0.0.1:8080", "default"),
    ]
    keys = {e.base_url: e.api_key for e in found}
    assert keys["http://127.0.0.1:9000"] == "vk" and keys["http://127.0.0.1:8000"] == "vk"
    assert keys["http://127.0.0.1:11434"] is None
    assert "vk" not in repr(found)  # keys stay out of reprs (logs)


def test_server_root() -> None:
    assert server_root("127.0.0.1:8080/v1/") == "http://127.0.0.1:8080"
    assert server_root("http://h:1/proxy/ollama") == "http://h:1/proxy/ollama"


def test_match_server_process() -> None:
    assert match_server_process("ollama", ["/usr/bin/ollama", "serve"]) is ServerKind.OLLAMA
    # Ollama's per-model runners listen on random ports but are not endpoints.
    assert match_server_process("ollama", ["/usr/bin/ollama", "runner", "--port", "39011"]) is None
    assert match_server_process("llama-server", ["llama-server", "-m", "m.gguf"]) is ServerKind.LLAMACPP
    assert match_server_process("LM Studio", ["/Applications/LM Studio.app/x"]) is ServerKind.LMSTUDIO
    assert match_server_process("llmster", ["llmster"]) is ServerKind.LMSTUDIO
    assert match_server_process("python3.12", ["python3", "-m", "vllm.entrypoints.openai.api_server"]) is (
        ServerKind.VLLM)
    assert match_server_process("vllm", ["/venv/bin/vllm", "serve", "Qwen/Qwen3-8B"]) is ServerKind.VLLM
    assert match_server_process("python3", ["python3", "app.py"]) is None
    assert match_server_process("nginx", ["nginx"]) is None


def test_process_endpoints_map_wildcard_binds_to_loopback() -> None:
    found = [ListeningProcess(1, "llama-server", ServerKind.LLAMACPP, 9999, "0.0.0.0"),
             ListeningProcess(2, "ollama", ServerKind.OLLAMA, 11500, "::1")]
    assert [(e.base_url, e.source) for e in process_endpoints(found)] == [
        ("http://127.0.0.1:9999", "process:llama-server"), ("http://[::1]:11500", "process:ollama")]


@wine_gap("iphlpapi reports owning pid 0 for every socket, so psutil cannot tie a port to a process")
async def test_process_scan_finds_a_listening_server_process() -> None:
    # This test process hosts a llama.cpp simulator; a matcher that takes our own pid for a
    # server process proves the psutil path (listing listening sockets of a process) end to end.
    me = os.getpid()
    with llamacpp.make_server() as server:
        found = await find_process_endpoints(lambda p: ServerKind.LLAMACPP if p.pid == me else None)
    assert any(e.base_url == server.url and e.kind_hint is ServerKind.LLAMACPP for e in found)


async def test_process_scan_fails_soft() -> None:
    def exploding(proc: psutil.Process) -> ServerKind | None:
        raise psutil.AccessDenied(proc.pid)

    assert await find_process_endpoints(exploding) == []


async def test_discover_all_kinds_from_env_concurrently(client: httpx.AsyncClient) -> None:
    with ollama.make_server() as ol, lmstudio.make_server() as lms, vllm.make_server() as vl, \
            llamacpp.make_server() as lc:
        env = {"OLLAMA_HOST": ol.url, "VICTOR_LM_STUDIO_HOST": lms.url, "VICTOR_VLLM_HOST": vl.url,
               "VICTOR_LLAMACPP_HOST": lc.url}
        dead = [f"http://127.0.0.1:{free_port()}" for _ in range(10)]
        start = time.perf_counter()
        statuses = await discover(client, dead, env=env, include_defaults=False, scan_processes=False)
        elapsed = time.perf_counter() - start
    by_url = {s.base_url: s for s in statuses}
    assert [by_url[s.url].kind for s in (ol, lms, vl, lc)] == [
        ServerKind.OLLAMA, ServerKind.LMSTUDIO, ServerKind.VLLM, ServerKind.LLAMACPP]
    assert all(by_url[u].state is EndpointState.DOWN for u in dead)
    assert elapsed < 1.5  # concurrent: well under one connect timeout, not 14 probes in a row


@wine_gap("iphlpapi reports owning pid 0 for every socket, so psutil cannot tie a port to a process")
async def test_discover_drops_process_ports_that_are_not_inference_servers(
        client: httpx.AsyncClient) -> None:
    from tests.local_servers.foreign import html_site

    me = os.getpid()
    with html_site() as site, vllm.make_server() as vl:
        statuses = await discover(client, [], env={}, include_defaults=False,
                                  matcher=lambda p: ServerKind.VLLM if p.pid == me else None)
    urls = {s.base_url for s in statuses}
    assert vl.url in urls and site.url not in urls


async def test_user_endpoint_object_keeps_its_key(client: httpx.AsyncClient) -> None:
    with vllm.make_server(api_key="k1") as vl:
        (status,) = await discover(client, [Endpoint(vl.url, ServerKind.VLLM, "user", "k1")], env={},
                                   include_defaults=False, scan_processes=False)
    assert status.state is EndpointState.UP
