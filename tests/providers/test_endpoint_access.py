"""Credentials of a hand-added endpoint stay where they belong, against real local servers:
redirects never carry them to another origin, clear text to a public host needs consent on
every request, an unusable CA bundle names its file, and TLS failures are typed."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.config.memory_keyring import MemoryKeyring, use_backend
from tests.servers import llamacpp
from tests.servers.base import SimServer
from tests.support.tls import Forwarder, TestCA, server_context
from victor_gui.config.secrets import KeyringStore, endpoint_header_name, endpoint_key_name
from victor_gui.config.settings import Endpoint as EndpointSetting
from victor_gui.errors import CABundleError, InvalidResponseError, TLSError, UntrustedCertificateError
from victor_gui.providers.endpoint_access import (
    EndpointAccess,
    InsecureKeyTransportError,
    check_key_transport,
    make_endpoint_client,
    tls_context,
)
from victor_gui.providers.http import PROBE_TIMEOUTS, make_client, transport_error
from victor_gui.servers.health import HealthMonitor
from victor_gui.servers.status import Endpoint, EndpointState
from victor_gui.services.endpoint_providers import endpoint_access, provider_for_endpoint
from victor_gui.services.endpoints_service import EndpointsService

KEY = "sk-endpoint-key-91b2"
TOKEN = "gw-token-44c1"


class Redirector:
    """An HTTP server on 127.0.0.1 that answers every request with a 307 to ``target``."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.hits = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> Redirector:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # keep-alive: one head after another (the requests have no body)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            self.hits += 1
            path = head.split(b" ", 2)[1].decode()
            writer.write(f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {self.target}{path}\r\n"
                         "Content-Length: 0\r\n\r\n".encode())
            await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture
async def recorder() -> AsyncIterator[SimServer]:
    with llamacpp.make_server() as sim:
        yield sim


@pytest.fixture
async def redirector(recorder: SimServer) -> AsyncIterator[Redirector]:
    server = await Redirector(recorder.url).start()
    yield server
    await server.stop()


def secrets(key: str | None = KEY, token: str | None = TOKEN):  # type: ignore[no-untyped-def]
    values = {endpoint_key_name("gw"): key, endpoint_header_name("gw", "X-Gateway-Token"): token}
    return values.get


GW = dict(name="gw", kind="openai-compatible", headers={"X-Team": "ml"}, secret_headers=["X-Gateway-Token"])


async def test_a_redirect_to_another_server_is_not_followed_and_says_where(
        redirector: Redirector, recorder: SimServer) -> None:
    entry = EndpointSetting(url=f"http://127.0.0.1:{redirector.port}", **GW)  # type: ignore[arg-type]
    provider, client = provider_for_endpoint(entry, secrets=secrets(), max_retries=0)
    try:
        with pytest.raises(InvalidResponseError) as caught:
            await provider.list_models()
    finally:
        await provider.close()
        await client.aclose()
    assert redirector.hits == 1
    assert recorder.requests == []  # nothing, key or not, reached the other server
    assert f"redirects to {recorder.url}/v1/models" in caught.value.message
    assert KEY not in str(caught.value)


async def test_a_followed_redirect_to_another_origin_drops_key_and_secret_headers(
        redirector: Redirector, recorder: SimServer) -> None:
    entry = EndpointSetting(url=f"http://127.0.0.1:{redirector.port}", **GW)  # type: ignore[arg-type]
    access = endpoint_access(entry, secrets())
    async with make_endpoint_client(access) as client:
        # Any caller that opts into redirects still cannot carry the credentials along.
        reply = await client.get(f"{access.url}/models", follow_redirects=True,
                                 headers={"Authorization": f"Bearer {KEY}", "x-api-key": KEY})
    assert reply.status_code == 200 and redirector.hits == 1
    (seen,) = recorder.requests
    names = {k.lower(): v for k, v in seen.headers.items()}
    assert "authorization" not in names and "x-api-key" not in names and "x-gateway-token" not in names
    assert names.get("x-team") == "ml"  # a plain header is not a secret
    assert KEY not in str(seen.headers) and TOKEN not in str(seen.headers)


async def test_same_origin_requests_carry_key_and_secret_headers(recorder: SimServer) -> None:
    entry = EndpointSetting(url=recorder.url, **GW)  # type: ignore[arg-type]
    provider, client = provider_for_endpoint(entry, secrets=secrets(), max_retries=0)
    try:
        await provider.list_models()
    finally:
        await provider.close()
        await client.aclose()
    (seen,) = recorder.requests
    names = {k.lower(): v for k, v in seen.headers.items()}
    assert names["authorization"] == f"Bearer {KEY}" and names["x-gateway-token"] == TOKEN


async def test_every_request_refuses_a_clear_text_key_to_a_public_host() -> None:
    relay = await Forwarder(1).start()  # a local http proxy: nothing may leave the machine anyway
    access = EndpointAccess("http://api.example.net:8000/v1", None, {"X-Team": "ml"},
                            secret_headers=frozenset())
    check_key_transport(access)  # a plain header alone is no credential
    try:
        async with make_endpoint_client(access, proxy=relay.url) as client:
            with pytest.raises(InsecureKeyTransportError) as caught:
                await client.get(f"{access.url}/models", headers={"Authorization": f"Bearer {KEY}"})
    finally:
        await relay.stop()
    assert relay.received == []  # refused before a connection was opened
    assert "api.example.net" in caught.value.message and KEY not in str(caught.value)
    for url in ("http://192.168.1.20:8000", "http://localhost:1234", "https://api.example.net"):
        check_key_transport(EndpointAccess(url, KEY))  # private, loopback, or encrypted: fine


def test_ca_bundle_problems_name_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    for path, why in ((tmp_path / "missing.pem", "does not exist"), (junk, "no usable PEM certificate")):
        with pytest.raises(CABundleError) as caught:
            tls_context(EndpointAccess("https://gpu-box.lan", ca_bundle=str(path)), "gw")
        assert str(path) in caught.value.message and why in caught.value.message
        assert caught.value.path == str(path) and "endpoint's settings" in caught.value.message
    ca = TestCA(tmp_path)
    assert isinstance(tls_context(EndpointAccess("https://x", ca_bundle=str(ca.pem))), ssl.SSLContext)
    assert tls_context(EndpointAccess("https://x", tls_verify=False, ca_bundle=str(junk))) is False


async def test_tls_failures_are_typed_from_the_real_handshake(tmp_path: Path, recorder: SimServer) -> None:
    ca = TestCA(tmp_path)
    front = await Forwarder(recorder.port, server_context(ca.issue("front"))).start()
    try:
        async with make_client() as client:
            with pytest.raises(httpx.ConnectError) as untrusted:
                await client.get(front.url)
            with pytest.raises(httpx.ConnectError) as plain:  # https to a plain-http port
                await client.get(f"https://127.0.0.1:{recorder.port}")
        async with make_endpoint_client(EndpointAccess(front.url, ca_bundle=str(ca.pem))) as trusted:
            assert (await trusted.get(f"{front.url}/health")).status_code == 200
    finally:
        await front.stop()
    error = transport_error(untrusted.value, "gw")
    assert isinstance(error, UntrustedCertificateError) and error.reason == "untrusted"
    assert "certificate of 127.0.0.1 is not trusted" in error.message
    handshake = transport_error(plain.value, "gw")
    assert type(handshake) is TLSError and "speaks https" in handshake.message


async def test_probes_refuse_clear_text_keys_and_report_a_bad_bundle(tmp_path: Path) -> None:
    async with make_client(PROBE_TIMEOUTS) as shared:
        monitor = HealthMonitor(shared)
        monitor.add_endpoint(Endpoint("http://api.example.net:8000", access=EndpointAccess(
            "http://api.example.net:8000/v1", KEY)))
        monitor.add_endpoint(Endpoint("https://127.0.0.1:9", access=EndpointAccess(
            "https://127.0.0.1:9/v1", ca_bundle=str(tmp_path / "gone.pem"))))
        statuses = await monitor.refresh_now()
        await monitor.stop()
    public, bundle = statuses["http://api.example.net:8000"], statuses["https://127.0.0.1:9"]
    assert (public.state, public.reason) == (EndpointState.UNAUTHORIZED, "insecure_key")
    assert "plain http" in public.diagnosis and KEY not in public.diagnosis
    assert (bundle.state, bundle.reason) == (EndpointState.DOWN, "ca_bundle")
    assert "gone.pem" in bundle.diagnosis


async def test_dashboard_probes_a_configured_endpoint_with_its_keyring_key(tmp_path: Path) -> None:
    with llamacpp.make_server(api_key=KEY) as sim, use_backend(MemoryKeyring()):
        store = KeyringStore()
        store.set_key(endpoint_key_name("box"), KEY)
        async with make_client(PROBE_TIMEOUTS) as client:
            service = EndpointsService(client, settings_path=tmp_path / "settings.yaml", discover_fn=None,
                                       gpu_detector=None, secrets=store.get_key)
            await service.start()
            try:
                await service.add_endpoint("box", "llamacpp", sim.url)
                status = service.monitor.status(sim.url)
                assert status is not None and status.state is EndpointState.UP, status
                store.set_key(endpoint_key_name("box"), "sk-wrong")
                await service.edit_endpoint(sim.url, "box", "llamacpp", sim.url, read_timeout_s=30)
                status = service.monitor.status(sim.url)
                assert status is not None and status.state is EndpointState.UNAUTHORIZED, status
                # Only the key changes (settings.yaml stays as it is): the probes use it at once.
                store.set_key(endpoint_key_name("box"), KEY)
                await service.edit_endpoint(sim.url, "box", "llamacpp", sim.url, read_timeout_s=30)
                status = service.monitor.status(sim.url)
                assert status is not None and status.state is EndpointState.UP, status
            finally:
                await service.close()
    sent = [{k.lower(): v for k, v in r.headers.items()}.get("authorization") for r in sim.requests]
    assert f"Bearer {KEY}" in sent and "Bearer sk-wrong" in sent
    assert KEY not in (tmp_path / "settings.yaml").read_text()


async def test_an_anthropic_compatible_gateway_without_a_key_is_asked_without_one() -> None:
    """A hand-added Anthropic-compatible endpoint with no key sends none (a gateway that needs
    none answers); one that does need a key answers 401, a typed auth error, not a refusal to
    send. With a key saved for it, the key goes as x-api-key."""
    from tests.servers import anthropic
    from tests.servers.base import Script
    from victor_gui.errors import MissingAPIKeyError, ProviderAuthError
    from victor_gui.providers.types import Message

    key = "sk-gw-0123456789abcdef"
    with anthropic.make_server() as open_gateway, anthropic.make_server(api_key=key) as keyed:
        open_gateway.script(Script(text="No key needed here."))
        entry = EndpointSetting(name="Gateway", kind="anthropic-compatible", url=open_gateway.url)
        provider, client = provider_for_endpoint(entry)
        try:
            reply = await provider.chat([Message(role="user", content="hi")], model="claude-sim-4")
            assert reply.content == "No key needed here."
            assert "x-api-key" not in {k.lower() for k in open_gateway.requests[-1].headers}
        finally:
            await provider.close()
            await client.aclose()
        entry = EndpointSetting(name="Keyed", kind="anthropic-compatible", url=keyed.url)
        provider, client = provider_for_endpoint(entry)
        try:
            with pytest.raises(ProviderAuthError) as refused:
                await provider.chat([Message(role="user", content="hi")], model="claude-sim-4")
            assert not isinstance(refused.value, MissingAPIKeyError) and refused.value.status_code == 401
        finally:
            await provider.close()
            await client.aclose()
        keyed.script(Script(text="Key accepted."))
        provider, client = provider_for_endpoint(
            entry, secrets={endpoint_key_name("Keyed"): key}.get)
        try:
            reply = await provider.chat([Message(role="user", content="hi")], model="claude-sim-4")
            assert reply.content == "Key accepted."
        finally:
            await provider.close()
            await client.aclose()
