"""Azure OpenAI: ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``.

Configuration follows the seed's profile keys: ``api_key_env`` (default ``AZURE_OPENAI_API_KEY``),
``api_base_env`` (default ``AZURE_OPENAI_ENDPOINT``), ``api_version`` (default
:data:`DEFAULT_API_VERSION`, or ``AZURE_OPENAI_API_VERSION``) and ``deployment`` (default: the
model name). The key goes in the ``api-key`` header; ``azure_ad_token=`` sends a Microsoft Entra
bearer token instead. Content-filter refusals, as a 400 with ``code: "content_filter"`` or as
``finish_reason: "content_filter"`` in a stream, raise :class:`~victor_gui.errors.ContentFilterError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any
from urllib.parse import quote

import httpx

from victor_gui.core.redact import register_secret
from victor_gui.errors import ModelNotFoundError, ProviderError, ProviderUnavailableError
from victor_gui.providers.protocols.azure_wire import (
    AzureStreamDecoder,
    build_payload,
    filter_error,
    parse_completion,
)
from victor_gui.providers.protocols.cloud_base import Clock, CloudProvider
from victor_gui.providers.resilience import BREAKERS, CircuitBreaker
from victor_gui.providers.types import CompletionResponse, Message, ModelInfo, StreamChunk, ToolDefinition

DEFAULT_API_VERSION = "2024-10-21"  # the current GA data-plane version
ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"


class AzureOpenAIProvider(CloudProvider):
    """OpenAI models deployed on Azure.

    Extra keywords: ``deployment``, ``api_version``, ``api_base_env``, ``api_key_env``,
    ``azure_ad_token``. ``base_url`` is the resource endpoint
    (``https://<resource>.openai.azure.com``); without it ``api_base_env`` names the variable.
    """

    def __init__(
        self,
        *args: Any,
        deployment: str | None = None,
        api_version: str | None = None,
        api_base_env: str | None = None,
        azure_ad_token: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.deployment = deployment
        self.api_version = api_version or os.environ.get("AZURE_OPENAI_API_VERSION") or DEFAULT_API_VERSION
        self.api_base_env = api_base_env or ENDPOINT_ENV
        register_secret(azure_ad_token)
        self.azure_ad_token = azure_ad_token

    # -- where and how -----------------------------------------------------------------------------

    def endpoint(self) -> str:
        """The resource endpoint, read at request time so a variable set later is honoured."""
        raw = self.base_url or os.environ.get(self.api_base_env) or ""
        raw = raw.strip().rstrip("/")
        if not raw:
            raise ProviderUnavailableError(
                f"Azure OpenAI needs its endpoint: set {self.api_base_env} "
                "(https://<resource>.openai.azure.com) or give base_url",
                self.name,
            )
        return raw.removesuffix("/openai")

    def chat_url(self, model: str) -> str:
        deployment = self.deployment or model
        return (
            f"{self.endpoint()}/openai/deployments/{quote(deployment, safe='-._')}/chat/completions"
            f"?api-version={quote(self.api_version, safe='-.')}"
        )

    def _headers(self, *, stream: bool = False) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
        }
        if self.azure_ad_token:
            headers["authorization"] = f"Bearer {self.azure_ad_token}"
        else:
            headers["api-key"] = self._require_key()
        return headers

    @property
    def breaker(self) -> CircuitBreaker:
        # One breaker per Azure resource, whether the endpoint came from base_url or the environment.
        try:
            where = self.endpoint()
        except ProviderUnavailableError:
            where = ""
        return BREAKERS.get(f"{self.name}|{where}")

    # -- errors --------------------------------------------------------------------------------

    def classify_error(
        self, status: int, body: str, headers: httpx.Headers, model: str | None
    ) -> ProviderError:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, ValueError):
            data = None
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            code = str(err.get("code") or "")
            inner = err.get("innererror") or {}
            if code == "content_filter" or inner.get("code") == "ResponsibleAIPolicyViolation":
                return filter_error(
                    "prompt",
                    inner.get("content_filter_result"),
                    provider=self.name,
                    model=model,
                    partial=None,
                    status=status,
                )
            if code == "DeploymentNotFound":
                return ModelNotFoundError(
                    f"HTTP {status}: {err.get('message')} (deployment {self.deployment or model!r})",
                    self.name,
                    status_code=status,
                    model=model,
                )
        return super().classify_error(status, body, headers, model)

    # -- the calls ---------------------------------------------------------------------------------

    async def chat(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float | None = 0.7,
        max_tokens: int = 4096,
        tools: list[ToolDefinition] | None = None,
        **kwargs: Any,
    ) -> CompletionResponse:
        """Send the conversation and return the whole reply."""
        headers = self._headers()
        url = self.chat_url(model)
        body = build_payload(
            messages, temperature=temperature, max_tokens=max_tokens, tools=tools, stream=False, kwargs=kwargs
        )

        def parse(data: Any, clock: Clock) -> CompletionResponse:
            return parse_completion(data, clock, provider=self.name, model=model)

        result: CompletionResponse = await self._retrying_json(
            "POST", url, headers=headers, body=body, model=model, parse=parse
        )
        return result

    async def stream(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float | None = 0.7,
        max_tokens: int = 4096,
        tools: list[ToolDefinition] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Stream the reply; usage arrives on the final chunk (``stream_options.include_usage``)."""
        headers = self._headers(stream=True)
        url = self.chat_url(model)
        body = build_payload(
            messages, temperature=temperature, max_tokens=max_tokens, tools=tools, stream=True, kwargs=kwargs
        )
        chunks = self._retrying_stream(
            url,
            headers=headers,
            body=body,
            model=model,
            decoder=lambda clock: AzureStreamDecoder(clock, provider=self.name, model=model),
        )
        async with aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    async def list_models(self) -> list[ModelInfo]:
        """Models the resource can deploy (``GET /openai/models``); deployments are named by the user."""
        url = f"{self.endpoint()}/openai/models?api-version={quote(self.api_version, safe='-.')}"
        data = await self._retrying_json("GET", url, headers=self._headers())
        models = []
        for row in data.get("data") or []:
            caps = row.get("capabilities") or {}
            if caps and not caps.get("chat_completion"):
                continue
            models.append(
                ModelInfo(
                    id=row["id"], provider=self.name, capabilities=["chat", "tools", "streaming"], raw=row
                )
            )
        return models


__all__ = ["DEFAULT_API_VERSION", "AzureOpenAIProvider"]
