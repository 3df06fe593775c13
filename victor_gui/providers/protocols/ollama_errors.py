"""Ollama's failures, translated into the typed errors of :mod:`victor_gui.errors`.

Ollama has no error codes, only ``{"error": "<text>"}`` (``servers.md`` §1.7), so this is the
one place where message text is read, at the boundary, to pick a type and add a hint a person
can act on. Callers decide from the type alone.
"""

from __future__ import annotations

from typing import Any

import httpx

from victor_gui.errors import (
    BadRequestError,
    ContextLengthExceededError,
    ModelNotFoundError,
    ProviderAuthError,
    ProviderError,
    ProviderServerError,
)
from victor_gui.providers.http import classify_http_error, error_details

HOST_CHECK_HINT = (
    "Ollama answered a bare 403: its Host-header check refused the name used to reach it. Use "
    "127.0.0.1 or localhost, or start Ollama with OLLAMA_HOST=0.0.0.0 (and OLLAMA_ORIGINS) when "
    "you reach it by another name or through a proxy that rewrites the Host header")
# Runner texts for a prompt larger than num_ctx (only with truncate:false; by default Ollama
# silently drops the oldest turns instead).
_CONTEXT_HINTS = ("context length", "context window", "exceeds the context", "too many tokens")
AUTH_HINT = ("Ollama is behind an authenticating proxy (or is ollama.com): set an API key for this "
             "endpoint")


def with_hint(error: ProviderError, hint: str) -> ProviderError:
    """The same error type with a hint appended to its message."""
    clone = type(error)(f"{error.message}. {hint}", error.provider, status_code=error.status_code,
                        model=error.model, raw_error=error.raw_error, retry_after=error.retry_after,
                        partial_content=error.partial_content)
    return clone


def classify(status: int, body: str, *, provider: str, model: str | None,
             headers: httpx.Headers | dict[str, str] | None = None, content_type: str = "",
             ) -> ProviderError:
    """The typed error for a non-2xx reply from Ollama (or whatever answered on its port)."""
    if status == 403 and not body.strip():
        return ProviderAuthError(HOST_CHECK_HINT, provider, status_code=403, model=model)
    if status == 404 and body.strip() == "404 page not found":  # gin: no such route
        return BadRequestError(f"HTTP 404: {body.strip()}. The server has no such route: is this Ollama, "
                               "and is the base URL right?", provider, status_code=404, model=model)
    error = classify_http_error(status, body, provider=provider, model=model, headers=headers,
                                content_type=content_type)
    if isinstance(error, ModelNotFoundError):
        name = model or "the model"
        return with_hint(error, f"Download it first with: ollama pull {name}")
    if status == 401:
        return with_hint(error, AUTH_HINT)
    return error


def midstream_error(message: Any, *, provider: str, model: str | None, partial: str) -> ProviderError:
    """An ``{"error": ...}`` line inside a 200 stream: the runner failed after output began."""
    text, _, _ = error_details(message) if isinstance(message, str) and message.startswith("{") else (
        str(message), None, None)
    low = text.lower()
    kw: dict[str, Any] = {"status_code": 200, "model": model, "partial_content": partial or None}
    if any(h in low for h in _CONTEXT_HINTS):
        return ContextLengthExceededError(f"Ollama stopped: {text}", provider, **kw)
    if "not found" in low and "model" in low:
        return ModelNotFoundError(f"Ollama stopped: {text}. Download it first with: ollama pull "
                                  f"{model or 'the model'}", provider, **kw)
    return ProviderServerError(f"Ollama stopped mid-reply: {text}", provider, **kw)


def is_no_tools(error: BaseException) -> bool:
    """400 ``… does not support tools``: the model's template has no tool support."""
    return isinstance(error, BadRequestError) and "does not support tools" in error.message.lower()


def is_no_think(error: BaseException) -> bool:
    """400 mentioning thinking: ``"m" does not support thinking`` (wording varies by version)."""
    return isinstance(error, BadRequestError) and "think" in error.message.lower()
