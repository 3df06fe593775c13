"""Every path that gives a cloud provider its base URL goes through the clear-text key check:
a profile's ``base_url`` (or a ``providers:`` entry) of http://example.lan:8080/v1 sent the
OpenAI key there in clear text without a word before."""

from __future__ import annotations

import httpx
import pytest

from victor_gui.config.profiles import Profile
from victor_gui.providers.endpoint_access import InsecureKeyTransportError
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message
from victor_gui.services.fallback import provider_options

PUBLIC_HTTP = "http://example.lan:8080/v1"
KEY = "sk-transportcanary-0123456789"


def counting_client(sent: list[httpx.Request]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"data": []})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_profile_base_url_over_plain_http_refuses_the_key_before_sending() -> None:
    profile = Profile(provider="openai", model="gpt-4o", base_url=PUBLIC_HTTP)
    options = provider_options("openai", profile.model_dump(), None)
    assert options["base_url"] == PUBLIC_HTTP
    sent: list[httpx.Request] = []
    async with counting_client(sent) as client:
        provider = ProviderRegistry.create("openai", api_key=KEY, http_client=client, max_retries=0,
                                           **options)
        with pytest.raises(InsecureKeyTransportError, match=r"example\.lan"):
            await provider.chat([Message(role="user", content="hi")], model="gpt-4o")
    assert sent == []  # refused before anything left the machine


async def test_a_provider_built_client_checks_too_and_https_or_lan_still_work() -> None:
    provider = ProviderRegistry.create("openai", api_key=KEY, base_url=PUBLIC_HTTP, max_retries=0)
    try:
        with pytest.raises(InsecureKeyTransportError):
            await provider.chat([Message(role="user", content="hi")], model="gpt-4o")
    finally:
        await provider.close()
    for url in ("https://example.lan:8080/v1", "http://192.168.1.20:8080/v1"):
        sent: list[httpx.Request] = []
        async with counting_client(sent) as client:
            ok = ProviderRegistry.create("openai", api_key=KEY, base_url=url, http_client=client,
                                         max_retries=0)
            await ok.list_models()
        assert len(sent) == 1 and sent[0].headers["authorization"] == f"Bearer {KEY}"
