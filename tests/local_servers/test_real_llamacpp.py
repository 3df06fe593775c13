"""The manager against a *real* llama-server (the ``llamacpp`` tier: skips without the binary,
mandatory under ``CI=true``). Checks what the simulator stands in for: the fingerprint, the
facts from ``/props`` and ``/slots``, the key check, the process scan, and the states a
starting server goes through."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers.base import free_port
from tests.support.llama_build import binary_for_tests
from tests.support.llama_server import LlamaServer, server_args, start_llama_server
from tests.support.tiny_gguf import make_tiny_gguf
from victor_gui.servers.discovery import find_process_endpoints
from victor_gui.servers.probe import probe_endpoint
from victor_gui.servers.status import Endpoint, EndpointState, ServerKind

pytestmark = pytest.mark.llamacpp


@pytest.fixture(scope="module")
def binary() -> Path:
    return binary_for_tests()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_gguf(tmp_path_factory.mktemp("manager-models") / "tiny.gguf")


@pytest.fixture(scope="module")
def server(binary: Path, model: Path) -> Iterator[LlamaServer]:
    running = start_llama_server(model, binary=binary, ctx=2048)
    yield running
    running.stop()


async def test_real_llamacpp_is_fingerprinted_with_its_facts(client: httpx.AsyncClient,
                                                              server: LlamaServer) -> None:
    status = await probe_endpoint(client, Endpoint(server.base_url))
    assert (status.kind, status.state) == (ServerKind.LLAMACPP, EndpointState.UP)
    assert status.version  # /props build_info
    (loaded,) = status.models
    assert loaded.context_length == 2048 and loaded.size_bytes
    assert status.detail("router_mode") is False


async def test_real_llamacpp_process_is_found_by_the_scan(server: LlamaServer) -> None:
    found = await find_process_endpoints()
    assert any(e.base_url == server.base_url and e.kind_hint is ServerKind.LLAMACPP for e in found)


async def test_real_llamacpp_with_api_key_is_unauthorized(client: httpx.AsyncClient, binary: Path,
                                                          model: Path) -> None:
    locked = await asyncio.to_thread(start_llama_server, model, binary=binary,
                                     extra_args=["--api-key", "sesame"], ready_timeout_s=60)
    try:
        status = await probe_endpoint(client, Endpoint(locked.base_url))
        opened = await probe_endpoint(client, Endpoint(locked.base_url, api_key="sesame"))
    finally:
        locked.stop()
    assert (status.kind, status.state, status.http_status) == (ServerKind.LLAMACPP,
                                                               EndpointState.UNAUTHORIZED, 401)
    assert opened.state is EndpointState.UP


async def test_real_llamacpp_start_goes_down_loading_up(client: httpx.AsyncClient, binary: Path,
                                                        model: Path) -> None:
    port = free_port()
    args = server_args(model, port, ctx=2048, cache_type_k="f16", cache_type_v=None, threads=2,
                       parallel=1, verbose=False, extra_args=())
    proc = await asyncio.create_subprocess_exec(str(binary), *args, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
    seen: list[EndpointState] = []
    try:
        deadline = time.monotonic() + 30
        while not seen or seen[-1] is not EndpointState.UP:
            assert time.monotonic() < deadline, seen
            status = await probe_endpoint(client, Endpoint(f"http://127.0.0.1:{port}"))
            if not seen or seen[-1] is not status.state:
                seen.append(status.state)
            await asyncio.sleep(0.005)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    # Never "not an inference server" or "degraded" on the way; LOADING shows when the 503
    # phase (~0.1-0.3 s) is long enough to be caught.
    assert set(seen) <= {EndpointState.DOWN, EndpointState.LOADING, EndpointState.UP}, seen
    assert seen[-1] is EndpointState.UP
    print("states seen while starting:", [s.value for s in seen])
