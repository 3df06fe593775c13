"""The provider contract, under the seed's names.

``from victor_gui.providers.base import BaseProvider, CompletionResponse, Message, ProviderError,
StreamChunk, ToolDefinition`` is the seed's custom-provider import, and a provider written the
seed's way runs unchanged (see ``tests/providers/test_seed_example.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import httpx

from victor_gui.core.redact import register_secret
from victor_gui.errors import (
    BadRequestError,
    CircuitOpenError,
    ContentFilterError,
    ContextLengthExceededError,
    InvalidResponseError,
    MissingAPIKeyError,
    ModelLoadingError,
    ModelNotFoundError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderNotFoundError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from victor_gui.providers.endpoint_access import ensure_key_guard
from victor_gui.providers.http import (
    CLOUD_TIMEOUTS,
    Timeouts,
    classify_http_error,
    make_client,
    transport_error,
)
from victor_gui.providers.resilience import BREAKERS, CircuitBreaker, RetryPolicy, call_with_retry
from victor_gui.providers.types import (
    CompletionResponse,
    ContentPart,
    ImagePart,
    Message,
    ModelInfo,
    StreamChunk,
    TextPart,
    Timings,
    ToolCall,
    ToolCallDelta,
    ToolDefinition,
    Usage,
)

T = TypeVar("T")


class BaseProvider(ABC):
    """What every provider offers: chat, stream, model listing, capability queries, close.

    Constructor keywords follow the seed (``api_key``, ``base_url``, ``timeout``, ``max_retries``,
    ``**kwargs``). ``http_client`` injects a shared :class:`httpx.AsyncClient`; without it the
    provider builds its own on first use, with explicit per-phase timeouts, and closes it in
    :meth:`close`. ``retry_policy`` replaces the default backoff (built from ``max_retries``); it
    passes through a subclass's ``**kwargs``, so the seed's custom provider accepts it too.
    """

    default_timeouts: Timeouts = CLOUD_TIMEOUTS

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60,
        max_retries: int = 3,
        *,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        register_secret(api_key)
        self.api_key = api_key
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout
        self.max_retries = max_retries
        self.extra: dict[str, Any] = kwargs
        self.retry_policy = retry_policy or RetryPolicy(max_retries=max(0, int(max_retries)))
        self._client = http_client
        self._owns_client = http_client is None
        if http_client is not None:
            # An injected client (shared, or an endpoint's) gets the clear-text key check too,
            # unless an endpoint's own guard (with the user's consent) is on it.
            ensure_key_guard(http_client)

    # -- identity and capabilities ------------------------------------------------------------

    @property
    @abstractmethod
    def name(self) -> str:
        """The provider's registered name."""

    def supports_tools(self) -> bool:
        return False

    def supports_streaming(self) -> bool:
        return False

    def supports_vision(self, model: str | None = None) -> bool:
        return False

    def supports_reasoning(self, model: str | None = None) -> bool:
        return False

    # -- the calls ------------------------------------------------------------------------------

    @abstractmethod
    async def chat(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        tools: list[ToolDefinition] | None = None,
        **kwargs: Any,
    ) -> CompletionResponse:
        """Send the conversation and return the whole reply."""

    @abstractmethod
    def stream(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        tools: list[ToolDefinition] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Stream the reply as :class:`StreamChunk` deltas, ending with one ``is_final`` chunk."""

    async def list_models(self) -> list[ModelInfo]:
        """Models the endpoint offers. Providers whose API cannot list models say so."""
        raise ProviderUnavailableError("This provider cannot list its models", self.name)

    async def close(self) -> None:
        """Release the HTTP client if this provider built it."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
        self._client = None

    async def __aenter__(self) -> BaseProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing shared by the protocol modules -------------------------------------------------

    def timeouts(self) -> Timeouts:
        """Per-phase timeouts; ``timeout`` from the constructor bounds the read phase."""
        base = self.default_timeouts
        return replace(base, read=float(self.timeout or base.read))

    @property
    def http(self) -> httpx.AsyncClient:
        """The injected client, or one built on first use."""
        if self._client is None:
            self._client = make_client(self.timeouts())
            # A key never goes in clear text to a public host, whatever gave the base URL (a
            # profile's base_url, a providers: entry, an environment variable).
            ensure_key_guard(self._client, self.name)
            self._owns_client = True
        return self._client

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker of this provider's endpoint (shared by instances on one endpoint)."""
        return BREAKERS.get(f"{self.name}|{self.base_url or ''}")

    async def _execute_with_circuit_breaker(
        self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        """Run ``func`` behind this endpoint's breaker with retry and backoff (the seed's helper).

        Transport exceptions from ``func`` become typed errors first, so the retry decision is
        made on types.
        """

        async def attempt() -> T:
            try:
                return await func(*args, **kwargs)
            except ProviderError:
                raise
            except httpx.HTTPStatusError as exc:
                response = exc.response
                raise classify_http_error(response.status_code, response.text, provider=self.name,
                                          headers=response.headers) from exc
            except httpx.HTTPError as exc:
                raise transport_error(exc, self.name) from exc

        return await call_with_retry(attempt, policy=self.retry_policy, breaker=self.breaker,
                                     provider=self.name)


__all__ = [
    "BadRequestError",
    "BaseProvider",
    "CircuitOpenError",
    "CompletionResponse",
    "ContentFilterError",
    "ContentPart",
    "ContextLengthExceededError",
    "ImagePart",
    "InvalidResponseError",
    "Message",
    "MissingAPIKeyError",
    "ModelInfo",
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
    "StreamChunk",
    "TextPart",
    "Timings",
    "ToolCall",
    "ToolCallDelta",
    "ToolDefinition",
    "Usage",
]
