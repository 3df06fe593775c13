"""Anthropic's Messages API (``POST /v1/messages``), whole and streamed.

Auth is the ``x-api-key`` header with ``anthropic-version: 2023-06-01``; the key comes from the
constructor, the keyring or ``ANTHROPIC_API_KEY`` (see :mod:`victor_gui.providers.keys`).
Extended thinking is asked for with ``thinking={"type": "enabled", "budget_tokens": N}`` (or
``thinking=N``) and arrives as ``reasoning``, never mixed into ``content``. HTTP 529
``overloaded_error`` is a retryable :class:`~victor_gui.errors.ProviderServerError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from victor_gui.errors import ModelNotFoundError, ProviderError
from victor_gui.providers.call_memory import CallMemory
from victor_gui.providers.protocols.anthropic_wire import (
    ERROR_TYPE_STATUS,
    AnthropicStreamDecoder,
    build_payload,
    parse_message,
)
from victor_gui.providers.protocols.cloud_base import Clock, CloudProvider
from victor_gui.providers.types import (
    CompletionResponse,
    Message,
    ModelInfo,
    StreamChunk,
    ToolCall,
    ToolDefinition,
)

API_VERSION = "2023-06-01"


class AnthropicProvider(CloudProvider):
    """Claude models through the Messages API.

    Extra keywords: ``anthropic_version`` (header value), ``anthropic_beta`` (comma list sent as
    ``anthropic-beta``).

    With thinking on, the API wants the signed thinking that preceded a ``tool_use`` sent back
    with it. The neutral history keeps only the reasoning text, so the signed blocks of recent
    tool-calling replies are remembered here (bounded), keyed by their first tool-use id, and
    replayed; they are also on the final chunk's ``metadata["thinking_blocks"]``.
    """

    _THINKING_MEMORY = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._thinking: CallMemory[list[dict[str, Any]]] = CallMemory(self._THINKING_MEMORY)

    def remember_thinking(self, calls: list[ToolCall], blocks: list[dict[str, Any]]) -> None:
        """Give back the signed thinking of a stored tool-calling turn (kept with the message),
        so a tool loop with thinking goes on after a restart as it would have in memory."""
        self._thinking.remember_turn(calls, blocks)

    def supports_reasoning(self, model: str | None = None) -> bool:
        return True

    def _headers(self, *, stream: bool = False) -> dict[str, str]:
        headers = {
            "anthropic-version": str(self.extra.get("anthropic_version") or API_VERSION),
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
        }
        # A hand-added Anthropic-compatible gateway may need no key (its spec says so): then
        # nothing is sent rather than refusing; Anthropic itself always needs one.
        if self.spec.needs_key or self.api_key:
            headers["x-api-key"] = self._require_key()
        if self.extra.get("anthropic_beta"):
            headers["anthropic-beta"] = str(self.extra["anthropic_beta"])
        return headers

    def _url(self, path: str) -> str:
        base = (self.base_url or "https://api.anthropic.com").rstrip("/")
        if base.endswith("/v1"):
            base = base[:-3]
        return f"{base}/v1{path}"

    def classify_error(
        self, status: int, body: str, headers: httpx.Headers, model: str | None
    ) -> ProviderError:
        error = super().classify_error(status, body, headers, model)
        # A 404 whose body says not_found_error on the messages route is the model, whatever the wording.
        if status == 404 and '"not_found_error"' in body and model is not None:
            return ModelNotFoundError(error.message, self.name, status_code=status, model=model)
        return error

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
        body = build_payload(
            messages,
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            tools=tools,
            stream=False,
            kwargs=kwargs,
            thinking_for=self._thinking.get,
        )

        def parse(data: Any, clock: Clock) -> CompletionResponse:
            return parse_message(data, clock, provider=self.name, model=model)

        result: CompletionResponse = await self._retrying_json(
            "POST", self._url("/messages"), headers=headers, body=body, model=model, parse=parse
        )
        self._thinking.remember_turn(result.tool_calls, result.metadata.get("thinking_blocks"))
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
        """Stream the reply: content, reasoning and tool-call deltas, then one final chunk."""
        headers = self._headers(stream=True)
        body = build_payload(
            messages,
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            tools=tools,
            stream=True,
            kwargs=kwargs,
            thinking_for=self._thinking.get,
        )
        chunks = self._retrying_stream(
            self._url("/messages"),
            headers=headers,
            body=body,
            model=model,
            decoder=lambda clock: AnthropicStreamDecoder(clock, provider=self.name, model=model),
        )
        # aclosing: a consumer that stops early must close the HTTP stream now, not at GC.
        async with aclosing(chunks):
            async for chunk in chunks:
                if chunk.is_final:
                    self._thinking.remember_turn(chunk.tool_calls, chunk.metadata.get("thinking_blocks"))
                yield chunk

    async def list_models(self) -> list[ModelInfo]:
        """Models from ``GET /v1/models`` (all pages)."""
        headers = self._headers()
        models: list[ModelInfo] = []
        after: str | None = None
        for _ in range(50):  # bounded: a server that pages forever is broken
            url = self._url("/models?limit=1000" + (f"&after_id={after}" if after else ""))
            data = await self._retrying_json("GET", url, headers=headers)
            for row in data.get("data") or []:
                models.append(
                    ModelInfo(
                        id=row["id"],
                        provider=self.name,
                        family="claude",
                        capabilities=["chat", "tools", "vision", "streaming"],
                        display_name=row.get("display_name"),
                        raw=row,
                    )
                )
            if not data.get("has_more") or not data.get("last_id"):
                break
            after = data["last_id"]
        return models


__all__ = ["API_VERSION", "ERROR_TYPE_STATUS", "AnthropicProvider"]
