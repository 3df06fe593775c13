"""The OpenAI chat-completions wire protocol, for every ``protocol="openai"`` row of the catalog
(OpenAI, xAI, DeepSeek, Mistral, Groq, Together, Fireworks, OpenRouter, Cerebras, Moonshot,
Z.ai, Hugging Face router, LM Studio, vLLM, llama.cpp) and for user-defined endpoints.

Request bodies come from :mod:`.openai_payload` and :mod:`victor_gui.providers.quirks`; stream
assembly from :mod:`.openai_stream`. Retries go through :mod:`victor_gui.providers.resilience`:
a stream is retried only before its first chunk reached the caller, never after.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from victor_gui.errors import (
    BadRequestError,
    InvalidResponseError,
    MissingAPIKeyError,
    ProviderError,
    ProviderUnavailableError,
)
from victor_gui.providers import quirks
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import ProviderSpec
from victor_gui.providers.endpoints import candidate_base_urls
from victor_gui.providers.http import (
    CLOUD_TIMEOUTS,
    LOCAL_TIMEOUTS,
    Timeouts,
    classify_http_error,
    looks_like_html,
    parse_json_body,
    transport_error,
)
from victor_gui.providers.keys import key_hint, resolve_api_key
from victor_gui.providers.protocols.openai_models import models_from_payload
from victor_gui.providers.protocols.openai_payload import (
    PASSTHROUGH,
    to_openai_messages,
    tools_payload,
    with_tools_in_system,
)
from victor_gui.providers.protocols.openai_stream import StreamAssembler, error_from_payload
from victor_gui.providers.resilience import (
    BREAKERS,
    CircuitBreaker,
    call_with_retry,
    stream_with_retry,
)
from victor_gui.providers.types import (
    CompletionResponse,
    Message,
    ModelInfo,
    StreamChunk,
    Timings,
    ToolCall,
    ToolDefinition,
)

# Error texts that mean "this model/server cannot take a tools field" (Ollama-style, llama.cpp
# without --jinja, vLLM without a tool parser): retry once with the tools described as text.
_NO_TOOLS_HINTS = ("does not support tools", "tools param requires --jinja",
                   "requires --enable-auto-tool-choice")
_ERROR_BODY_LIMIT = 65536


def custom_spec(name: str, base_url: str, *, local: bool | None = None, needs_key: bool = False) -> ProviderSpec:
    """A spec for a user-defined OpenAI-compatible endpoint (loopback URLs count as local)."""
    host = httpx.URL(base_url).host
    is_local = host in ("127.0.0.1", "localhost", "::1") if local is None else local
    return ProviderSpec(name, name, "openai", "local" if is_local else "cloud", base_url.rstrip("/"),
                        needs_key=needs_key)


@dataclass
class _Plan:
    """One request, ready to send: the body plus what the reply handling needs to know."""

    model: str
    body: dict[str, Any]
    tools: list[ToolDefinition] = field(default_factory=list)
    text_tools: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def native_tools(self) -> bool:
        return "tools" in self.body


class OpenAICompatProvider(BaseProvider):
    """A provider speaking OpenAI's ``/chat/completions`` (see the module docstring).

    Keywords beyond the seed's: ``spec`` (the catalog row; built from ``base_url`` when absent),
    ``api_key_env`` (a profile's key variable), ``retry_policy`` and ``sleep`` (tests), ``vision``
    (force image support on a user-defined endpoint), ``extra_headers``.
    """

    def __init__(self, spec: ProviderSpec | None = None, api_key: str | None = None,
                 base_url: str | None = None, timeout: float | None = None, max_retries: int = 3, *,
                 http_client: httpx.AsyncClient | None = None, **kwargs: Any) -> None:
        if spec is None:
            if not base_url:
                raise ProviderUnavailableError("An OpenAI-compatible endpoint needs a base URL", "openai-compatible")
            spec = custom_spec(str(kwargs.pop("name", "openai-compatible")), base_url)
        self.spec = spec
        self._api_key_env = kwargs.pop("api_key_env", None)
        key, self.key_source = resolve_api_key(spec, api_key, api_key_env=self._api_key_env)
        policy = kwargs.pop("retry_policy", None)
        self._sleep = kwargs.pop("sleep", asyncio.sleep)
        super().__init__(api_key=key, base_url=base_url, timeout=timeout or 0, max_retries=max_retries,
                         http_client=http_client, **kwargs)
        if policy is not None:
            self.retry_policy = policy
        self.default_timeouts = LOCAL_TIMEOUTS if spec.is_local else CLOUD_TIMEOUTS
        self._active_base: str | None = None
        self._no_native_tools: set[str] = set()

    # -- identity and capabilities -------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    def supports_tools(self) -> bool:
        return True

    def supports_streaming(self) -> bool:
        return True

    def _capabilities(self, model: str | None) -> Any:
        """The capabilities table's entry for ``model`` (None until that module exists)."""
        if not model:
            return None
        try:
            from victor_gui.providers.capabilities import resolve_capabilities  # type: ignore[import-not-found]
        except ImportError:
            return None
        return resolve_capabilities(self.name, model)

    def supports_vision(self, model: str | None = None) -> bool:
        if self.extra.get("vision") is not None:
            return bool(self.extra["vision"])
        caps = self._capabilities(model)
        if caps is not None:
            return bool(getattr(caps, "vision", False))
        return bool(model) and quirks.looks_vision_capable(model or "")

    def supports_reasoning(self, model: str | None = None) -> bool:
        caps = self._capabilities(model)
        if caps is not None and getattr(caps, "reasoning", None) is not None:
            return bool(caps.reasoning)
        return bool(model) and quirks.is_reasoner(model or "")

    def _native_tools_allowed(self, model: str) -> bool:
        if model in self._no_native_tools:
            return False
        caps = self._capabilities(model)
        if caps is not None and getattr(caps, "native_tool_calls", None) is False:
            return False
        return True

    # -- endpoint, key, timeouts ----------------------------------------------------------------

    def base_urls(self) -> list[str]:
        """Base URLs to try, in order (explicit, then the seed's host variables, then default)."""
        urls = candidate_base_urls(self.spec.name, self.spec.default_base_url, explicit=self.base_url)
        if not urls:
            raise ProviderUnavailableError(f"No base URL configured for {self.spec.display_name}", self.name)
        if self._active_base in urls:  # the candidate that answered last time goes first
            urls.remove(self._active_base)
            urls.insert(0, self._active_base)
        return urls

    @property
    def breaker(self) -> CircuitBreaker:
        return BREAKERS.get(f"{self.name}|{self.base_url or self.base_urls()[0]}")

    def timeouts(self, model: str | None = None) -> Timeouts:
        base = self.default_timeouts
        timeouts = Timeouts(base.connect, float(self.timeout or base.read), base.write, base.pool)
        caps = self._capabilities(model)
        factor = getattr(caps, "timeout_multiplier", None) if caps is not None else None
        return timeouts.scaled(float(factor)) if factor and factor != 1 else timeouts

    def _require_key(self) -> None:
        if self.api_key is None:
            self.api_key, self.key_source = resolve_api_key(self.spec, None, api_key_env=self._api_key_env)
        if self.spec.needs_key and not self.api_key:
            raise MissingAPIKeyError(f"No API key for {self.spec.display_name}. {key_hint(self.spec)}", self.name)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        headers.update(self.extra.get("extra_headers") or {})
        return headers

    async def _send(self, method: str, path: str, *, body: dict[str, Any] | None = None,
                    model: str | None = None, accept: str | None = None) -> httpx.Response:
        """Open a streamed response, moving to the next candidate URL on a refused connection.

        ``path`` starting with ``//`` is taken from the server root (LM Studio's ``/api/v0``).
        """
        urls = self.base_urls()
        headers = self._headers()
        if accept:
            headers["Accept"] = accept
        content = quirks.dumps(body) if body is not None else None
        last: BaseException | None = None
        for base in urls:
            url = _root(base) + path[1:] if path.startswith("//") else base + path
            request = self.http.build_request(method, url, content=content, headers=headers,
                                              timeout=self.timeouts(model).to_httpx())
            try:
                response = await self.http.send(request, stream=True)
            except httpx.ConnectError as exc:
                last = exc  # nothing was sent: the next candidate may be the one running
                continue
            except httpx.HTTPError as exc:
                raise transport_error(exc, self.name, model=model) from exc
            self._active_base = base
            return response
        assert last is not None
        raise transport_error(last, self.name, model=model) from last

    # -- request planning -------------------------------------------------------------------

    def _plan(self, messages: list[Message], model: str, temperature: float | None, max_tokens: int | None,
              tools: list[ToolDefinition] | None, stream: bool, kwargs: dict[str, Any]) -> _Plan:
        converted, repairs = to_openai_messages(messages, vision=self.supports_vision(model), provider=self.name,
                                                model=model, keep_developer=self.name == "openai")
        rules = quirks.body_rules(model, apply_model_rules=not self.spec.is_local)
        body: dict[str, Any] = {"model": model, "messages": converted, "stream": stream}
        if temperature is not None and rules.send_temperature:
            body["temperature"] = temperature
        if max_tokens:
            body[rules.token_field] = max_tokens
        for key in PASSTHROUGH:
            if kwargs.get(key) is not None:
                body[key] = kwargs[key]
        body.update(kwargs.get("extra_body") or {})
        if stream:
            body["stream_options"] = {"include_usage": True}
        plan = _Plan(model=model, body=body, tools=list(tools or []))
        if any(repairs.values()):
            plan.metadata["repaired"] = repairs
        if tools:
            if not rules.send_tools:
                body.pop("tool_choice", None)
                plan.metadata["tools_omitted"] = f"{model} does not accept tools"
            elif self._native_tools_allowed(model):
                body["tools"] = tools_payload(tools)
            else:
                plan = self._text_tool_plan(plan)
        return self._fit(plan)

    def _text_tool_plan(self, plan: _Plan) -> _Plan:
        body = {k: v for k, v in plan.body.items() if k not in ("tools", "tool_choice", "parallel_tool_calls")}
        body["messages"] = with_tools_in_system(body["messages"], plan.tools)
        meta = dict(plan.metadata, tool_text_fallback=True)
        return self._fit(replace(plan, body=body, text_tools=True, metadata=meta))

    def _fit(self, plan: _Plan) -> _Plan:
        limit = self.spec.max_payload_bytes
        if limit:
            plan.body, trimmed = quirks.trim_payload(plan.body, limit)
            if trimmed:
                plan.metadata["trimmed"] = trimmed
        return plan

    def _text_tool_calls(self, plan: _Plan, text: str) -> tuple[list[ToolCall], str]:
        names = {t.name for t in plan.tools}
        try:
            from victor_gui.providers.tool_parsing import parse_tool_calls_from_text  # type: ignore[import-not-found]
        except ImportError:
            return _basic_text_tool_calls(text, names)
        return parse_tool_calls_from_text(text, names)

    # -- chat -------------------------------------------------------------------------------

    async def chat(self, messages: list[Message], *, model: str, temperature: float | None = 0.7,
                   max_tokens: int | None = 4096, tools: list[ToolDefinition] | None = None,
                   **kwargs: Any) -> CompletionResponse:
        """POST ``/chat/completions`` and return the whole reply (retried per the policy)."""
        self._require_key()
        plan = self._plan(messages, model, temperature, max_tokens, tools, False, kwargs)
        try:
            return await self._retrying(plan)
        except ProviderError as exc:
            if not (plan.native_tools and _rejects_tools(exc)):
                raise
            self._no_native_tools.add(model)
            return await self._retrying(self._text_tool_plan(plan))

    async def _retrying(self, plan: _Plan) -> CompletionResponse:
        return await call_with_retry(lambda: self._chat_once(plan), policy=self.retry_policy,
                                     breaker=self.breaker, provider=self.name, sleep=self._sleep)

    async def _chat_once(self, plan: _Plan) -> CompletionResponse:
        started = time.monotonic()
        response = await self._send("POST", "/chat/completions", body=plan.body, model=plan.model)
        try:
            raw = await response.aread()
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.name, model=plan.model) from exc
        finally:
            await response.aclose()
        data = self._decode(response, raw, plan.model)
        return self._completion(data, plan, started)

    def _decode(self, response: httpx.Response, raw: bytes, model: str | None) -> Any:
        """A 2xx JSON body, or the typed error for anything else (incl. 200 with an error)."""
        ctype = response.headers.get("content-type", "")
        if not response.is_success:
            body = raw[:_ERROR_BODY_LIMIT].decode("utf-8", errors="replace")
            raise classify_http_error(response.status_code, body, provider=self.name, model=model,
                                      headers=response.headers, content_type=ctype)
        data = parse_json_body(raw, provider=self.name, status=response.status_code, model=model,
                               content_type=ctype)
        if isinstance(data, dict) and data.get("error") and not data.get("choices") and not data.get("data"):
            # LM Studio answers unknown routes (and some failures) with HTTP 200 and an error body.
            raise error_from_payload(data, provider=self.name, model=model, partial=None)
        return data

    def _completion(self, data: Any, plan: _Plan, started: float) -> CompletionResponse:
        if not isinstance(data, dict) or not data.get("choices"):
            raise InvalidResponseError("The reply has no choices", self.name, model=plan.model)
        choice = data["choices"][0]
        asm = StreamAssembler(provider=self.name, model=plan.model, think_anywhere=self._think_anywhere())
        asm.feed({"choices": [{"delta": choice.get("message") or {}, "finish_reason": choice.get("finish_reason")}],
                  "usage": data.get("usage"), "timings": data.get("timings"), "model": data.get("model")})
        asm.flush_text()
        content, calls, meta = asm.partial, asm.tool_calls(), dict(plan.metadata)
        if plan.text_tools and not calls:
            calls, content = self._text_tool_calls(plan, content)
        elapsed = time.monotonic() - started
        timings = asm.timings
        if timings is None and asm.usage and asm.usage.completion_tokens and elapsed > 0:
            timings = Timings(source="client", tokens_per_second=asm.usage.completion_tokens / elapsed)
        meta["latency_ms"] = round(elapsed * 1000.0, 1)
        return CompletionResponse(
            content=content, tool_calls=calls or None, reasoning="".join(asm.reasoning) or None,
            stop_reason=choice.get("finish_reason") or ("tool_calls" if calls else None), usage=asm.usage,
            model=data.get("model") or plan.model, timings=timings, metadata=meta, raw_response=data)

    def _think_anywhere(self) -> bool:
        return "think_tags" in self.spec.quirks

    # -- stream -----------------------------------------------------------------------------

    async def stream(self, messages: list[Message], *, model: str, temperature: float | None = 0.7,
                     max_tokens: int | None = 4096, tools: list[ToolDefinition] | None = None,
                     **kwargs: Any) -> AsyncIterator[StreamChunk]:
        """Stream the reply over SSE; the last chunk is ``is_final`` with usage and timings."""
        self._require_key()
        state = {"plan": self._plan(messages, model, temperature, max_tokens, tools, True, kwargs)}
        chunks = stream_with_retry(lambda: self._stream_once(state), policy=self.retry_policy,
                                   breaker=self.breaker, provider=self.name, sleep=self._sleep)
        async with aclosing(chunks) as items:
            async for chunk in items:
                yield chunk

    async def _stream_once(self, state: dict[str, _Plan]) -> AsyncIterator[StreamChunk]:
        plan = state["plan"]
        started = time.monotonic()
        response = await self._send("POST", "/chat/completions", body=plan.body, model=plan.model,
                                    accept="text/event-stream")
        fallback = False
        try:
            ctype = response.headers.get("content-type", "")
            if not response.is_success or "text/event-stream" not in ctype:
                try:
                    raw = await response.aread()
                    data = self._decode(response, raw, plan.model)
                except ProviderError as exc:
                    if not (plan.native_tools and _rejects_tools(exc)):
                        raise
                    fallback = True
                else:
                    # A whole JSON reply to a stream request (some proxies): deliver it as chunks.
                    whole = self._completion(data, plan, started)
                    yield StreamChunk(content=whole.content, reasoning=whole.reasoning or "")
                    yield StreamChunk(is_final=True, stop_reason=whole.stop_reason, tool_calls=whole.tool_calls,
                                      usage=whole.usage, timings=whole.timings, model=whole.model,
                                      metadata=whole.metadata)
                    return
            else:
                async for chunk in self._read_sse(response, plan, started):
                    yield chunk
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.name, model=plan.model) from exc
        finally:
            await response.aclose()
        if fallback:  # the server refused native tools before sending anything
            self._no_native_tools.add(plan.model)
            state["plan"] = self._text_tool_plan(plan)
            async for chunk in self._stream_once(state):
                yield chunk

    async def _read_sse(self, response: httpx.Response, plan: _Plan, started: float) -> AsyncIterator[StreamChunk]:
        from victor_gui.providers.streaming import iter_sse

        asm = StreamAssembler(provider=self.name, model=plan.model, think_anywhere=self._think_anywhere(),
                              started=started)
        done = False
        try:
            async with aclosing(iter_sse(response, provider=self.name)) as events:
                async for event in events:
                    text = event.data.strip()
                    if text == "[DONE]":
                        done = True
                        break
                    data = self._event_json(text, asm, plan.model)
                    if event.event == "error" and "error" not in data:
                        data = {"error": data}
                    for chunk in asm.feed(data):
                        yield chunk
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.name, model=plan.model, partial=asm.partial or None) from exc
        except ProviderError as exc:
            if exc.partial_content is None and asm.partial:
                exc.partial_content = asm.partial
            raise
        tail = asm.flush_text()
        if tail is not None:
            yield tail
        if not done and asm.finish_reason is None:
            raise InvalidResponseError(
                "The stream ended before the reply was complete (truncated: no [DONE] and no finish reason)",
                self.name, model=plan.model, partial_content=asm.partial or None)
        metadata = dict(plan.metadata)
        final = asm.final_chunk(metadata)
        if plan.text_tools and not final.tool_calls:
            calls, remaining = self._text_tool_calls(plan, asm.partial)
            if calls:
                final.tool_calls, final.stop_reason = calls, "tool_calls"
                final.metadata["content_without_tool_calls"] = remaining
        yield final

    def _event_json(self, text: str, asm: StreamAssembler, model: str) -> dict[str, Any]:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, ValueError):
            kind = "an HTML page" if looks_like_html(text) else "malformed JSON"
            raise InvalidResponseError(f"The stream carried {kind}: {text[:120]!r}", self.name, model=model,
                                       partial_content=asm.partial or None) from None
        if not isinstance(data, dict):
            raise InvalidResponseError(f"Unexpected stream event: {text[:120]!r}", self.name, model=model,
                                       partial_content=asm.partial or None)
        return data

    # -- models -----------------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        """GET ``/models`` (LM Studio: ``/api/v0/models`` first, for load state and context)."""
        self._require_key()

        async def fetch(path: str) -> Any:
            response = await self._send("GET", path)
            try:
                raw = await response.aread()
            except httpx.HTTPError as exc:
                raise transport_error(exc, self.name) from exc
            finally:
                await response.aclose()
            return self._decode(response, raw, None)

        async def attempt() -> list[ModelInfo]:
            if "lmstudio" in self.spec.quirks:
                try:
                    found = models_from_payload(await fetch("//api/v0/models"), self.name)
                except (BadRequestError, InvalidResponseError):
                    found = []  # older LM Studio without REST v0: fall back to /v1/models
                if found:
                    return found
            return models_from_payload(await fetch("/models"), self.name)

        return await call_with_retry(attempt, policy=self.retry_policy, breaker=self.breaker,
                                     provider=self.name, sleep=self._sleep)


def _root(base: str) -> str:
    """The server root of a base URL ending in ``/v1`` (with a trailing slash)."""
    return (base[:-3] if base.endswith("/v1") else base).rstrip("/") + "/"


def _rejects_tools(error: ProviderError) -> bool:
    low = error.message.lower()
    return any(hint in low for hint in _NO_TOOLS_HINTS)


_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)


def _basic_text_tool_calls(text: str, names: set[str]) -> tuple[list[ToolCall], str]:
    """Minimal stand-in for ``tool_parsing.parse_tool_calls_from_text`` (fenced or bare JSON)."""
    candidates = [(m.group(0), m.group(1)) for m in _FENCED.finditer(text)]
    stripped = text.strip()
    if not candidates and stripped.startswith("{") and stripped.endswith("}"):
        candidates = [(stripped, stripped)]
    calls: list[ToolCall] = []
    remaining = text
    for whole, inner in candidates:
        try:
            obj = json.loads(inner)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and obj.get("name") in names:
            calls.append(ToolCall(name=obj["name"], arguments=obj.get("arguments") or obj.get("parameters") or {}))
            remaining = remaining.replace(whole, "")
    return calls, remaining.strip()
