"""The OpenAI chat-completions wire protocol, for every ``protocol="openai"`` row of the catalog
(OpenAI, xAI, DeepSeek, Mistral, Groq, Together, Fireworks, OpenRouter, Cerebras, Moonshot,
Z.ai, Hugging Face router, LM Studio, vLLM, llama.cpp) and for user-defined endpoints.

Request bodies come from :mod:`.openai_payload` and :mod:`victor_gui.providers.quirks`; stream
assembly from :mod:`.openai_stream`. Retries go through :mod:`victor_gui.providers.resilience`:
a stream is retried only before its first chunk reached the caller, never after.

Decisions worth knowing:

* Native ``tools`` go out unless the capabilities table says ``native_tool_calls: false`` or
  the server refused them once ("does not support tools", llama.cpp without ``--jinja``, vLLM
  without a tool parser); then the tools are described in the system prompt
  (``tool_parsing.tools_as_system_prompt``) and the reply is parsed with
  ``tool_parsing.parse_tool_calls_from_text``. While streaming in that mode the text is shown as
  it comes; the final chunk carries the parsed calls and ``metadata["content_without_tool_calls"]``.
* Models that refuse tools outright (o-series, deepseek-reasoner) get none, and the reply says
  so in ``metadata["tools_omitted"]``.
* Conversation repairs (orphan tool results/calls) are listed in ``metadata["repaired"]``;
  Groq-size trimming in ``metadata["trimmed"]``.
* Hugging Face models that need the serverless text-generation route (``hf_route=`` on the
  request or in the capabilities table) are served by :mod:`.hf_tgi` instead.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import Any, cast

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
from victor_gui.providers.capabilities import ModelCapabilities, resolve_capabilities
from victor_gui.providers.catalog import ProviderSpec
from victor_gui.providers.endpoint_access import is_local_url
from victor_gui.providers.endpoints import candidate_base_urls
from victor_gui.providers.http import (
    CLOUD_TIMEOUTS,
    LOCAL_TIMEOUTS,
    MAX_ERROR_BODY,
    Timeouts,
    classify_http_error,
    parse_json_body,
    read_body,
    read_reply,
    transport_error,
)
from victor_gui.providers.keys import key_hint, resolve_api_key
from victor_gui.providers.protocols.hf_tgi import TextGenerationRoute, wanted_route
from victor_gui.providers.protocols.openai_models import models_from_payload
from victor_gui.providers.protocols.openai_payload import (
    RequestPlan,
    build_body,
    fit_payload,
    rejects_tools,
    text_tool_plan,
    to_openai_messages,
    tools_payload,
)
from victor_gui.providers.protocols.openai_sse import stream_once
from victor_gui.providers.protocols.openai_stream import completion_from, error_from_payload
from victor_gui.providers.resilience import BREAKERS, CircuitBreaker, call_with_retry, stream_with_retry
from victor_gui.providers.tool_parsing import parse_tool_calls_from_text
from victor_gui.providers.types import (
    CompletionResponse,
    Message,
    ModelInfo,
    StreamChunk,
    ToolCall,
    ToolDefinition,
)


def custom_spec(
    name: str, base_url: str, *, local: bool | None = None, needs_key: bool = False
) -> ProviderSpec:
    """A spec for a user-defined OpenAI-compatible endpoint (loopback and private-network URLs
    count as local: :func:`~victor_gui.providers.endpoint_access.is_local_url`)."""
    is_local = is_local_url(base_url) if local is None else local
    return ProviderSpec(
        name, name, "openai", "local" if is_local else "cloud", base_url.rstrip("/"), needs_key=needs_key
    )


class OpenAICompatProvider(BaseProvider):
    """A provider speaking OpenAI's ``/chat/completions`` (see the module docstring).

    Keywords beyond the seed's: ``spec`` (the catalog row; built from ``base_url`` when absent),
    ``api_key_env`` (a profile's key variable), ``retry_policy`` and ``sleep`` (tests), ``vision``
    (force image support on a user-defined endpoint), ``extra_headers``.
    """

    def __init__(
        self,
        spec: ProviderSpec | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int = 3,
        *,
        http_client: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> None:
        if spec is None:
            if not base_url:
                raise ProviderUnavailableError(
                    "An OpenAI-compatible endpoint needs a base URL", "openai-compatible"
                )
            spec = custom_spec(str(kwargs.pop("name", "openai-compatible")), base_url)
        self.spec = spec
        self._api_key_env = kwargs.pop("api_key_env", None)
        key, self.key_source = resolve_api_key(spec, api_key, api_key_env=self._api_key_env)
        policy = kwargs.pop("retry_policy", None)
        self._sleep = kwargs.pop("sleep", asyncio.sleep)
        super().__init__(
            api_key=key,
            base_url=base_url,
            timeout=timeout or 0,
            max_retries=max_retries,
            http_client=http_client,
            **kwargs,
        )
        if policy is not None:
            self.retry_policy = policy
        self.default_timeouts = LOCAL_TIMEOUTS if spec.is_local else CLOUD_TIMEOUTS
        self._active_base: str | None = None
        self._no_native_tools: set[str] = set()
        # What a llama-server told us about image input (``/props`` modalities.vision), per base.
        self._server_vision: dict[str, bool] = {}

    # -- identity and capabilities -------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    def supports_tools(self) -> bool:
        return True

    def supports_streaming(self) -> bool:
        return True

    def _capabilities(self, model: str | None) -> ModelCapabilities | None:
        """The capabilities table's entry for ``model`` on this provider (None without a model)."""
        return resolve_capabilities(self.name, model) if model else None

    def supports_vision(self, model: str | None = None) -> bool:
        """From the capabilities table; ``vision=`` at construction overrides it (custom endpoints)."""
        if self.extra.get("vision") is not None:
            return bool(self.extra["vision"])
        if self._active_base in self._server_vision:  # the server's own word beats the table
            return self._server_vision[self._active_base]
        caps = self._capabilities(model)
        return caps is not None and caps.vision

    def supports_reasoning(self, model: str | None = None) -> bool:
        caps = self._capabilities(model)
        return caps is not None and (caps.reasoning or caps.thinking_mode or quirks.is_reasoner(model or ""))

    async def _learn_server_vision(self, messages: list[Message]) -> None:
        """Ask llama-server whether it takes images before sending any.

        Without a projector (``--mmproj``) llama-server answers an image with HTTP 500, which
        would read as a retryable server failure; ``/props`` says so up front (servers.md 4.4).
        """
        if "llamacpp" not in self.spec.quirks or self.extra.get("vision") is not None:
            return
        if not any(m.images for m in messages):
            return
        try:
            response = await self._send("GET", "//props")
            if not response.is_success:
                await response.aclose()
                return
            data = json.loads(await read_body(response, provider=self.name))
        except (ProviderError, httpx.HTTPError, ValueError, RecursionError):
            return  # the request itself will report what is wrong
        modalities = data.get("modalities") if isinstance(data, dict) else None
        if isinstance(modalities, dict) and "vision" in modalities and self._active_base:
            self._server_vision[self._active_base] = bool(modalities["vision"])

    def _native_tools_allowed(self, model: str) -> bool:
        """Native ``tools`` unless the table says no or the server refused them earlier."""
        if model in self._no_native_tools:
            return False
        caps = self._capabilities(model)
        return caps is None or caps.native_tool_calls

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
        timeouts = replace(base, read=float(self.timeout or base.read))
        caps = self._capabilities(model)
        factor = caps.timeout_multiplier if caps is not None else 1.0
        return timeouts.scaled(factor) if factor > 0 and factor != 1 else timeouts

    def _require_key(self) -> None:
        if self.api_key is None:
            self.api_key, self.key_source = resolve_api_key(self.spec, None, api_key_env=self._api_key_env)
        if self.spec.needs_key and not self.api_key:
            raise MissingAPIKeyError(
                f"No API key for {self.spec.display_name}. {key_hint(self.spec)}", self.name
            )

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        headers.update(self.extra.get("extra_headers") or {})
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
            # _root ends in "/": "//props" → "<root>/props" (a real llama-server 404s "//props")
            url = _root(base) + path[2:] if path.startswith("//") else base + path
            request = self.http.build_request(
                method, url, content=content, headers=headers, timeout=self.timeouts(model).to_httpx()
            )
            try:
                response = await self.http.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = exc  # nothing was sent: the next candidate may be the one running
                continue
            except httpx.HTTPError as exc:
                raise transport_error(exc, self.name, model=model) from exc
            self._active_base = base
            return response
        assert last is not None
        raise transport_error(last, self.name, model=model) from last

    # -- request planning -------------------------------------------------------------------

    def _plan(
        self,
        messages: list[Message],
        model: str,
        temperature: float | None,
        max_tokens: int | None,
        tools: list[ToolDefinition] | None,
        stream: bool,
        kwargs: dict[str, Any],
    ) -> RequestPlan:
        converted, repairs = to_openai_messages(
            messages,
            vision=self.supports_vision(model),
            provider=self.name,
            model=model,
            keep_developer=self.name == "openai",
        )
        rules = quirks.body_rules(model, apply_model_rules=not self.spec.is_local)
        body = build_body(model, converted, rules, temperature, max_tokens, stream, kwargs)
        plan = RequestPlan(model=model, body=body, tools=list(tools or []))
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

    def _text_tool_plan(self, plan: RequestPlan) -> RequestPlan:
        return self._fit(text_tool_plan(plan))

    def _fit(self, plan: RequestPlan) -> RequestPlan:
        return fit_payload(plan, self.spec.max_payload_bytes)

    def _text_tool_calls(self, plan: RequestPlan, text: str) -> tuple[list[ToolCall], str]:
        return parse_tool_calls_from_text(text, {t.name for t in plan.tools})

    # -- chat -------------------------------------------------------------------------------

    async def chat(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float | None = 0.7,
        max_tokens: int | None = 4096,
        tools: list[ToolDefinition] | None = None,
        **kwargs: Any,
    ) -> CompletionResponse:
        """POST ``/chat/completions`` and return the whole reply (retried per the policy)."""
        self._require_key()
        if wanted_route(self.name, model, kwargs):
            return await TextGenerationRoute(self).chat(
                messages,
                model=model,
                temperature=temperature,
                max_tokens=max_tokens,
                tools=tools,
                kwargs=kwargs,
            )
        await self._learn_server_vision(messages)
        plan = self._plan(messages, model, temperature, max_tokens, tools, False, kwargs)
        try:
            return await self._retrying(plan)
        except ProviderError as exc:
            if not (plan.native_tools and rejects_tools(exc)):
                raise
            self._no_native_tools.add(model)
            return await self._retrying(self._text_tool_plan(plan))

    async def _retrying(self, plan: RequestPlan) -> CompletionResponse:
        return await call_with_retry(
            lambda: self._chat_once(plan),
            policy=self.retry_policy,
            breaker=self.breaker,
            provider=self.name,
            sleep=self._sleep,
        )

    async def _chat_once(self, plan: RequestPlan) -> CompletionResponse:
        started = time.monotonic()
        response = await self._send("POST", "/chat/completions", body=plan.body, model=plan.model)
        raw = await read_reply(response, provider=self.name, model=plan.model)
        data = self._decode(response, raw, plan.model)
        return self._completion(data, plan, started)

    def _decode(self, response: httpx.Response, raw: bytes, model: str | None) -> Any:
        """A 2xx JSON body, or the typed error for anything else (incl. 200 with an error)."""
        ctype = response.headers.get("content-type", "")
        if not response.is_success:
            body = raw[:MAX_ERROR_BODY].decode("utf-8", errors="replace")
            raise classify_http_error(
                response.status_code,
                body,
                provider=self.name,
                model=model,
                headers=response.headers,
                content_type=ctype,
            )
        data = parse_json_body(
            raw, provider=self.name, status=response.status_code, model=model, content_type=ctype
        )
        if isinstance(data, dict) and data.get("error") and not data.get("choices") and not data.get("data"):
            # LM Studio answers unknown routes (and some failures) with HTTP 200 and an error body.
            raise error_from_payload(data, provider=self.name, model=model, partial=None)
        return data

    def _completion(self, data: Any, plan: RequestPlan, started: float) -> CompletionResponse:
        reply = completion_from(
            data,
            provider=self.name,
            model=plan.model,
            started=started,
            think_anywhere=self._think_anywhere(),
            metadata=plan.metadata,
        )
        if plan.text_tools and not reply.tool_calls:
            calls, content = self._text_tool_calls(plan, reply.content)
            if calls:
                reply.tool_calls, reply.content, reply.stop_reason = calls, content, "tool_calls"
        return reply

    def _think_anywhere(self) -> bool:
        return "think_tags" in self.spec.quirks

    # -- stream -----------------------------------------------------------------------------

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
        """Stream the reply over SSE; the last chunk is ``is_final`` with usage and timings.

        Retried only until the first chunk reached the caller (see ``stream_with_retry``).
        """
        self._require_key()
        if wanted_route(self.name, model, kwargs):
            route = TextGenerationRoute(self).stream(
                messages,
                model=model,
                temperature=temperature,
                max_tokens=max_tokens,
                tools=tools,
                kwargs=kwargs,
            )
            async with aclosing(cast(AsyncGenerator[StreamChunk, None], route)) as routed:
                async for chunk in routed:
                    yield chunk
            return
        await self._learn_server_vision(messages)
        state = {"plan": self._plan(messages, model, temperature, max_tokens, tools, True, kwargs)}
        chunks = stream_with_retry(
            lambda: stream_once(self, state),
            policy=self.retry_policy,
            breaker=self.breaker,
            provider=self.name,
            sleep=self._sleep,
        )
        async with aclosing(cast(AsyncGenerator[StreamChunk, None], chunks)) as items:
            async for chunk in items:
                yield chunk

    # -- models -----------------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        """GET ``/models`` (LM Studio: ``/api/v0/models`` first, for load state and context)."""
        self._require_key()

        async def fetch(path: str) -> Any:
            response = await self._send("GET", path)
            raw = await read_reply(response, provider=self.name)
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

        return await call_with_retry(
            attempt, policy=self.retry_policy, breaker=self.breaker, provider=self.name, sleep=self._sleep
        )

    async def server_json(self, path: str) -> Any:
        """GET one JSON document of this server, once (no retries): ``path`` under the base URL,
        or from the server root when it starts with ``//`` (llama.cpp ``//props``, LM Studio
        ``//api/v1/models``). Failures raise the usual typed :class:`ProviderError`."""
        self._require_key()
        response = await self._send("GET", path)
        raw = await read_reply(response, provider=self.name)
        return self._decode(response, raw, None)


def _root(base: str) -> str:
    """The server root of a base URL ending in ``/v1`` (with a trailing slash)."""
    return (base[:-3] if base.endswith("/v1") else base).rstrip("/") + "/"
