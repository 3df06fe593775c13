"""Where OllamaProvider sends requests: OLLAMA_HOST by Ollama's rules, OLLAMA_ENDPOINTS in order,
an explicit base_url first, and failover to the next candidate only when nothing answered."""

from __future__ import annotations

import pytest

from tests.providers.ollama_support import collect, make_provider, user
from tests.servers.base import Fault, Script, free_port
from tests.servers.ollama import make_server
from victor_gui.errors import ProviderConnectionError, ProviderServerError
from victor_gui.providers.catalog import find_spec
from victor_gui.providers.protocols.ollama import OllamaProvider


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.delenv("OLLAMA_ENDPOINTS", raising=False)


@pytest.mark.parametrize(("value", "expected"), [
    ("example.lan", "http://example.lan:11434"),  # no scheme, no port -> 11434
    ("example.lan:9000", "http://example.lan:9000"),
    ("http://example.lan", "http://example.lan:80"),  # scheme without port -> 80
    ("https://example.lan", "https://example.lan:443"),
    ("0.0.0.0", "http://127.0.0.1:11434"),  # bound everywhere -> reached on loopback
    ("0.0.0.0:8888", "http://127.0.0.1:8888"),
    ("http://proxy.lan:8080/ollama/", "http://proxy.lan:8080/ollama"),  # path kept
    ("ollama.com", "https://ollama.com:443"),
])
def test_ollama_host_parsed_like_ollama(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)
    provider = OllamaProvider(spec=find_spec("ollama"))
    default = "http://127.0.0.1:11434"
    assert provider.candidates == ([expected] if expected == default else [expected, default])
    assert provider.base_url == expected


def test_explicit_base_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "elsewhere.lan")
    monkeypatch.setenv("OLLAMA_ENDPOINTS", "a.lan,b.lan")
    provider = OllamaProvider(spec=find_spec("ollama"), base_url="http://127.0.0.1:9/")
    assert provider.candidates == ["http://127.0.0.1:9"]


def test_order_endpoints_then_host_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_ENDPOINTS", "a.lan:1, http://b.lan")
    monkeypatch.setenv("OLLAMA_HOST", "c.lan")
    provider = OllamaProvider(spec=find_spec("ollama"))
    assert provider.candidates == ["http://a.lan:1", "http://b.lan:80", "http://c.lan:11434",
                                   "http://127.0.0.1:11434"]


async def test_ollama_host_reaches_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    with make_server() as server:
        monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{server.port}")
        provider = make_provider(None)
        try:
            reply = await provider.chat(user(), model="sim-model")
        finally:
            await provider.close()
    assert reply.content == "Hello from the simulator."
    assert len(server.chat_requests()) == 1


async def test_endpoints_tried_in_order_dead_then_live(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = free_port()
    with make_server() as live, make_server() as third:
        endpoints = f"127.0.0.1:{dead},127.0.0.1:{live.port},127.0.0.1:{third.port}"
        monkeypatch.setenv("OLLAMA_ENDPOINTS", endpoints)
        provider = make_provider(None, retries=0)
        try:
            chunks = await collect(provider)
            assert "".join(c.content for c in chunks) == "Hello from the simulator."
            assert provider.base_url == live.url  # remembered
            await provider.chat(user(), model="sim-model")  # goes straight to the live one
        finally:
            await provider.close()
    assert [r.body["stream"] for r in live.chat_requests()] == [True, False]  # one request each
    assert third.requests == []  # never reached: the second candidate answered


async def test_http_error_on_one_endpoint_does_not_fail_over(monkeypatch: pytest.MonkeyPatch) -> None:
    # A server that answered (even with an error) got the request; sending it elsewhere would
    # run it twice.
    with make_server() as first, make_server() as second:
        first.script(Script(fault=Fault.SERVER_ERROR))
        monkeypatch.setenv("OLLAMA_ENDPOINTS", f"127.0.0.1:{first.port},127.0.0.1:{second.port}")
        provider = make_provider(None, retries=0)
        try:
            with pytest.raises(ProviderServerError) as info:
                await provider.chat(user(), model="sim-model")
        finally:
            await provider.close()
    assert info.value.status_code == 500
    assert len(first.chat_requests()) == 1 and second.requests == []


async def test_all_endpoints_dead_is_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_ENDPOINTS", f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}")
    provider = OllamaProvider(spec=find_spec("ollama"), max_retries=0)
    provider.candidates = provider.candidates[:2]  # leave the real default port out of the test
    provider.base_url = provider.candidates[0]
    try:
        with pytest.raises(ProviderConnectionError):
            await provider.chat(user(), model="sim-model")
    finally:
        await provider.close()
