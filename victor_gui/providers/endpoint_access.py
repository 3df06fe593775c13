"""How to reach one hand-added endpoint: credentials, extra headers, TLS trust, timeouts.

Qt-free and below the config layer: :class:`EndpointAccess` is plain data that the services
build from an endpoint's settings and its keyring entries. :func:`make_endpoint_client` turns
it into the ``httpx.AsyncClient`` the endpoint's provider uses, and
:func:`check_key_transport` refuses to send a credential in clear text to a host that is
neither loopback nor on a private network unless the user agreed to it.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from victor_gui.core.redact import register_secret
from victor_gui.errors import ProviderAuthError
from victor_gui.providers.http import LOCAL_TIMEOUTS, Timeouts, make_client


@dataclass(frozen=True)
class EndpointAccess:
    """Everything needed to talk to one endpoint (secrets included: never log or store it)."""

    url: str
    api_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # secret and plain, merged
    tls_verify: bool = True
    ca_bundle: str | None = None
    connect_timeout_s: float | None = None
    read_timeout_s: float | None = None
    allow_insecure_key: bool = False

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def carries_credentials(self) -> bool:
        return bool(self.api_key) or bool(self.headers)


def is_loopback_or_private(host: str) -> bool:
    """Whether ``host`` is this machine or an address on a private network (RFC 1918, ULA,
    link-local) or a ``.local``/``localhost`` name: plain http there stays off the internet."""
    host = host.strip("[]").lower()
    if host in ("localhost", "") or host.endswith((".localhost", ".local")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


class InsecureKeyTransportError(ProviderAuthError):
    """A key would go in clear text to a public host and the user has not agreed to it."""


def check_key_transport(access: EndpointAccess, provider: str | None = None) -> None:
    """Raise :class:`InsecureKeyTransportError` when ``access`` would send a credential over
    plain http to a non-loopback, non-private host without the user's consent."""
    if not access.carries_credentials or access.allow_insecure_key:
        return
    if urlsplit(access.url).scheme.lower() != "http" or is_loopback_or_private(access.host):
        return
    raise InsecureKeyTransportError(
        f"Not sending the key for {access.host} over plain http: anyone on the way could read it. "
        f"Use https, or allow it for {access.host} in the endpoint's settings.", provider)


def _verify(access: EndpointAccess) -> bool | ssl.SSLContext:
    if not access.tls_verify:
        return False
    if access.ca_bundle:
        context = ssl.create_default_context(cafile=access.ca_bundle)
        return context
    return True


def make_endpoint_client(access: EndpointAccess, *, proxy: str | None = None) -> httpx.AsyncClient:
    """The HTTP client for ``access``: its TLS trust, timeouts and headers (the bearer token
    goes in through the provider's own ``api_key``, not here). Raises ``OSError``/``ssl.SSLError``
    when the CA bundle cannot be read."""
    for value in (access.api_key, *access.headers.values()):
        register_secret(value)
    timeouts = Timeouts(
        connect=access.connect_timeout_s or LOCAL_TIMEOUTS.connect,
        read=access.read_timeout_s or LOCAL_TIMEOUTS.read,
        write=LOCAL_TIMEOUTS.write,
    )
    kwargs: dict[str, Any] = {"verify": _verify(access), "headers": dict(access.headers)}
    if proxy:
        kwargs["proxy"] = proxy
    return make_client(timeouts, **kwargs)


__all__ = [
    "EndpointAccess",
    "InsecureKeyTransportError",
    "check_key_transport",
    "is_loopback_or_private",
    "make_endpoint_client",
]
