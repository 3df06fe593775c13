"""Hugging Face's serverless text-generation route, for models the OpenAI-compatible router does
not serve as chat (base models, models without a chat template on the router).

``POST {router}/hf-inference/models/{model}`` with ``{"inputs": prompt, "parameters": {...},
"stream": bool}``. A stream is TGI-style SSE: ``data: {"token": {"text", "special"},
"generated_text": null, "details": null}`` per token, the last event carrying the whole
``generated_text`` and (``details: true``) ``finish_reason`` and ``generated_tokens``; a failure
after the first token is ``data: {"error": ..., "error_type": ...}``. A whole reply is
``[{"generated_text": ..., "details": {...}}]``. A cold model answers 503
``{"error": "Model ... is currently loading", "estimated_time": 20.0}``, typed as
:class:`ModelLoadingError` with ``retry_after`` from ``estimated_time``.

The route is chosen per model: ``hf_route="text-generation"`` on the request, or ``hf_route:
text-generation`` in the capabilities table for that model on ``huggingface``. The prompt comes
from :mod:`.hf_prompt`. Tools are not sent (the reply says so in ``metadata["tools_omitted"]``).
It reuses the owning OpenAI-compatible provider's client, key, timeouts, breaker and retries.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import quote

import httpx

from victor_gui.core.text import TextAssembly
from victor_gui.errors import ContextLengthExceededError, InvalidResponseError, ProviderError
from victor_gui.providers.capabilities import resolve_capabilities
from victor_gui.providers.http import (
    classify_http_error,
    parse_json_body,
    read_body,
    send_streamed,
    transport_error,
)
from victor_gui.providers.protocols.cloud_base import Clock, final_chunk
from victor_gui.providers.protocols.hf_prompt import build_prompt, template_for
from victor_gui.providers.resilience import call_with_retry, stream_with_retry
from victor_gui.providers.streaming import SSEEvent, iter_sse
from victor_gui.providers.types import (
    CompletionResponse,
    Message,
    StreamChunk,
    ToolDefinition,
    Usage,
    token_count,
)

if TYPE_CHECKING:
    from victor_gui.providers.http import Timeouts
    from victor_gui.providers.resilience import CircuitBreaker, RetryPolicy


class RouteOwner(Protocol):
    """What the text-generation route uses of the OpenAI-compatible provider that owns it
    (declared here so this module does not import its owner: no import cycle)."""

    retry_policy: RetryPolicy
    _sleep: Callable[[float], Awaitable[None]]

    @property
    def name(self) -> str: ...
    @property
    def breaker(self) -> CircuitBreaker: ...
    @property
    def http(self) -> httpx.AsyncClient: ...
    def timeouts(self, model: str | None = None) -> Timeouts: ...
    def base_urls(self) -> list[str]: ...
    def _require_key(self) -> None: ...
    def _headers(self) -> dict[str, str]: ...

ROUTE = "text-generation"
STOP_REASONS = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


def wanted_route(provider_name: str, model: str, kwargs: dict[str, Any]) -> str | None:
    """``"text-generation"`` when this request goes to the serverless route, else None.

    Pops ``hf_route`` from ``kwargs`` (it must never reach an OpenAI body)."""
    explicit = kwargs.pop("hf_route", None)
    if provider_name != "huggingface":
        return None
    if explicit is None:
        extra = resolve_capabilities(provider_name, model).model_extra or {}
        explicit = extra.get("hf_route")
    return ROUTE if explicit == ROUTE else None


def _stops(details: Any) -> tuple[str, int]:
    if not isinstance(details, dict):
        return "stop", 0
    native = str(details.get("finish_reason") or "")
    return STOP_REASONS.get(native, "stop"), token_count(details.get("generated_tokens"))


class TextGenerationRoute:
    """Serves ``chat``/``stream`` of one Hugging Face provider over the text-generation route."""

    def __init__(self, provider: RouteOwner) -> None:
        self.p = provider
        self.name = provider.name

    def url(self, model: str) -> str:
        base = self.p.base_urls()[0].rstrip("/")
        root = base[:-3] if base.endswith("/v1") else base
        return f"{root}/hf-inference/models/{quote(model, safe='/')}"

    def body(
        self,
        messages: list[Message],
        model: str,
        temperature: float | None,
        max_tokens: int | None,
        stream: bool,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        extra = resolve_capabilities(self.name, model).model_extra or {}
        template = template_for(model, kwargs.get("chat_template") or extra.get("hf_chat_template"))
        prompt, stops = build_prompt(messages, template)
        params: dict[str, Any] = {"return_full_text": False, "details": True, "stop": stops}
        if max_tokens:
            params["max_new_tokens"] = int(max_tokens)
        # TGI refuses temperature 0 ("must be strictly positive"): greedy decoding instead.
        if temperature is not None and temperature > 0:
            params.update(temperature=temperature, do_sample=True)
        else:
            params["do_sample"] = False
        for key in ("top_p", "top_k", "repetition_penalty", "seed"):
            if kwargs.get(key) is not None:
                params[key] = kwargs[key]
        return {"inputs": prompt, "parameters": params, "stream": stream}

    # -- one request --------------------------------------------------------------------------

    def error(self, status: int, body: str, headers: httpx.Headers, model: str) -> ProviderError:
        err = classify_http_error(
            status,
            body,
            provider=self.name,
            model=model,
            headers=headers,
            content_type=headers.get("content-type", ""),
        )
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested past the decoder's limit
            data = None
        message = str(data.get("error") or "") if isinstance(data, dict) else ""
        if status == 422 and "`max_new_tokens` must be <=" in message:
            # TGI's wording for a prompt plus reply budget beyond the model's context.
            return ContextLengthExceededError(
                f"HTTP {status}: {message}", self.name, status_code=status, model=model
            )
        estimate = data.get("estimated_time") if isinstance(data, dict) else None
        if err.retry_after is None and isinstance(estimate, int | float) and estimate > 0:
            err.retry_after = float(estimate)
        return err

    async def open(self, model: str, body: dict[str, Any], *, stream: bool) -> httpx.Response:
        self.p._require_key()
        headers = self.p._headers()
        headers["Accept"] = "text/event-stream" if stream else "application/json"
        request = self.p.http.build_request(
            "POST",
            self.url(model),
            content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            headers=headers,
            timeout=self.p.timeouts(model).to_httpx(),
        )
        return await send_streamed(self.p.http, request, provider=self.name, model=model, classify=self.error)

    # -- chat ----------------------------------------------------------------------------------

    async def chat(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float | None,
        max_tokens: int | None,
        tools: list[ToolDefinition] | None,
        kwargs: dict[str, Any],
    ) -> CompletionResponse:
        body = self.body(messages, model, temperature, max_tokens, False, kwargs)

        async def attempt() -> CompletionResponse:
            clock = Clock()
            response = await self.open(model, body, stream=False)
            raw = await read_body(response, provider=self.name, model=model)
            data = parse_json_body(raw, provider=self.name, status=response.status_code, model=model)
            item = data[0] if isinstance(data, list) and data else data
            if not isinstance(item, dict) or not isinstance(item.get("generated_text"), str):
                raise InvalidResponseError("No generated_text in the reply", self.name, model=model)
            stop, count = _stops(item.get("details"))
            clock.mark()
            return CompletionResponse(
                content=item["generated_text"],
                stop_reason=stop,
                usage=Usage(completion_tokens=count) if count else None,
                model=model,
                timings=clock.timings(count),
                metadata=self._metadata(tools),
                raw_response=data,
            )

        return await call_with_retry(
            attempt,
            policy=self.p.retry_policy,
            breaker=self.p.breaker,
            provider=self.name,
            sleep=self.p._sleep,
        )

    def _metadata(self, tools: list[ToolDefinition] | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"hf_route": ROUTE}
        if tools:
            meta["tools_omitted"] = "the text-generation route takes no tools"
        return meta

    # -- stream --------------------------------------------------------------------------------

    async def stream(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float | None,
        max_tokens: int | None,
        tools: list[ToolDefinition] | None,
        kwargs: dict[str, Any],
    ) -> AsyncIterator[StreamChunk]:
        body = self.body(messages, model, temperature, max_tokens, True, kwargs)
        meta = self._metadata(tools)

        async def once() -> AsyncIterator[StreamChunk]:
            clock = Clock()
            partial = TextAssembly()
            response = await self.open(model, body, stream=True)
            try:
                async with aclosing(self._events(response, model)) as events:
                    async for data in events:
                        if data.get("error"):
                            raise self._stream_error(data, model, partial.text)
                        token = data.get("token") or {}
                        text = "" if token.get("special") else str(token.get("text") or "")
                        if text:
                            clock.mark()
                            partial.append(text)
                            yield StreamChunk(content=text, model=model)
                        if data.get("generated_text") is not None:
                            stop, count = _stops(data.get("details"))
                            final = final_chunk(
                                clock=clock,
                                usage=Usage(completion_tokens=count) if count else None,
                                stop_reason=stop,
                                tool_calls=[],
                                model=model,
                                native_stop=(data.get("details") or {}).get("finish_reason"),
                            )
                            final.metadata.update(meta)
                            yield final
                            return
                raise InvalidResponseError(
                    "The stream ended before the final event",
                    self.name,
                    model=model,
                    partial_content=partial.text or None,
                )
            except ProviderError as exc:
                if exc.partial_content is None and partial.text:
                    exc.partial_content = partial.text
                raise
            except httpx.HTTPError as exc:
                raise transport_error(exc, self.name, model=model, partial=partial.text or None) from exc
            finally:
                await response.aclose()

        chunks = stream_with_retry(
            once, policy=self.p.retry_policy, breaker=self.p.breaker, provider=self.name, sleep=self.p._sleep
        )
        async with aclosing(cast(AsyncGenerator[StreamChunk, None], chunks)) as items:
            async for chunk in items:
                yield chunk

    async def _events(self, response: httpx.Response, model: str) -> AsyncGenerator[dict[str, Any], None]:
        sse = cast(AsyncGenerator[SSEEvent, None], iter_sse(response, provider=self.name))
        async with aclosing(sse) as events:
            async for event in events:
                try:
                    data = json.loads(event.data)
                except (ValueError, RecursionError) as exc:
                    raise InvalidResponseError(
                        f"Malformed stream event: {exc}", self.name, model=model, raw_error=exc
                    ) from exc
                if not isinstance(data, dict):
                    raise InvalidResponseError("A stream event is not an object", self.name, model=model)
                yield data

    def _stream_error(self, data: dict[str, Any], model: str, partial: str) -> ProviderError:
        # TGI's error_type: "generation", "validation", "overloaded", "incomplete_generation".
        kind = str(data.get("error_type") or "")
        status = {"validation": 422, "overloaded": 429}.get(kind, 500)
        err = classify_http_error(
            status, json.dumps({"error": data["error"]}), provider=self.name, model=model
        )
        err.partial_content = partial or None
        return err


__all__ = ["ROUTE", "TextGenerationRoute", "wanted_route"]
