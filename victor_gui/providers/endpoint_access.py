"""How to reach one hand-added endpoint: credentials, extra headers, TLS trust, timeouts.

Qt-free and below the config layer: :class:`EndpointAccess` is plain data that the services
build from an endpoint's settings and its keyring entries. :func:`make_endpoint_client` turns
it into the ``httpx.AsyncClient`` the endpoint's provider (and its health probe) uses, and
:func:`check_key_transport` refuses to send a credential in clear text to a host that is
neither loopback nor on a private network unless the user agreed to it.

The client itself enforces both credential rules on every request it sends, whoever builds the
request (chat, model listing, health probes): a request hook

* strips the key (``Authorization``, ``x-api-key`` ...) and every endpoint header from a request
  to another origin than the endpoint's (a redirect, or a URL a server handed back), and
* refuses, with :class:`InsecureKeyTransportError`, a request that would still carry one in
  clear text to a public host without consent.

It does not follow redirects either (httpx's default, made explicit): a 3xx reply becomes an
error naming the new address, so the user moves the endpoint rather than the key moving on its own.
"""

from __future__ import annotations

import base64
import ipaddress
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from victor_gui.core.redact import register_secret
from victor_gui.errors import CABundleError, ProviderAuthError
from victor_gui.providers.http import LOCAL_TIMEOUTS, Timeouts, make_client

# Headers that carry a credential in the protocols we speak (besides the endpoint's own secret
# headers): never sent to another origin than the endpoint's.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key",
                                "x-goog-api-key", "cookie"})


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
    # Which of ``headers`` hold secrets (keyring values); None: treat every header as one.
    secret_headers: frozenset[str] | None = None
    # Once a reply has begun, the longest silence; and the whole exchange's deadline (None:
    # the base timeouts', see victor_gui.providers.bounded for why those numbers).
    idle_timeout_s: float | None = None
    deadline_s: float | None = None

    @property
    def host(self) -> str:
        """The host named in the URL (no port, no brackets)."""
        return urlsplit(self.url).hostname or ""

    @property
    def secret_header_names(self) -> frozenset[str]:
        """Lower-case names of the headers whose values are secrets."""
        names = self.headers.keys() if self.secret_headers is None else self.secret_headers
        return frozenset(name.lower() for name in names if name.lower() in
                         {h.lower() for h in self.headers})

    @property
    def carries_credentials(self) -> bool:
        """Whether requests to this endpoint carry a key or a secret header."""
        return bool(self.api_key) or bool(self.secret_header_names)


# The secret header that credentials typed into a URL (``http://user:pass@host``) become.
URL_CREDENTIALS_HEADER = "Authorization"


def has_url_credentials(url: str) -> bool:
    """Whether ``url`` carries a user name or password (``scheme://user:pass@host``)."""
    try:
        return "@" in urlsplit(url.strip()).netloc
    except ValueError:
        return False


def split_url_userinfo(url: str) -> tuple[str, str | None]:
    """(``url`` without its user-info, the user-info as written: ``user:pass``), the second
    None when there is none. The user-info is registered with the redactor."""
    parts = urlsplit(url.strip())
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    register_secret(userinfo)
    register_secret(unquote(userinfo.partition(":")[2]))
    return urlunsplit(parts._replace(netloc=hostport)), userinfo


def join_url_userinfo(url: str, userinfo: str | None) -> str:
    """``url`` with ``userinfo`` (from :func:`split_url_userinfo`) put back; ``url`` unchanged
    when there is none."""
    if not userinfo:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc.rpartition('@')[2]}"))


def split_url_credentials(url: str) -> tuple[str, str | None]:
    """(``url`` without its user-info, the ``Authorization`` value those credentials stand for).

    ``http://user:pass@host`` means HTTP Basic authentication (what curl and httpx send for it),
    so the value is ``Basic base64(user:pass)``: the endpoint keeps working once the URL no
    longer holds them, and the value lives in the keyring as a secret header (stripped on
    redirects, refused in clear text like any key). The second item is None when there are none.
    Both the password and the header value are registered with the redactor.
    """
    clean, userinfo = split_url_userinfo(url)
    if userinfo is None:
        return url, None
    user, _, password = userinfo.partition(":")
    value = "Basic " + base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    register_secret(value)
    return clean, value


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


def is_local_url(url: str) -> bool:
    """The one rule for "this endpoint is local" (free of charge, one GPU for compare's turns,
    local timeouts): its host is loopback or on a private network."""
    return is_loopback_or_private(urlsplit(url if "://" in url else "http://" + url).hostname or "")


class InsecureKeyTransportError(ProviderAuthError):
    """A key would go in clear text to a public host and the user has not agreed to it."""


def check_key_transport(access: EndpointAccess, provider: str | None = None) -> None:
    """Raise :class:`InsecureKeyTransportError` when ``access`` would send a credential over
    plain http to a non-loopback, non-private host without the user's consent."""
    if access.carries_credentials:
        _check_clear_text(access.url, access.allow_insecure_key, provider)


def _check_clear_text(url: str, allowed: bool, provider: str | None, *, endpoint: bool = True) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if allowed or parts.scheme.lower() != "http" or is_loopback_or_private(host):
        return
    where = (f"allow it for {host} in the endpoint's settings" if endpoint else
             f"add {host} as an endpoint (Settings → Endpoints), where it can be allowed")
    raise InsecureKeyTransportError(
        f"Not sending the key for {host} over plain http: anyone on the way could read it. "
        f"Use https, or {where}.", provider)


# Query parameters that carry a key in the protocols we speak (Gemini's ``?key=`` of old).
_CREDENTIAL_PARAMS = frozenset({"key", "api_key", "api-key", "access_token", "token"})


def _carries_credential(request: httpx.Request, names: frozenset[str]) -> bool:
    return (any(n.lower() in names for n in request.headers)
            or any(p.lower() in _CREDENTIAL_PARAMS for p in request.url.params))


def clear_text_key_guard(provider: str | None = None) -> Callable[[httpx.Request], Awaitable[None]]:
    """The request hook for clients no hand-added endpoint's :func:`credential_guard` covers
    (cloud providers, a profile's or ``providers:`` ``base_url``, Azure's endpoint variable):
    a request carrying a key over plain http to a public host is refused. There is no consent
    here: that is given per hand-added endpoint."""

    async def guard(request: httpx.Request) -> None:
        if _carries_credential(request, CREDENTIAL_HEADERS):
            _check_clear_text(str(request.url), False, provider, endpoint=False)

    guard.key_guard = True  # type: ignore[attr-defined]
    return guard


def ensure_key_guard(client: httpx.AsyncClient, provider: str | None = None) -> None:
    """Give ``client`` :func:`clear_text_key_guard` unless a key guard (this one, or an
    endpoint's :func:`credential_guard`) is on it already. Every provider calls this on the
    client it sends with, built or injected, so no path sends a key in clear text unchecked."""
    hooks = client.event_hooks
    request_hooks = list(hooks.get("request", []))
    if not any(getattr(hook, "key_guard", False) for hook in request_hooks):
        client.event_hooks = {**hooks, "request": [*request_hooks, clear_text_key_guard(provider)]}


def tls_context(access: EndpointAccess, provider: str | None = None) -> bool | ssl.SSLContext:
    """What httpx's ``verify`` gets for ``access``: False (verification off), True (the system's
    trust store) or a context trusting the configured CA bundle (a PEM file, or a directory of
    hashed certificates). Reads the file: call it off the event loop.

    Raises :class:`~victor_gui.errors.CABundleError` naming the file when it is missing,
    unreadable or holds no certificate.
    """
    if not access.tls_verify:
        return False
    if not access.ca_bundle:
        return True
    path = Path(access.ca_bundle).expanduser()
    try:
        if path.is_dir():
            return ssl.create_default_context(capath=str(path))
        return ssl.create_default_context(cafile=str(path))
    except FileNotFoundError:
        why = "the file does not exist"
    except PermissionError:
        why = "this user may not read it"
    except ssl.SSLError as exc:
        why = f"it holds no usable PEM certificate ({exc.reason or exc})"
    except OSError as exc:
        why = f"it cannot be read ({exc.strerror or type(exc).__name__})"
    raise CABundleError(
        f"The CA bundle {access.ca_bundle} for {access.host} cannot be used: {why}. Fix the path "
        "in the endpoint's settings (a PEM file with the CA certificate).", provider,
        path=access.ca_bundle)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def credential_guard(access: EndpointAccess,
                     provider: str | None = None) -> Callable[[httpx.Request], Awaitable[None]]:
    """The request hook that keeps ``access``'s credentials where they belong (see the module
    docstring): stripped on a request to another origin, refused in clear text to a public
    host without consent."""
    home = _origin(httpx.URL(access.url))
    secret_names = CREDENTIAL_HEADERS | access.secret_header_names

    async def guard(request: httpx.Request) -> None:
        if _origin(request.url) != home:
            for name in [n for n in request.headers if n.lower() in secret_names]:
                del request.headers[name]
            return
        if _carries_credential(request, secret_names):
            _check_clear_text(str(request.url), access.allow_insecure_key, provider)

    guard.key_guard = True  # type: ignore[attr-defined]
    return guard


def make_endpoint_client(access: EndpointAccess, *, proxy: str | None = None,
                         timeouts: Timeouts | None = None, provider: str | None = None,
                         verify: bool | ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """The HTTP client for ``access``: its TLS trust, timeouts, headers and credential guard (the
    bearer token goes in through the provider's own ``api_key``, not here). ``timeouts`` are the
    base (default :data:`LOCAL_TIMEOUTS`) that the endpoint's own connect/read/idle timeouts and
    deadline override;
    ``verify`` is a :func:`tls_context` already made off the loop (None: made here, reading the
    CA bundle). Raises :class:`~victor_gui.errors.CABundleError` when the CA bundle cannot be used.
    """
    secret_names = access.secret_header_names
    register_secret(access.api_key)
    for name, value in access.headers.items():
        if name.lower() in secret_names:
            register_secret(value)
    base = timeouts or LOCAL_TIMEOUTS
    timeouts = Timeouts(
        connect=access.connect_timeout_s or base.connect,
        read=access.read_timeout_s or base.read,
        write=base.write,
        pool=base.pool,
        idle=access.idle_timeout_s or base.idle,
        deadline=access.deadline_s or base.deadline,
    )
    kwargs: dict[str, Any] = {
        "verify": tls_context(access, provider) if verify is None else verify,
        "headers": dict(access.headers),
        "follow_redirects": False,
        "event_hooks": {"request": [credential_guard(access, provider)]},
    }
    if proxy:
        kwargs["proxy"] = proxy
    return make_client(timeouts, **kwargs)


__all__ = [
    "CREDENTIAL_HEADERS",
    "URL_CREDENTIALS_HEADER",
    "EndpointAccess",
    "InsecureKeyTransportError",
    "check_key_transport",
    "clear_text_key_guard",
    "credential_guard",
    "ensure_key_guard",
    "has_url_credentials",
    "is_local_url",
    "is_loopback_or_private",
    "join_url_userinfo",
    "make_endpoint_client",
    "split_url_credentials",
    "split_url_userinfo",
    "tls_context",
]
