"""An endpoint behind a TLS gateway, end to end against a REAL llama-server.

A real ``llama-server --api-key SECRET`` runs on a tiny generated model; in front of it, a TLS
forwarder on 127.0.0.1 presents a certificate from a CA made in the test (``tests/support/tls``).
The endpoint lives in a real ``settings.yaml`` written through the SettingsService, its key in
the (in-memory) keyring; everything is reached through ``provider_for_endpoint`` and the health
monitor, exactly as the app reaches it. Proven here:

* with the CA bundle configured: the model list, a streamed chat reply and an UP health probe;
* without it: the typed "certificate of 127.0.0.1 is not trusted" error (chat and probe); a
  certificate for another name and an expired one get their own sentence; a CA bundle that is
  missing names the file;
* a wrong or missing key: ProviderAuthError;
* the key is in none of settings.yaml, the log file, an export of the stored conversation, or
  any error text;
* a key for a public-looking ``http://`` host is refused until the user consents (consent saved
  in settings.yaml); the request then goes through a local proxy, so no traffic leaves the machine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.config.memory_keyring import MemoryKeyring, use_backend
from tests.integration.conftest import ModelFactory
from tests.support.llama_server import LlamaServer, start_llama_server
from tests.support.tls import Forwarder, TestCA, server_context
from victor_gui.config.secrets import KeyringStore, endpoint_key_name
from victor_gui.config.settings import Endpoint as EndpointSetting
from victor_gui.core.logging_setup import setup_logging
from victor_gui.errors import (
    CABundleError,
    CertificateExpiredError,
    CertificateHostnameError,
    ProviderAuthError,
    ProviderError,
    UntrustedCertificateError,
)
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.endpoint_access import InsecureKeyTransportError
from victor_gui.providers.types import Message
from victor_gui.servers.health import HealthMonitor
from victor_gui.servers.status import Endpoint, EndpointState, ServerKind
from victor_gui.services.endpoint_providers import endpoint_access, provider_for_endpoint
from victor_gui.services.settings_service import SettingsService
from victor_gui.storage import open_store
from victor_gui.storage.export import export_json, export_markdown

pytestmark = pytest.mark.llamacpp

SECRET = "sk-gateway-5ecret-7f3a9c"
HI = [Message(role="user", content="hi")]


@pytest.fixture(scope="module")
def locked_server(llama_binary: Path, tiny_model: ModelFactory, llama_logs: Path) -> Iterator[LlamaServer]:
    server = start_llama_server(tiny_model(), binary=llama_binary, log_dir=llama_logs, ctx=512,
                                extra_args=["--api-key", SECRET], ready_timeout_s=60)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def keyring_store() -> Iterator[KeyringStore]:
    with use_backend(MemoryKeyring()):
        store = KeyringStore()
        store.set_key(endpoint_key_name("gateway"), SECRET)
        yield store


@pytest.fixture
async def gateway(locked_server: LlamaServer, ca: TestCA) -> AsyncIterator[Forwarder]:
    proxy = await Forwarder(locked_server.port, server_context(ca.issue("gateway"))).start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def settings(tmp_path: Path) -> SettingsService:
    service = SettingsService(tmp_path / "settings.yaml")
    await service.load()
    return service


async def configure(settings: SettingsService, **fields: object) -> EndpointSetting:
    """Write the endpoint into settings.yaml through the one owner and read it back."""
    entry = EndpointSetting(name="gateway", kind="llamacpp", **fields)  # type: ignore[arg-type]
    await settings.update(endpoints=[entry])
    (saved,) = settings.settings.endpoints
    return saved


async def build(entry: EndpointSetting, store: KeyringStore,
                proxy: str | None = None) -> tuple[BaseProvider, object]:
    return await asyncio.to_thread(provider_for_endpoint, entry, secrets=store.get_key, proxy=proxy,
                                   max_retries=0)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


async def test_chat_over_tls_with_the_ca_bundle_and_the_key_nowhere_else(
        tmp_path: Path, settings: SettingsService, gateway: Forwarder, ca: TestCA,
        keyring_store: KeyringStore, locked_server: LlamaServer) -> None:
    level = logging.getLogger().level
    log_file = setup_logging(tmp_path / "logs", level=logging.DEBUG)
    try:
        entry = await configure(settings, url=gateway.url, ca_bundle=str(ca.pem))
        provider, client = await build(entry, keyring_store)
        try:
            (model,) = await provider.list_models()
            chunks = [c async for c in provider.stream(HI, model=model.id, temperature=0, max_tokens=6)]
        finally:
            await provider.close()
            await client.aclose()  # type: ignore[attr-defined]
        reply = "".join(c.content for c in chunks)
        assert model.id == str(locked_server.model)
        assert reply and chunks[-1].is_final
        assert f"authorization: bearer {SECRET}".encode() in gateway.seen.lower()  # it went, over TLS

        store, _ = await open_store(tmp_path / "store")
        try:
            conv = await store.create_conversation("tls")
            await store.add_message(conv.id, "user", "hi")
            await store.add_message(conv.id, "assistant", reply, provider=provider.name, model=model.id,
                                    endpoint=entry.url)
            exports = [await export_json(store), await export_markdown(store)]
        finally:
            await store.close()
        logging.getLogger("victor_gui.test").info("chatted with %s using %s", entry.url, SECRET)
        for handler in logging.getLogger().handlers:
            handler.flush()
        assert reply in exports[0]
        log_text = log_file.read_text()
        assert "chatted with" in log_text and "httpx" in log_text  # the log did record the traffic
        settings_text = (tmp_path / "settings.yaml").read_text()
        assert "gateway" in settings_text and str(ca.pem) in settings_text
        assert_no_secret(settings_text, log_text, *exports)
    finally:
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "_victor_gui", False):
                logging.getLogger().removeHandler(handler)
                handler.close()
        logging.getLogger().setLevel(level)


async def test_without_the_ca_the_error_says_the_certificate_is_not_trusted(
        settings: SettingsService, gateway: Forwarder, keyring_store: KeyringStore) -> None:
    entry = await configure(settings, url=gateway.url)
    provider, client = await build(entry, keyring_store)
    try:
        with pytest.raises(UntrustedCertificateError) as caught:
            await provider.list_models()
        with pytest.raises(UntrustedCertificateError):
            [c async for c in provider.stream(HI, model="tiny", max_tokens=4)]
    finally:
        await provider.close()
        await client.aclose()  # type: ignore[attr-defined]
    message = caught.value.message
    assert "certificate of 127.0.0.1 is not trusted" in message
    assert "CA bundle" in message and "endpoint's settings" in message
    assert caught.value.host == "127.0.0.1" and not caught.value.retryable
    assert_no_secret(message, str(caught.value))
    # The handshake failed: not one byte of the request (nor the key) reached the gateway.
    assert SECRET.encode() not in gateway.seen


async def test_health_probe_uses_the_endpoints_key_and_ca(
        settings: SettingsService, gateway: Forwarder, ca: TestCA, keyring_store: KeyringStore,
        locked_server: LlamaServer) -> None:
    import httpx

    trusted = await configure(settings, url=gateway.url, ca_bundle=str(ca.pem))
    access = await asyncio.to_thread(endpoint_access, trusted, keyring_store.get_key)
    untrusted = await asyncio.to_thread(endpoint_access, trusted.model_copy(update={"ca_bundle": None}),
                                        keyring_store.get_key)
    async with httpx.AsyncClient() as shared:
        monitor = HealthMonitor(shared)
        monitor.add_endpoint(Endpoint(gateway.url, ServerKind.LLAMACPP, "settings", access=access))
        (good,) = (await monitor.refresh_now()).values()
        monitor.add_endpoint(Endpoint(gateway.url, ServerKind.LLAMACPP, "settings", access=untrusted))
        (bad,) = (await monitor.refresh_now()).values()
        await monitor.stop()
    assert (good.kind, good.state) == (ServerKind.LLAMACPP, EndpointState.UP), good.diagnosis
    assert good.models and good.models[0].name == str(locked_server.model)
    assert (bad.state, bad.reason) == (EndpointState.DOWN, "tls_untrusted")
    assert "certificate of 127.0.0.1 is not trusted" in bad.diagnosis
    assert_no_secret(good.diagnosis, bad.diagnosis)


async def test_wrong_or_missing_key_is_an_auth_error(
        settings: SettingsService, gateway: Forwarder, ca: TestCA, keyring_store: KeyringStore) -> None:
    entry = await configure(settings, url=gateway.url, ca_bundle=str(ca.pem))
    errors: list[ProviderError] = []
    for key in ("sk-wrong-key-0000", None):
        if key is None:
            keyring_store.delete_key(endpoint_key_name("gateway"))
        else:
            keyring_store.set_key(endpoint_key_name("gateway"), key)
        provider, client = await build(entry, keyring_store)
        try:
            with pytest.raises(ProviderAuthError) as caught:
                [c async for c in provider.stream(HI, model="tiny", max_tokens=4)]
            errors.append(caught.value)
        finally:
            await provider.close()
            await client.aclose()  # type: ignore[attr-defined]
    assert [e.status_code for e in errors] == [401, 401]
    assert_no_secret(*(str(e) for e in errors))


async def test_wrong_name_expired_and_missing_bundle_each_say_what_to_do(
        settings: SettingsService, locked_server: LlamaServer, ca: TestCA, keyring_store: KeyringStore,
        tmp_path: Path) -> None:
    other = await Forwarder(locked_server.port,
                            server_context(ca.issue("other", ("gpu-box.lan",), ()))).start()
    stale = await Forwarder(locked_server.port, server_context(ca.issue("stale", expired=True))).start()
    try:
        seen: dict[str, ProviderError] = {}
        for label, proxy in (("hostname", other), ("expired", stale)):
            entry = await configure(settings, url=proxy.url, ca_bundle=str(ca.pem))
            provider, client = await build(entry, keyring_store)
            try:
                with pytest.raises(ProviderError) as caught:
                    await provider.list_models()
                seen[label] = caught.value
            finally:
                await provider.close()
                await client.aclose()  # type: ignore[attr-defined]
    finally:
        await other.stop()
        await stale.stop()
    assert isinstance(seen["hostname"], CertificateHostnameError)
    assert "certificate of 127.0.0.1 was issued for another name" in seen["hostname"].message
    assert isinstance(seen["expired"], CertificateExpiredError)
    assert "certificate of 127.0.0.1 is not valid now" in seen["expired"].message

    missing = tmp_path / "nowhere" / "ca.pem"
    entry = await configure(settings, url="https://127.0.0.1:9", ca_bundle=str(missing))
    with pytest.raises(CABundleError) as caught:
        await build(entry, keyring_store)
    assert str(missing) in caught.value.message and "does not exist" in caught.value.message
    assert caught.value.path == str(missing)
    assert_no_secret(*(str(e) for e in seen.values()), str(caught.value))


async def test_clear_text_key_to_a_public_host_waits_for_consent(
        tmp_path: Path, settings: SettingsService, locked_server: LlamaServer,
        keyring_store: KeyringStore) -> None:
    # gw.example.com is never resolved: the client talks to a plain forwarder on 127.0.0.1 as
    # its http proxy, which hands the request to llama-server. No traffic leaves the machine.
    relay = await Forwarder(locked_server.port).start()
    try:
        entry = await configure(settings, url="http://gw.example.com:8080")
        with pytest.raises(InsecureKeyTransportError) as caught:
            await build(entry, keyring_store, proxy=relay.url)
        assert "gw.example.com" in caught.value.message and "plain http" in caught.value.message
        assert relay.received == []  # refused before any connection

        # The user agrees in the endpoint's settings; the consent is saved with the endpoint.
        await settings.update(endpoints=[entry.model_copy(update={"allow_insecure_key": True})])
        reloaded = SettingsService(tmp_path / "settings.yaml")
        await reloaded.load()
        (consented,) = reloaded.settings.endpoints
        assert consented.allow_insecure_key
        provider, client = await build(consented, keyring_store, proxy=relay.url)
        try:
            with pytest.raises(ProviderError):  # whatever llama-server says to a proxy-form URL
                await provider.list_models()
        finally:
            await provider.close()
            await client.aclose()  # type: ignore[attr-defined]
        sent = relay.seen.decode("latin-1")
        assert "gw.example.com" in sent and SECRET in sent  # it did go, as agreed, to that host
    finally:
        await relay.stop()
    assert SECRET not in (tmp_path / "settings.yaml").read_text()
