"""Google AI (Gemini API): ``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``.

The key (``GOOGLE_API_KEY`` or ``GEMINI_API_KEY``) travels in the ``x-goog-api-key`` header,
never in the URL, so it cannot land in a logged URL. ``safety_level`` (the seed's constructor
option: ``block_none`` (default), ``off``, ``block_few``, ``block_some``, ``block_most``) becomes
``safetySettings``. A reply stopped for SAFETY or RECITATION raises
:class:`~victor_gui.errors.ContentFilterError` with any text already received.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any
from urllib.parse import quote

import httpx

from victor_gui.core.text import TextAssembly
from victor_gui.errors import (
    ContextLengthExceededError,
    InvalidResponseError,
    ProviderAuthError,
    ProviderError,
)
from victor_gui.providers.call_memory import CallMemory
from victor_gui.providers.http import error_details_from_json
from victor_gui.providers.json_guard import loads_object
from victor_gui.providers.protocols.cloud_base import Clock, CloudProvider, final_chunk
from victor_gui.providers.protocols.gemini_wire import (
    Candidate,
    build_payload,
    needs_call_signatures,
    safety_settings,
    stop_reason,
    usage_from,
)
from victor_gui.providers.streaming import iter_sse
from victor_gui.providers.types import (
    CompletionResponse,
    Message,
    ModelInfo,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    ToolDefinition,
    Usage,
)

_CONTEXT = re.compile(
    r"input token count.*exceeds the maximum|exceeds the maximum number of tokens", re.I | re.S
)
_AUTH_REASONS = {
    "API_KEY_INVALID",
    "API_KEY_SERVICE_BLOCKED",
    "ACCESS_TOKEN_EXPIRED",
    "ACCESS_TOKEN_TYPE_UNSUPPORTED",
}


class GeminiStreamDecoder:
    """Reads ``data:`` events, each a whole ``GenerateContentResponse`` with the new parts only."""

    def __init__(self, clock: Clock, *, provider: GeminiProvider, model: str) -> None:
        self.clock = clock
        self.provider = provider
        self.model = model
        self._partial = TextAssembly()
        self.calls: list[ToolCall] = []
        self.usage: Usage | None = None
        self.finish: str | None = None

    @property
    def partial(self) -> str:
        """The answer text so far (joined on read; read only when an error needs it)."""
        return self._partial.text

    async def run(self, response: httpx.Response) -> AsyncGenerator[StreamChunk, None]:
        async for event in iter_sse(response, provider=self.provider.name):
            if not event.data.strip():
                continue
            data = loads_object(event.data, where="Gemini stream event", provider=self.provider.name,
                                model=self.model, partial=self.partial)
            if "error" in data:
                error = self.provider.error_from_json(data, None, model=self.model)
                error.partial_content = self.partial or None
                raise error
            try:
                candidate = Candidate(data, provider=self.provider.name, model=self.model)
            except ProviderError as error:  # its partial is this event's text: put ours before it
                error.partial_content = (self.partial + (error.partial_content or "")) or None
                raise
            self.provider.remember_signatures(candidate.signatures)
            self.usage = usage_from(data.get("usageMetadata")) or self.usage
            chunk = StreamChunk(content=candidate.text, reasoning=candidate.thought)
            if candidate.calls:
                deltas = []
                for call in candidate.calls:
                    deltas.append(
                        ToolCallDelta(
                            index=len(self.calls),
                            id=call.id,
                            name=call.name,
                            arguments_delta=json.dumps(call.arguments),
                        )
                    )
                    self.calls.append(call)
                chunk.tool_call_deltas = deltas
            if candidate.text or candidate.thought or candidate.calls:
                self.clock.mark()
                self._partial.append(candidate.text)
                yield chunk
            if candidate.finish:
                self.finish = candidate.finish
        if self.finish is None:
            raise InvalidResponseError(
                "The stream ended before a finishReason",
                self.provider.name,
                model=self.model,
                partial_content=self.partial or None,
            )
        yield final_chunk(
            clock=self.clock,
            usage=self.usage,
            stop_reason=stop_reason(self.finish, bool(self.calls)),
            tool_calls=self.calls,
            model=self.model,
            native_stop=self.finish,
        )


class GeminiProvider(CloudProvider):
    """Gemini models through the Google AI API.

    Extra keywords: ``safety_level`` (see module docstring), ``api_version`` (``v1beta``).

    The ``thoughtSignature`` Gemini attaches to a function call must go back with that call
    (Gemini 3 answers 400 otherwise). The neutral history has no field for it, so signatures of
    recent calls are remembered here (bounded, by call id) and put back when the call is sent.
    Calls with none remembered (made by another provider, or before a restart) are sent with
    Google's documented stand-in, so switching to Gemini 3 mid-chat keeps working.
    """

    _SIGNATURE_MEMORY = 512

    def __init__(self, *args: Any, safety_level: str = "block_none", **kwargs: Any) -> None:
        safety_settings(safety_level)  # an unknown level is a programming error: fail at creation
        self.safety_level = safety_level
        self._signatures: CallMemory[str] = CallMemory(self._SIGNATURE_MEMORY)
        super().__init__(*args, **kwargs)

    def remember_signatures(self, signatures: dict[str, str]) -> None:
        self._signatures.update(signatures)

    def supports_reasoning(self, model: str | None = None) -> bool:
        return True

    # -- where and how -----------------------------------------------------------------------------

    def model_url(self, model: str, method: str) -> str:
        base = (self.base_url or "https://generativelanguage.googleapis.com").rstrip("/")
        version = self.extra.get("api_version") or "v1beta"
        name = model.removeprefix("models/")
        return f"{base}/{version}/models/{quote(name, safe='-._@')}:{method}"

    async def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._require_key()}

    async def _headers(self, *, stream: bool = False) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
        }
        headers.update(await self.auth_headers())
        return headers

    # -- errors --------------------------------------------------------------------------------

    def classify_error(
        self, status: int, body: str, headers: httpx.Headers, model: str | None
    ) -> ProviderError:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested past the decoder's limit
            return super().classify_error(status, body, headers, model)
        return self.error_from_json(data, status, model=model, headers=headers)

    def error_from_json(
        self, data: Any, status: int | None, *, model: str | None, headers: httpx.Headers | None = None
    ) -> ProviderError:
        """The typed error for ``{"error": {"code", "message", "status", "details"}}``."""
        err = (data[0] if isinstance(data, list) and data else data).get("error") or {}
        status = int(status or err.get("code") or 500)
        message, _, _ = error_details_from_json(data)
        details = err.get("details") or []
        reasons = {d.get("reason") for d in details if isinstance(d, dict)}
        text = f"HTTP {status}: {message} ({err.get('status') or 'error'})"
        if reasons & _AUTH_REASONS or err.get("status") in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            return ProviderAuthError(text, self.name, status_code=status, model=model)
        if status == 400 and _CONTEXT.search(message):
            return ContextLengthExceededError(text, self.name, status_code=status, model=model)
        error = super().classify_error(status, json.dumps(data), headers or httpx.Headers(), model)
        if status == 429 and error.retry_after is None:
            # Google puts the wait in a RetryInfo detail ("37s"), not in a Retry-After header.
            for detail in details:
                delay = str(detail.get("retryDelay") or "") if isinstance(detail, dict) else ""
                if delay.endswith("s"):
                    try:
                        error.retry_after = float(delay[:-1])
                    except ValueError:
                        pass
        return error

    # -- the calls ---------------------------------------------------------------------------------

    def _payload(
        self,
        messages: list[Message],
        model: str,
        temperature: float | None,
        max_tokens: int | None,
        tools: list[ToolDefinition] | None,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        return build_payload(
            messages,
            temperature=temperature,
            max_tokens=max_tokens,
            tools=tools,
            safety_level=kwargs.pop("safety_level", None) or self.safety_level,
            kwargs=kwargs,
            signature_for=self._signatures.get,
            sign_unsigned=needs_call_signatures(model),
        )

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
        headers = await self._headers()
        body = self._payload(messages, model, temperature, max_tokens, tools, kwargs)

        def parse(data: Any, clock: Clock) -> CompletionResponse:
            if not isinstance(data, dict):
                raise InvalidResponseError(
                    "generateContent answered something other than an object", self.name, model=model
                )
            candidate = Candidate(data, provider=self.name, model=model)
            self.remember_signatures(candidate.signatures)
            usage = usage_from(data.get("usageMetadata"))
            return CompletionResponse(
                content=candidate.text,
                reasoning=candidate.thought or None,
                tool_calls=candidate.calls or None,
                stop_reason=stop_reason(candidate.finish, bool(candidate.calls)),
                usage=usage,
                model=data.get("modelVersion") or model,
                timings=clock.timings(usage.completion_tokens if usage else 0),
                metadata={"native_stop_reason": candidate.finish, "id": data.get("responseId")},
                raw_response=data,
            )

        result: CompletionResponse = await self._retrying_json(
            "POST",
            self.model_url(model, "generateContent"),
            headers=headers,
            body=body,
            model=model,
            parse=parse,
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
        """Stream the reply (``alt=sse``): text, thoughts and whole function calls as they come."""
        headers = await self._headers(stream=True)
        body = self._payload(messages, model, temperature, max_tokens, tools, kwargs)
        url = self.model_url(model, "streamGenerateContent") + "?alt=sse"
        chunks = self._retrying_stream(
            url,
            headers=headers,
            body=body,
            model=model,
            decoder=lambda clock: GeminiStreamDecoder(clock, provider=self, model=model),
        )
        # aclosing: a consumer that stops early must close the HTTP stream now, not at GC.
        async with aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    async def list_models(self) -> list[ModelInfo]:
        """Models from ``GET /v1beta/models`` that can ``generateContent`` (all pages)."""
        headers = await self._headers()
        base = (self.base_url or "https://generativelanguage.googleapis.com").rstrip("/")
        version = self.extra.get("api_version") or "v1beta"
        models: list[ModelInfo] = []
        token: str | None = None
        for _ in range(50):
            url = f"{base}/{version}/models?pageSize=1000" + (f"&pageToken={quote(token)}" if token else "")
            data = await self._retrying_json("GET", url, headers=headers)
            for row in data.get("models") or []:
                methods = row.get("supportedGenerationMethods") or []
                if "generateContent" not in methods:
                    continue
                models.append(
                    ModelInfo(
                        id=str(row.get("name", "")).removeprefix("models/"),
                        provider=self.name,
                        context_length=row.get("inputTokenLimit"),
                        family="gemini",
                        capabilities=["chat", "tools", "vision", "streaming"]
                        + (["reasoning"] if row.get("thinking") else []),
                        display_name=row.get("displayName"),
                        raw=row,
                    )
                )
            token = data.get("nextPageToken")
            if not token:
                break
        return models


__all__ = ["GeminiProvider", "GeminiStreamDecoder"]
