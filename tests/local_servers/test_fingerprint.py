"""Fingerprinting against the simulators: every kind and state, and the traps of servers.md §0."""

from __future__ import annotations

import httpx
import pytest

from tests.local_servers.foreign import GarbageTcpServer, html_site, json_api
from tests.servers import llamacpp, lmstudio, ollama, vllm
from tests.servers.base import free_port
from victor_gui.servers.fingerprint import fetch, fingerprint
from victor_gui.servers.probe import probe_endpoint
from victor_gui.servers.status import Endpoint, EndpointState, ServerKind


@pytest.mark.parametrize(
    ("factory", "kind", "version"),
    [
        (ollama.make_server, ServerKind.OLLAMA, "0.33.0"),
        (lmstudio.make_server, ServerKind.LMSTUDIO, None),
        (vllm.make_server, ServerKind.VLLM, "0.11.0"),
        (llamacpp.make_server, ServerKind.LLAMACPP, "b6500-1a2b3c4d"),
    ],
)
async def test_each_kind_is_recognised_and_up(client: httpx.AsyncClient, factory, kind, version) -> None:
    with factory() as server:
        fp = await fingerprint(client, server.url)
    assert (fp.kind, fp.state, fp.version) == (kind, EndpointState.UP, version)
    assert fp.latency_s is not None and fp.latency_s < 1.0


async def test_lmstudio_200_error_body_on_api_version_is_not_ollama(client: httpx.AsyncClient) -> None:
    with lmstudio.make_server() as server:
        reply = await fetch(client, server.url, "/api/version")
        # The trap itself: HTTP 200 for a route LM Studio does not have.
        assert reply.status == 200 and reply.is_lmstudio_unknown_route
        fp = await fingerprint(client, server.url)
    assert fp.kind is ServerKind.LMSTUDIO


async def test_llamacpp_ollama_shaped_api_tags_is_not_ollama(client: httpx.AsyncClient) -> None:
    with llamacpp.make_server() as server:
        tags = await fetch(client, server.url, "/api/tags")
        assert tags.status == 200 and tags.data["models"][0]["details"]["format"] == "gguf"  # Ollama's shape
        fp = await fingerprint(client, server.url)
    assert fp.kind is ServerKind.LLAMACPP and fp.state is EndpointState.UP


async def test_llamacpp_loading_is_llamacpp_loading(client: httpx.AsyncClient) -> None:
    with llamacpp.make_server(loading=True) as server:
        status = await probe_endpoint(client, Endpoint(server.url))
        assert (status.kind, status.state) == (ServerKind.LLAMACPP, EndpointState.LOADING)
        assert "model is loading" in status.diagnosis
        server.loading = False
        ready = await probe_endpoint(client, Endpoint(server.url), previous=status)
    assert ready.state is EndpointState.UP and ready.models[0].context_length == 4096


async def test_html_server_is_not_an_inference_server(client: httpx.AsyncClient) -> None:
    with html_site() as server:
        status = await probe_endpoint(client, Endpoint(server.url))
    assert (status.kind, status.state, status.reason) == (ServerKind.OTHER, EndpointState.NOT_INFERENCE,
                                                          "html")
    assert f"port {server.port} is held by another program (not an inference server" in status.diagnosis


async def test_random_json_api_with_version_routes_is_not_an_inference_server(
        client: httpx.AsyncClient) -> None:
    with json_api() as server:
        status = await probe_endpoint(client, Endpoint(server.url))
    assert (status.kind, status.state, status.reason) == (ServerKind.OTHER, EndpointState.NOT_INFERENCE,
                                                          "foreign")


async def test_non_http_service_is_not_an_inference_server(client: httpx.AsyncClient) -> None:
    with GarbageTcpServer() as server:
        status = await probe_endpoint(client, Endpoint(server.url))
    assert status.state is EndpointState.NOT_INFERENCE and status.reason == "not_http"
    assert "does not speak HTTP" in status.diagnosis


async def test_dead_port_is_down_with_a_start_hint(client: httpx.AsyncClient) -> None:
    port = free_port()
    status = await probe_endpoint(client, Endpoint(f"http://127.0.0.1:{port}", ServerKind.OLLAMA))
    assert (status.state, status.reason) == (EndpointState.DOWN, "refused")
    assert status.diagnosis == f"nothing listens on 127.0.0.1:{port} — start Ollama with `ollama serve`"
    assert status.display_kind == "Ollama?"


@pytest.mark.parametrize("factory", [vllm.make_server, lmstudio.make_server, llamacpp.make_server])
async def test_missing_key_is_unauthorized(client: httpx.AsyncClient, factory) -> None:
    with factory(api_key="sesame") as server:
        status = await probe_endpoint(client, Endpoint(server.url))
        rejected = await probe_endpoint(client, Endpoint(server.url, api_key="wrong"))
        good = await probe_endpoint(client, Endpoint(server.url, api_key="sesame"))
    assert status.state is EndpointState.UNAUTHORIZED and status.http_status == 401
    assert status.kind is not ServerKind.OTHER  # still told apart while locked out
    assert "API key required (HTTP 401)" in status.diagnosis
    assert rejected.state is EndpointState.UNAUTHORIZED
    assert rejected.diagnosis.startswith("API key rejected (HTTP 401)")
    assert "wrong" not in rejected.diagnosis
    assert good.state is EndpointState.UP


async def test_ollama_host_check_403_is_unauthorized(client: httpx.AsyncClient) -> None:
    with ollama.make_server() as server:
        status = await probe_endpoint(client, Endpoint(server.url.replace("127.0.0.1", "localhost")))
        assert status.state is EndpointState.UP  # localhost passes Ollama's Host check
        fp = await fingerprint(client, server.url, headers={"Host": "evil.example.com"})
    assert fp.state is EndpointState.UNAUTHORIZED and fp.http_status == 403


async def test_generic_openai_server(client: httpx.AsyncClient) -> None:
    # A plain OpenAI-dialect server: /v1/models lists cards, nothing else identifies it.
    from tests.servers.openai_dialect import OpenAIDialectHandler, serve

    with serve(OpenAIDialectHandler, 0, {"models": ["a", "b"]}) as server:
        status = await probe_endpoint(client, Endpoint(server.url))
    assert (status.kind, status.state) == (ServerKind.OPENAI, EndpointState.UP)
    assert [m.name for m in status.models] == ["a", "b"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "ftp://127.0.0.1:21", "http://bad host:80"])
async def test_malformed_endpoint_is_down_not_a_crash(client: httpx.AsyncClient, url: str) -> None:
    status = await probe_endpoint(client, Endpoint(url))
    assert status.state is EndpointState.DOWN
    assert status.diagnosis
