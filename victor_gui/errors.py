"""The one error tree of victor_gui.

Adapters translate transport and protocol failures at their boundary into these types; services
and the UI decide what to do from the *type* (and ``status_code``/``retry_after``), never by
searching message text. Every message passes through :func:`victor_gui.core.redact.redact`, so
no error can carry a secret to a log, a dialog or an export.

Class attributes say how resilience treats each type:

* ``retryable``: a fresh attempt may succeed (connection refused, 429, 5xx, timeouts).
* ``trips_breaker``: counts as an endpoint failure for the circuit breaker. Auth and request
  errors do not: the endpoint is healthy, the request is wrong.
"""

from __future__ import annotations

from typing import Any, ClassVar

from victor_gui.core.redact import redact
from victor_gui.core.text import clean_surrogates

# Messages are capped so an HTML page or a megabyte of JSON never lands in a dialog.
_MAX_MESSAGE = 800


class VictorGuiError(Exception):
    """Base of every error victor_gui raises on purpose."""

    def __init__(self, message: str = "") -> None:
        self.message = _clean(message)
        super().__init__(self.message)


class ConfigError(VictorGuiError):
    """A settings, profiles or capabilities file could not be used as written."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(where + message)


class StorageError(VictorGuiError):
    """The conversation store could not read or write."""


class StoreInUseError(StorageError):
    """Another copy of the app holds the data folder (or has been opening it for too long)."""


class AttachmentError(VictorGuiError):
    """A file the user attached cannot be used: unreadable, vanished, encrypted, too large, an
    unknown or broken format, or a converter missing. ``reason`` is a short machine word
    (``unreadable``, ``vanished``, ``encrypted``, ``no_text``, ``too_large``, ``broken``,
    ``unsupported``, ``missing_extra``, ``cancelled``) so callers branch on it, never on text;
    the message is one clear sentence that names the file.
    """

    def __init__(self, message: str, *, reason: str = "unreadable", name: str | None = None) -> None:
        self.reason = reason
        self.name = name
        super().__init__(message)


class UpdateError(VictorGuiError):
    """An update could not be checked, downloaded, verified, backed up or started; nothing was
    changed. ``reason`` is a short machine word (``network``, ``feed``, ``signature``,
    ``version``, ``downgrade``, ``checksum``, ``too_large``, ``backup``, ``launch``,
    ``cancelled``, ``no_key``) so callers branch on it; the message is one clear sentence."""

    def __init__(self, message: str, *, reason: str = "feed") -> None:
        self.reason = reason
        super().__init__(message)


class DownloadError(VictorGuiError):
    """A model download cannot start or did not finish. ``reason`` is a short machine word
    (``disk_space``, ``disk``, ``checksum``, ``gated``, ``not_found``, ``network``, ``http``,
    ``bad_ref``) so callers branch on it, never on text; the message is one sentence that names
    the file (and the folder and the bytes missing, for disk space) and says what to do."""

    def __init__(self, message: str, *, reason: str = "network") -> None:
        self.reason = reason
        super().__init__(message)


class ModelTakesNoImagesError(VictorGuiError):
    """The chosen model does not take images, so a message with images is not sent.

    ``alternatives`` names models on the same or other configured providers that do
    (``provider/model`` labels), for the window and the CLI to offer.
    """

    def __init__(self, message: str, *, alternatives: tuple[str, ...] = ()) -> None:
        self.alternatives = alternatives
        super().__init__(message)


class GGUFError(VictorGuiError):
    """A GGUF (or safetensors) header could not be read: truncated, malformed, or past a safety limit.

    ``reason`` is a short machine word (``truncated``, ``bad_magic``, ``version``, ``limit``,
    ``bad_type``, ``bad_value``, ``io``, ``not_a_file``) so callers branch on it, never on message text.
    """

    def __init__(self, message: str, *, reason: str = "bad_value") -> None:
        self.reason = reason
        super().__init__(message)


class EngineError(VictorGuiError):
    """An engine the app starts itself (``llama-server``) could not be found, started, or made
    ready; ``log_tail`` holds the last lines it printed (empty when it never ran)."""

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        self.log_tail = log_tail
        super().__init__(message)


class EngineInstallError(VictorGuiError):
    """Building or installing the llama-server engine failed (``victor-gui engine install``).

    ``reason`` is a short machine word (``build``, ``download``, ``checksum``, ``archive``,
    ``tools``, ``busy``) so callers branch on it, never on text; ``log_tail`` holds the last lines
    of the build's output and ``log_path`` the whole log, when there is one.
    """

    def __init__(self, message: str, *, reason: str = "build", log_tail: tuple[str, ...] = (),
                 log_path: str | None = None) -> None:
        self.reason = reason
        self.log_tail = log_tail
        self.log_path = log_path
        super().__init__(message)


class EngineToolsMissingError(EngineInstallError):
    """cmake, make or a C/C++ compiler is missing; ``missing`` names them, ``hint`` is the one
    sentence that says which packages to install on this OS."""

    def __init__(self, message: str, *, missing: tuple[str, ...] = (), hint: str = "") -> None:
        self.missing = missing
        self.hint = hint
        super().__init__(message, reason="tools")


class ProviderError(VictorGuiError):
    """Any failure talking to a model provider.

    Keeps the seed's keyword names (``message``, ``provider``, ``raw_error``) and adds the HTTP
    ``status_code``, the ``model`` asked for, and ``partial_content``: text already delivered
    before a stream broke, so callers can keep it.
    """

    retryable: ClassVar[bool] = False
    trips_breaker: ClassVar[bool] = True
    kind: ClassVar[str] = "provider_error"

    def __init__(
        self,
        message: str = "",
        provider: str | None = None,
        *,
        status_code: int | None = None,
        model: str | None = None,
        raw_error: BaseException | Any = None,
        retry_after: float | None = None,
        partial_content: str | None = None,
    ) -> None:
        self.provider = provider
        self.status_code = status_code
        self.model = model
        self.raw_error = raw_error
        self.retry_after = retry_after
        self.partial_content = partial_content
        super().__init__(message)

    def __str__(self) -> str:
        bits = [f"provider={self.provider}"] if self.provider else []
        if self.model:
            bits.append(f"model={self.model}")
        if self.status_code is not None:
            bits.append(f"status={self.status_code}")
        return f"{self.message} ({', '.join(bits)})" if bits else self.message


class ProviderAuthError(ProviderError):
    """The API key is missing, wrong or lacks permission (HTTP 401/403)."""

    trips_breaker = False
    kind = "auth"


class ProviderRateLimitError(ProviderError):
    """HTTP 429: too many requests; ``retry_after`` holds the server's wait in seconds."""

    retryable = True
    kind = "rate_limit"


class ProviderTimeoutError(ProviderError):
    """The endpoint accepted the connection but did not answer in time (or stalled mid-stream)."""

    retryable = True
    kind = "timeout"


class ResponseStalledError(ProviderTimeoutError):
    """A reply began and then went quiet, or outlived its deadline: the server took the request
    and is stuck, so sending it again would only wait as long again (not retried)."""

    retryable = False


class ProviderConnectionError(ProviderError):
    """Nothing answered: connection refused, reset, DNS failure, or the server went away."""

    retryable = True
    kind = "connection"


class TLSError(ProviderConnectionError):
    """The TLS handshake failed: the endpoint's certificate could not be verified.

    Retrying cannot help (the certificate or the trust settings must change), so it is not
    ``retryable``; it still moves a group on to its next endpoint like any connection failure.
    ``host`` is the server named in the URL; ``reason`` is a short machine word
    (``untrusted``, ``hostname``, ``expired``, ``handshake``) to branch on.
    """

    retryable = False
    kind = "tls"

    def __init__(self, message: str = "", provider: str | None = None, *, host: str = "",
                 reason: str = "handshake", **kwargs: Any) -> None:
        self.host = host
        self.reason = reason
        super().__init__(message, provider, **kwargs)


class UntrustedCertificateError(TLSError):
    """The certificate is self-signed or issued by a CA this machine does not trust."""

    kind = "tls_untrusted"


class CertificateHostnameError(TLSError):
    """The certificate is valid but issued for another name than the host in the URL."""

    kind = "tls_hostname"


class CertificateExpiredError(TLSError):
    """The certificate has expired (or is not valid yet: check this machine's clock too)."""

    kind = "tls_expired"


class CABundleError(ProviderError):
    """The CA bundle named in an endpoint's settings cannot be read or holds no certificate.

    A settings problem, not a network one: nothing was sent. ``path`` is the file as written in
    the settings.
    """

    retryable = False
    trips_breaker = False
    kind = "ca_bundle"

    def __init__(self, message: str, provider: str | None = None, *, path: str = "", **kwargs: Any) -> None:
        self.path = path
        super().__init__(message, provider, **kwargs)


class ModelNotFoundError(ProviderError):
    """The endpoint does not know the model asked for."""

    trips_breaker = False
    kind = "model_not_found"


class ContextLengthExceededError(ProviderError):
    """The prompt (plus requested output) is larger than the model's context window."""

    trips_breaker = False
    kind = "context_length"


class BadRequestError(ProviderError):
    """The endpoint rejected the request as malformed or unsupported (HTTP 400/413/422)."""

    trips_breaker = False
    kind = "bad_request"


class ContentFilterError(BadRequestError):
    """The provider's content filter refused the prompt or the reply."""

    kind = "content_filter"


class ProviderServerError(ProviderError):
    """The endpoint failed on its side (HTTP 5xx, 529 overloaded)."""

    retryable = True
    kind = "server"


class ModelLoadingError(ProviderServerError):
    """HTTP 503 while a local server is still loading its model."""

    kind = "loading"


class InvalidResponseError(ProviderError):
    """The reply was not what the protocol promises: HTML, malformed JSON, a truncated stream."""

    kind = "invalid_response"


class CircuitOpenError(ProviderError):
    """The endpoint failed repeatedly; calls are refused until ``retry_after`` seconds pass."""

    trips_breaker = False
    kind = "circuit_open"


class ProviderNotFoundError(ProviderError):
    """No provider is registered under that name."""

    trips_breaker = False
    kind = "provider_not_found"


class ProviderUnavailableError(ProviderError):
    """The provider is registered but cannot be used here (protocol missing, optional extra absent)."""

    trips_breaker = False
    kind = "unavailable"


class MissingAPIKeyError(ProviderAuthError):
    """No key was found for a provider that needs one (explicit, keyring or environment)."""

    kind = "missing_key"


class EmbeddingServerError(ProviderError):
    """The server chosen for embeddings (``attachments.embedding``) could not embed a document's
    chunks. The message names the server and the model and ends with the fix (start the server,
    pull the model, start llama-server with ``--embeddings``, pick another model); ``cause`` is
    the typed error underneath, ``fix`` that last sentence alone."""

    kind = "embedding"

    def __init__(self, message: str, provider: str | None = None, *, fix: str = "",
                 cause: ProviderError | None = None, **kwargs: Any) -> None:
        self.fix = fix
        self.cause = cause
        super().__init__(message, provider, **kwargs)


def _clean(message: str) -> str:
    # A server's error text may hold a lone surrogate (JSON "\\udfff"): it could not be stored
    # with the reply it ended, nor logged.
    text = clean_surrogates(redact(str(message))).strip()
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 1] + "…"
    return text


__all__ = [
    "BadRequestError",
    "CABundleError",
    "CertificateExpiredError",
    "CertificateHostnameError",
    "CircuitOpenError",
    "ConfigError",
    "ContentFilterError",
    "ContextLengthExceededError",
    "EmbeddingServerError",
    "EngineError",
    "EngineInstallError",
    "EngineToolsMissingError",
    "GGUFError",
    "InvalidResponseError",
    "MissingAPIKeyError",
    "ModelLoadingError",
    "ModelNotFoundError",
    "ProviderAuthError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderNotFoundError",
    "ProviderRateLimitError",
    "ProviderServerError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "ResponseStalledError",
    "StorageError",
    "TLSError",
    "UntrustedCertificateError",
    "UpdateError",
    "VictorGuiError",
]
