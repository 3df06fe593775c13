"""Azure OpenAI: ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``.

The payloads and the stream are OpenAI's, so this class reuses
:class:`~victor_gui.providers.protocols.openai_compat.OpenAICompatProvider` and changes only what
Azure changes: where requests go, how they authenticate, and how refusals are typed.

Configuration follows the seed's profile keys: ``api_key_env`` (default ``AZURE_OPENAI_API_KEY``),
``api_base_env`` (default ``AZURE_OPENAI_ENDPOINT``), ``api_version`` (default
:data:`DEFAULT_API_VERSION`, or ``AZURE_OPENAI_API_VERSION``) and ``deployment`` (default: the
model name). The key goes in the ``api-key`` header; ``azure_ad_token=`` sends a Microsoft Entra
bearer token instead. Content-filter refusals, as a 400 with ``code: "content_filter"`` or as
``finish_reason: "content_filter"``, raise :class:`~victor_gui.errors.ContentFilterError`.
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
from victor_gui.errors import ContentFilterError, ModelNotFoundError, ProviderError, ProviderUnavailableError
from victor_gui.providers.protocols.openai_compat import OpenAICompatProvider
from victor_gui.providers.protocols.openai_payload import RequestPlan
from victor_gui.providers.resilience import BREAKERS, CircuitBreaker
from victor_gui.providers.types import CompletionResponse, Message, ModelInfo, StreamChunk, ToolDefinition

DEFAULT_API_VERSION = "2024-10-21"  # the current GA data-plane version
ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"


def filtered_categories(results: Any) -> list[str]:
    """Names of the categories a ``content_filter_result(s)`` object marks as filtered."""
    if not isinstance(results, dict):
        return []
    return sorted(k for k, v in results.items() if isinstance(v, dict) and v.get("filtered"))


def filter_error(
    where: str,
    results: Any,
    *,
    provider: str,
    model: str | None,
    partial: str | None,
    status: int | None = None,
) -> ContentFilterError:
    cats = filtered_categories(results)
    return ContentFilterError(
        f"Azure's content filter stopped the {where}" + (f" ({', '.join(cats)})" if cats else ""),
        provider,
        model=model,
        status_code=status,
        partial_content=partial or None,
    )


class AzureOpenAIProvider(OpenAICompatProvider):
    """OpenAI models deployed on Azure.

    Extra keywords: ``deployment``, ``api_version``, ``api_base_env``, ``api_key_env``,
    ``azure_ad_token``. ``base_url`` is the resource endpoint
    (``https://<resource>.openai.azure.com``); without it ``api_base_env`` names the variable,
    read at request time.
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

    def supports_vision(self, model: str | None = None) -> bool:
        # Azure deployments are named by their owners, so the table rarely knows them.
        return True if self.extra.get("vision") is None else bool(self.extra["vision"])

    # -- where and how -----------------------------------------------------------------------------

    def endpoint(self) -> str:
        """The resource endpoint (``base_url`` or the ``api_base_env`` variable)."""
        raw = (self.base_url or os.environ.get(self.api_base_env) or "").strip().rstrip("/")
        if not raw:
            raise ProviderUnavailableError(
                f"Azure OpenAI needs its endpoint: set {self.api_base_env} "
                "(https://<resource>.openai.azure.com) or give base_url",
                self.name,
            )
        return raw.removesuffix("/openai")

    def base_urls(self) -> list[str]:
        return [self.endpoint() + "/openai"]

    @property
    def breaker(self) -> CircuitBreaker:
        # One breaker per Azure resource, wherever its endpoint came from.
        try:
            where = self.endpoint()
        except ProviderUnavailableError:
            where = ""
        return BREAKERS.get(f"{self.name}|{where}")

    def _require_key(self) -> None:
        if not self.azure_ad_token:
            super()._require_key()

    def _headers(self) -> dict[str, str]:
        headers = super()._headers()
        headers.pop("Authorization", None)
        if self.azure_ad_token:
            headers["Authorization"] = f"Bearer {self.azure_ad_token}"
        elif self.api_key:
            headers["api-key"] = self.api_key
        return headers

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        model: str | None = None,
        accept: str | None = None,
    ) -> httpx.Response:
        """The OpenAI route mapped onto the deployment, with the ``api-version`` every call needs."""
        if path == "/chat/completions":
            deployment = self.deployment or model or ""
            path = f"/deployments/{quote(deployment, safe='-._')}/chat/completions"
        sep = "&" if "?" in path else "?"
        path = f"{path}{sep}api-version={quote(self.api_version, safe='-.')}"
        return await super()._send(method, path, body=body, model=model, accept=accept)

    # -- Azure's refusals ----------------------------------------------------------------------

    def _decode(self, response: httpx.Response, raw: bytes, model: str | None) -> Any:
        if not response.is_success:
            refined = self._azure_error(response.status_code, raw, model)
            if refined is not None:
                raise refined
        return super()._decode(response, raw, model)

    def _azure_error(self, status: int, raw: bytes, model: str | None) -> ProviderError | None:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested past the decoder's limit
            return None
        err = data.get("error") if isinstance(data, dict) else None
        if not isinstance(err, dict):
            return None
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
        return None

    def _completion(self, data: Any, plan: RequestPlan, started: float) -> CompletionResponse:
        choice = (data.get("choices") or [{}])[0] if isinstance(data, dict) else {}
        if choice.get("finish_reason") == "content_filter":
            raise filter_error(
                "reply",
                choice.get("content_filter_results"),
                provider=self.name,
                model=plan.model,
                partial=(choice.get("message") or {}).get("content"),
            )
        return super()._completion(data, plan, started)

    async def stream(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float | None = 0.7,
        max_tokens: int | None = 4096,
        tools: list[ToolDefinition] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[StreamChunk]:
        """OpenAI's stream; a reply the filter stopped ends in :class:`ContentFilterError`."""
        delivered: list[str] = []
        chunks = super().stream(
            messages, model=model, temperature=temperature, max_tokens=max_tokens, tools=tools, **kwargs
        )
        async with aclosing(chunks):  # type: ignore[type-var]
            async for chunk in chunks:
                if chunk.is_final and chunk.stop_reason == "content_filter":
                    raise filter_error(
                        "reply", None, provider=self.name, model=model, partial="".join(delivered)
                    )
                delivered.append(chunk.content)
                yield chunk

    async def list_models(self) -> list[ModelInfo]:
        """Models the resource offers for chat (``GET /openai/models``); deployments are the
        user's own names and cannot be listed through the data-plane API."""
        models = await super().list_models()
        return [m for m in models if (m.raw.get("capabilities") or {}).get("chat_completion", True)]


__all__ = ["DEFAULT_API_VERSION", "AzureOpenAIProvider"]
