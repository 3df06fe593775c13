"""The HTTP seam: explicit timeouts, the shared client, and the translation of every transport
and HTTP failure into a typed :mod:`victor_gui.errors` error.

Adapters never build their own ``httpx.AsyncClient`` when one is injected; the app builds one
after first paint and hands it to every provider. Error bodies of every dialect we speak
(OpenAI ``{"error": {...}}``, llama.cpp typed errors, Ollama/LM Studio ``{"error": "..."}``,
Anthropic/Gemini shapes, HTML pages from proxies) are reduced to one message here.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from victor_gui.errors import (
    BadRequestError,
    CertificateExpiredError,
    CertificateHostnameError,
    ContentFilterError,
    ContextLengthExceededError,
    InvalidResponseError,
    ModelLoadingError,
    ModelNotFoundError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
    ResponseStalledError,
    TLSError,
    UntrustedCertificateError,
)
from victor_gui.providers.bounded import (
    MAX_BODY_BYTES,
    BoundedClient,
    ResponseStalled,
    ResponseTooLarge,
    read_bounded,
    read_head,
)
from victor_gui.providers.resilience import parse_retry_after


@dataclass(frozen=True)
class Timeouts:
    """Per-phase timeouts in seconds. ``read`` bounds the wait for the first byte (and any gap
    between two bytes); ``idle`` the gap between two bytes once the body has begun; ``deadline``
    the whole exchange, headers to last byte. Why these numbers: :mod:`victor_gui.providers.bounded`.
    """

    connect: float = 10.0
    read: float = 60.0
    write: float = 30.0
    pool: float = 10.0
    idle: float = 60.0
    deadline: float = 900.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)

    def scaled(self, factor: float) -> Timeouts:
        """Read/write/idle/deadline scaled (e.g. the capabilities' ``timeout_multiplier``);
        connect stays short."""
        return Timeouts(self.connect, self.read * factor, self.write * factor, self.pool,
                        self.idle * factor, self.deadline * factor)


CLOUD_TIMEOUTS = Timeouts(connect=10.0, read=120.0, idle=120.0, deadline=900.0)
# Local servers may spend minutes loading a model before the first byte (the seed's 300 s),
# but a refused connection on loopback is known at once; once tokens flow, a minute of silence
# is a stuck server, and half an hour covers a long reply on a CPU.
LOCAL_TIMEOUTS = Timeouts(connect=3.0, read=300.0, write=60.0, idle=60.0, deadline=1800.0)
# The app's one client carries local and cloud replies alike (each request sets its own connect
# and read timeouts, but the idle gap and the deadline belong to the client): the longer of each,
# so a cloud model that thinks for two minutes between tokens is not cut at a local server's 60 s.
SHARED_TIMEOUTS = Timeouts(connect=3.0, read=300.0, write=60.0,
                           idle=max(LOCAL_TIMEOUTS.idle, CLOUD_TIMEOUTS.idle),
                           deadline=max(LOCAL_TIMEOUTS.deadline, CLOUD_TIMEOUTS.deadline))
PROBE_TIMEOUTS = Timeouts(connect=1.5, read=3.0, write=3.0, pool=3.0, idle=3.0, deadline=10.0)


@functools.lru_cache(maxsize=4)
def _trust_store(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """httpx's own default TLS context (certifi's CAs, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``).

    Built once per trust store, not once per client: each costs about 1 MB that stays for the
    app's life and ~100 ms of CPU, and the app holds several clients (shared, probes, providers
    that own theirs). The arguments are the two variables, so a changed one builds a new one."""
    del cert_file, cert_dir  # the key: httpx reads the variables itself
    return httpx.create_ssl_context(trust_env=True)


def make_client(timeouts: Timeouts = CLOUD_TIMEOUTS, **kwargs: Any) -> httpx.AsyncClient:
    """A client with explicit timeouts whose replies are bounded in bytes and time
    (:class:`~victor_gui.providers.bounded.BoundedClient`); ``trust_env`` honours the user's
    proxy settings. Unless ``verify`` says otherwise, clients share one TLS context."""
    if "verify" not in kwargs and kwargs.get("trust_env", True):
        kwargs["verify"] = _trust_store(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0)
    return BoundedClient(timeout=timeouts.to_httpx(), limits=limits, idle_s=timeouts.idle,
                         deadline_s=timeouts.deadline, **kwargs)


# ---------------------------------------------------------------------------------------------
# Error translation
# ---------------------------------------------------------------------------------------------

_CONTEXT_CODES = {"context_length_exceeded", "exceed_context_size_error", "context_length_error"}
_CONTEXT_HINTS = (
    "maximum context length",
    "context length",
    "context window",
    "exceeds the context",
    "exceed_context_size",
    "too many tokens",
    "prompt is too long",
    "input is too long",
)
_QUOTA_CODES = {"insufficient_quota", "billing_hard_limit_reached"}
_FILTER_CODES = {"content_filter", "content_policy_violation", "responsibleaipolicyviolation"}


def transport_error(exc: BaseException, provider: str | None, *, model: str | None = None,
                    partial: str | None = None) -> ProviderError:
    """Map an httpx transport exception to the typed error a person can act on."""
    if isinstance(exc, ProviderError):
        return exc
    where = ""
    request = getattr(exc, "_request", None)
    if request is not None:
        where = f" {request.url.scheme}://{request.url.host}:{request.url.port or ''}".rstrip(":")
    tls = tls_error(exc, provider, model=model, partial=partial)
    if tls is not None:
        return tls
    if isinstance(exc, ResponseTooLarge):
        return InvalidResponseError(str(exc), provider, model=model, raw_error=exc, partial_content=partial)
    if isinstance(exc, ResponseStalled):
        return ResponseStalledError(str(exc), provider, model=model, raw_error=exc, partial_content=partial)
    if isinstance(exc, httpx.ConnectTimeout):
        return ProviderConnectionError(f"Connecting to{where or ' the server'} timed out", provider,
                                       model=model, raw_error=exc, partial_content=partial)
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeoutError(
            f"No answer from{where or ' the server'} in time ({type(exc).__name__})", provider,
            model=model, raw_error=exc, partial_content=partial)
    if isinstance(exc, httpx.ConnectError):
        return ProviderConnectionError(f"Could not connect to{where or ' the server'}: {exc}", provider,
                                       model=model, raw_error=exc, partial_content=partial)
    if isinstance(exc, httpx.RemoteProtocolError) and "buffer too long" in str(exc).lower():
        # h11 gives up on a head larger than httpcore's buffer: a broken or hostile server, not
        # a dropped connection, and asking again gets the same headers.
        return InvalidResponseError(
            f"The server sent headers larger than {MAX_HEADER_KIB} KiB", provider, model=model,
            raw_error=exc, partial_content=partial)
    if isinstance(exc, httpx.RemoteProtocolError):
        return ProviderConnectionError(
            f"The server closed the connection before the reply was complete: {exc}", provider,
            model=model, raw_error=exc, partial_content=partial)
    if isinstance(exc, httpx.TransportError):
        return ProviderConnectionError(f"Network error talking to{where or ' the server'}: {exc}",
                                       provider, model=model, raw_error=exc, partial_content=partial)
    return InvalidResponseError(f"Unexpected failure: {type(exc).__name__}: {exc}", provider,
                                model=model, raw_error=exc, partial_content=partial)


MAX_HEADER_KIB = 100
"""httpcore's limit on a reply's head (``MAX_INCOMPLETE_EVENT_SIZE``), for the message."""


# OpenSSL's X509_V_ERR_* codes, grouped by what the person has to do about them.
_UNTRUSTED_CODES = {2, 18, 19, 20, 21, 27}  # unknown issuer, self-signed, untrusted root
_EXPIRED_CODES = {9, 10}  # not yet valid, expired
_HOSTNAME_CODES = {62, 64}  # hostname / IP address mismatch


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` behind an httpx/httpcore exception (they chain it as the cause)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def tls_error(exc: BaseException, provider: str | None, *, model: str | None = None,
              partial: str | None = None) -> TLSError | None:
    """The typed TLS error behind ``exc`` (a failed certificate check or handshake), or None
    when ``exc`` is not about TLS. The message names the host and says what to change."""
    cause = _ssl_cause(exc)
    if cause is None:
        return None
    request = getattr(exc, "_request", None)
    host = request.url.host if request is not None else "the server"

    def typed(cls: type[TLSError], message: str, reason: str) -> TLSError:
        return cls(message, provider, host=host, reason=reason, model=model, raw_error=exc,
                   partial_content=partial)

    if isinstance(cause, ssl.SSLCertVerificationError):
        code = cause.verify_code
        detail = cause.verify_message or str(cause.reason or "")
        low = detail.lower()
        if code in _HOSTNAME_CODES or "mismatch" in low:
            return typed(CertificateHostnameError,
                f"The certificate of {host} was issued for another name ({detail}): use the name the "
                "certificate was made for in the endpoint's URL, or have the certificate reissued",
                "hostname")
        if code in _EXPIRED_CODES or "expired" in low or "not yet valid" in low:
            return typed(CertificateExpiredError,
                f"The certificate of {host} is not valid now ({detail}): renew it on the server, "
                "or check this computer's clock", "expired")
        return typed(UntrustedCertificateError,
            f"The certificate of {host} is not trusted ({detail or 'unknown issuer'}): add its CA "
            "bundle in the endpoint's settings (or turn certificate verification off)", "untrusted")
    return typed(TLSError,
        f"The TLS handshake with {host} failed ({cause.reason or type(cause).__name__}): check that "
        "the server speaks https on that port, or use http:// in the endpoint's URL", "handshake")


def looks_like_html(body: str, content_type: str = "") -> bool:
    head = body.lstrip()[:200].lower()
    return "text/html" in content_type.lower() or head.startswith(("<!doctype html", "<html"))


def error_details(body: str) -> tuple[str, str | None, str | None]:
    """(message, type, code) from any dialect's error body; the raw text when it is not JSON."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, ValueError):
        return body.strip()[:500], None, None
    return error_details_from_json(data)


def error_details_from_json(data: Any) -> tuple[str, str | None, str | None]:
    if isinstance(data, list) and data:  # Gemini wraps errors in a one-element list at times
        data = data[0]
    if not isinstance(data, dict):
        return str(data)[:500], None, None
    err = data.get("error", data)
    if isinstance(err, str):
        return err, data.get("type") if isinstance(data.get("type"), str) else None, None
    if isinstance(err, dict):
        message = err.get("message") or err.get("msg") or err.get("detail") or json.dumps(err)[:500]
        etype = err.get("type") or err.get("status")
        code = err.get("code")
        return str(message), (str(etype) if etype is not None else None), (
            str(code) if code is not None else None)
    message = data.get("message") or data.get("detail") or json.dumps(data)[:500]
    return str(message), (str(data["type"]) if "type" in data else None), None


def classify_http_error(
    status: int,
    body: str,
    *,
    provider: str | None,
    model: str | None = None,
    headers: httpx.Headers | dict[str, str] | None = None,
    content_type: str = "",
) -> ProviderError:
    """The typed error for a non-2xx reply. The status decides the class; the body only refines
    a 400/404/503 into the more specific type its dialect names (context length, unknown model,
    still loading)."""
    # A plain dict is matched case-insensitively like httpx.Headers ("Retry-After" == "retry-after").
    headers = httpx.Headers(headers or {})
    if 300 <= status < 400:
        # Endpoint clients do not follow redirects: a key must not move to another address on
        # the server's word. Say where it points so the user can move the endpoint instead.
        location = headers.get("location", "")
        target = f" to {location.split('?', 1)[0]}" if location else ""
        return InvalidResponseError(
            f"HTTP {status}: the server redirects{target}; redirects are not followed (the key "
            "would go along): put the new address in the endpoint's URL", provider,
            status_code=status, model=model)
    if looks_like_html(body, content_type):
        return InvalidResponseError(
            f"The server answered HTTP {status} with an HTML page instead of an API reply "
            "(a proxy, a login portal or another program on this port?)",
            provider, status_code=status, model=model)
    message, etype, code = error_details(body)
    tags = {t.lower() for t in (etype, code) if t}
    low = message.lower()
    text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    kw: dict[str, Any] = {"status_code": status, "model": model}

    if tags & _FILTER_CODES:
        return ContentFilterError(text, provider, **kw)
    if tags & _CONTEXT_CODES or (status in (400, 413, 422) and any(h in low for h in _CONTEXT_HINTS)):
        return ContextLengthExceededError(text, provider, **kw)
    if status in (401, 403):
        return ProviderAuthError(text, provider, **kw)
    if status == 400 and ("api_key_invalid" in body.lower() or "api key not valid" in low):
        # Gemini answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
        return ProviderAuthError(text, provider, **kw)
    if status == 429 and tags & _QUOTA_CODES:
        # OpenAI's "insufficient_quota" is a 429 that no wait will fix: the account must act.
        return ProviderAuthError(text, provider, **kw)
    if "model_not_found" in tags and status in (400, 404):
        return ModelNotFoundError(text, provider, **kw)
    if status == 404:
        # Only a 404 that speaks of the model is about the model; a bare "Not Found" means the
        # base URL or path is wrong, and "model not found" would send the person the wrong way.
        if "model" in low or (model and model.lower() in low):
            return ModelNotFoundError(text, provider, **kw)
        return BadRequestError(text, provider, **kw)
    if status == 429:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return ProviderRateLimitError(text, provider, retry_after=retry_after, **kw)
    if status == 408:
        return ProviderTimeoutError(text, provider, **kw)
    if status == 503 and "loading" in low:
        # llama.cpp's "no slot available" is also type unavailable_error: busy, not loading.
        return ModelLoadingError(text, provider, retry_after=parse_retry_after(headers.get("retry-after")),
                                 **kw)
    if status in (501, 505):
        # Not implemented / unsupported: asking again cannot help (llama.cpp not_supported_error).
        return BadRequestError(text, provider, **kw)
    if status >= 500:
        return ProviderServerError(text, provider, retry_after=parse_retry_after(headers.get("retry-after")),
                                   **kw)
    if 400 <= status < 500:
        return BadRequestError(text, provider, **kw)
    return InvalidResponseError(f"Unexpected HTTP {status}: {message}", provider, **kw)


MAX_ERROR_BODY = 65536
"""How much of a failed reply's body is read for its message (an HTML page can be large)."""


async def read_error_body(response: httpx.Response) -> str:
    """The first :data:`MAX_ERROR_BODY` bytes of a failed reply's body as text, ``""`` when the
    body cannot be read (the status alone still classifies it); closes the response. Reading
    stops at the cap: an endless error body is never held."""
    try:
        raw = await read_head(response, MAX_ERROR_BODY)
    except httpx.HTTPError:
        raw = b""
    finally:
        await response.aclose()
    return raw.decode("utf-8", errors="replace")


async def read_body(response: httpx.Response, *, provider: str | None, model: str | None = None,
                    limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body of a streamed 2xx reply, at most ``limit`` decoded bytes (past it:
    :class:`InvalidResponseError` "the response exceeded N MiB", raised while reading); a broken
    read typed as a transport error; closes the response."""
    try:
        return await read_bounded(response, limit)
    except httpx.HTTPError as exc:
        raise transport_error(exc, provider, model=model) from exc
    finally:
        await response.aclose()


async def read_reply(response: httpx.Response, *, provider: str | None, model: str | None = None) -> bytes:
    """A streamed reply's body whatever its status: a 2xx one through :func:`read_body`, a
    failed one's first :data:`MAX_ERROR_BODY` bytes (enough for its message); closes it."""
    if response.is_success:
        return await read_body(response, provider=provider, model=model)
    return (await read_error_body(response)).encode("utf-8")


ModelT = TypeVar("ModelT", bound=str | None)


async def send_streamed(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    provider: str | None,
    model: ModelT,
    classify: Callable[[int, str, httpx.Headers, ModelT], ProviderError],
) -> httpx.Response:
    """Send ``request`` streamed and return the 2xx response; a transport failure is typed, and a
    non-2xx reply raises ``classify(status, bounded body, headers, model)``."""
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise transport_error(exc, provider, model=model) from exc
    if response.is_success:
        return response
    body = await read_error_body(response)
    raise classify(response.status_code, body, response.headers, model)


async def raise_for_status(response: httpx.Response, *, provider: str | None,
                           model: str | None = None) -> None:
    """Raise the typed error for a non-2xx response (reads the body, bounded)."""
    if response.is_success:
        return
    body = await read_error_body(response)
    raise classify_http_error(response.status_code, body, provider=provider, model=model,
                              headers=response.headers,
                              content_type=response.headers.get("content-type", ""))


def parse_json_body(raw: bytes | str, *, provider: str | None, status: int | None = None,
                    model: str | None = None, content_type: str = "") -> Any:
    """Decode a 2xx JSON body, turning HTML and malformed JSON into :class:`InvalidResponseError`."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if looks_like_html(text, content_type):
        raise InvalidResponseError("The server answered with an HTML page instead of JSON", provider,
                                   status_code=status, model=model)
    try:
        return json.loads(text)
    except RecursionError:  # arrays nested past the decoder's limit (issue 16)
        raise InvalidResponseError("The server's reply is nested too deeply to read", provider,
                                   status_code=status, model=model) from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise InvalidResponseError(f"The server's reply is not valid JSON: {exc}", provider,
                                   status_code=status, model=model, raw_error=exc) from None
