"""A provider for one hand-added endpoint: its kind picks the wire protocol, its settings and
keyring entries give the address, credentials, headers, TLS trust and timeouts.

Used by the chat's provider pool, the server registry and ``victor-gui chat --endpoint``, so an
endpoint in ``settings.yaml`` is reached the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

import httpx

from victor_gui.config.secrets import endpoint_header_name, endpoint_key_name
from victor_gui.config.settings import Endpoint
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import Category, ProviderSpec, find_spec
from victor_gui.providers.endpoint_access import (
    EndpointAccess,
    check_key_transport,
    is_local_url,
    make_endpoint_client,
)
from victor_gui.providers.registry import ProviderRegistry

SecretLookup = Callable[[str], "str | None"]


def endpoint_base_url(entry: Endpoint) -> str:
    """The base URL the provider is given: OpenAI-speaking kinds get ``/v1`` when the URL has no
    path of its own (a gateway under ``/litellm/v1`` keeps its path); Ollama and Anthropic-style
    servers take the root."""
    url = entry.url.rstrip("/")
    if entry.kind in ("ollama", "anthropic-compatible"):
        return url[: -len("/v1")] if url.endswith("/v1") else url
    return url if urlsplit(url).path not in ("", "/") else url + "/v1"


def endpoint_access(entry: Endpoint, secrets: SecretLookup | None) -> EndpointAccess:
    """The access data of ``entry``: its key and secret headers read through ``secrets``
    (the keyring store's ``get_key``; None reads nothing). ``secrets`` may block (the OS
    keyring): call this off the event loop."""
    key = secrets(endpoint_key_name(entry.name)) if secrets else None
    headers = dict(entry.headers)
    secret_names: set[str] = set()
    for header in entry.secret_headers:
        value = secrets(endpoint_header_name(entry.name, header)) if secrets else None
        if value:
            headers[header] = value
            secret_names.add(header)
    return EndpointAccess(endpoint_base_url(entry), key, headers, entry.tls_verify, entry.ca_bundle,
                          entry.connect_timeout_s, entry.read_timeout_s, entry.allow_insecure_key,
                          frozenset(secret_names), idle_timeout_s=entry.idle_timeout_s,
                          deadline_s=entry.deadline_s)


def endpoint_spec(entry: Endpoint) -> ProviderSpec:
    """The catalog row an endpoint is served by, named after the endpoint."""
    category: Category = "local" if is_local_url(entry.url) else "cloud"
    # The four servers' kinds are their catalog rows' names (quirks, key variables); a gateway
    # kind has no row and gets one of its own.
    base = find_spec(entry.kind)
    if base is not None:
        return replace(base, default_base_url=endpoint_base_url(entry), category=category)
    protocol = "anthropic" if entry.kind == "anthropic-compatible" else "openai"
    return ProviderSpec(entry.name, entry.name, protocol, category, endpoint_base_url(entry), needs_key=False)


def provider_for_endpoint(
    entry: Endpoint,
    *,
    secrets: SecretLookup | None = None,
    proxy: str | None = None,
    max_retries: int = 1,
    access: EndpointAccess | None = None,
) -> tuple[BaseProvider, httpx.AsyncClient]:
    """(provider, its own HTTP client) for ``entry``; the caller closes both. ``access``: what
    :func:`endpoint_access` already read for it (the keyring is then not read again).

    Reads the keyring and the CA bundle: call it off the event loop (``asyncio.to_thread``).
    Raises :class:`~victor_gui.providers.endpoint_access.InsecureKeyTransportError` when the key
    would go over plain http to a public host without consent (``entry.allow_insecure_key`` is
    the remembered consent), :class:`~victor_gui.errors.CABundleError` naming the file when the
    CA bundle cannot be used. The client also guards every later request (see
    :func:`~victor_gui.providers.endpoint_access.credential_guard`).
    """
    access = access if access is not None else endpoint_access(entry, secrets)
    spec = endpoint_spec(entry)
    check_key_transport(access, spec.name)
    client = make_endpoint_client(access, proxy=proxy, provider=spec.name)
    # The endpoint's own read timeout bounds the provider's requests too: each request sets its
    # timeouts, which would otherwise put the provider's default (300 s locally) over the user's.
    timeout = {"timeout": entry.read_timeout_s} if entry.read_timeout_s else {}
    provider = ProviderRegistry.create_for_spec(spec, api_key=access.api_key, base_url=access.url,
                                                http_client=client, max_retries=max_retries, **timeout)
    return provider, client


__all__ = [
    "endpoint_access",
    "endpoint_base_url",
    "endpoint_spec",
    "provider_for_endpoint",
]
