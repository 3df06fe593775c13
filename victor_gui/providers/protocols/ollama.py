"""Ollama's native API (``/api/chat``, ``/api/tags``, ``/api/ps``, ``/api/show``).

Native rather than Ollama's ``/v1`` because only the native API carries ``num_ctx``,
``keep_alive``, ``think`` levels, server-side timings and load/unload. Endpoints come from an
explicit ``base_url``, else ``OLLAMA_ENDPOINTS`` (in order), ``OLLAMA_HOST`` (parsed by
Ollama's rules) and the default; a refused connection moves on to the next candidate, and the
one that answered is remembered. Streams are retried only before their first chunk reaches the
caller, so no reply is ever asked for twice once any of it was shown.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, TypeVar, cast

import httpx

from victor_gui.errors import BadRequestError, InvalidResponseError, ProviderError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.bounded import ResponseTooLarge
from victor_gui.providers.capabilities import resolve_capabilities
from victor_gui.providers.catalog import ProviderSpec, find_spec
from victor_gui.providers.endpoints import candidate_base_urls
from victor_gui.providers.http import (
    LOCAL_TIMEOUTS,
    looks_like_html,
    parse_json_body,
    read_body,
    read_error_body,
    transport_error,
)
from victor_gui.providers.json_guard import Shape
from victor_gui.providers.protocols import ollama_errors as oerr
from victor_gui.providers.protocols.ollama_reply import ReplyAssembler
from victor_gui.providers.protocols.ollama_wire import (
    ModelDetails,
    build_payload,
    parse_show,
)
from victor_gui.providers.protocols.reply_shapes import check_ollama_show, check_ollama_tags
from victor_gui.providers.resilience import call_with_retry, stream_with_retry
from victor_gui.providers.streaming import iter_ndjson
from victor_gui.providers.tool_parsing import tools_as_system_prompt
from victor_gui.providers.types import CompletionResponse, Message, ModelInfo, StreamChunk, ToolDefinition

# Sampling keywords passed straight into ``options`` when given.
_OPTION_KWARGS = ("top_p", "top_k", "min_p", "seed", "stop", "repeat_penalty", "presence_penalty",
                  "frequency_penalty")


class _Plan:
    """How one call talks to the model; degraded in place when Ollama refuses a feature."""

    def __init__(self, tools: list[ToolDefinition] | None, native_tools: bool, think: Any) -> None:
        self.tools = tools or None
        self.native_tools = bool(tools) and native_tools
        self.think = think

    @property
    def text_tool_names(self) -> set[str] | None:
        return {t.name for t in self.tools} if self.tools and not self.native_tools else None


class OllamaProvider(BaseProvider):
    """Ollama over its native NDJSON API."""

    default_timeouts = LOCAL_TIMEOUTS

    def __init__(
        self,
        spec: ProviderSpec | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 300,
        max_retries: int = 3,
        http_client: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> None:
        self.spec = spec or find_spec("ollama")
        assert self.spec is not None
        super().__init__(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries,
                         http_client=http_client, **kwargs)
        self.candidates = candidate_base_urls("ollama", self.spec.default_base_url, explicit=base_url)
        self.base_url = self.candidates[0]
        # Per-model facts learnt from refusals or /api/show, so the next call skips the round trip.
        self._no_tools: set[str] = set()
        self._no_think: set[str] = set()
        self._details: dict[str, ModelDetails] = {}

    @property
    def name(self) -> str:
        return self.spec.name if self.spec else "ollama"

    def supports_tools(self) -> bool:
        return True

    def supports_streaming(self) -> bool:
        return True

    def supports_vision(self, model: str | None = None) -> bool:
        """What ``/api/show`` said (after :meth:`show_model`), else ``model_capabilities.yaml``."""
        if not model:
            return False
        details = self._details.get(_tagged(model))
        if details is not None and details.capabilities:
            return details.supports_vision
        return resolve_capabilities(self.name, model).vision

    def supports_reasoning(self, model: str | None = None) -> bool:
        if not model:
            return False
        details = self._details.get(_tagged(model))
        if details is not None and details.capabilities:
            return details.supports_thinking
        return resolve_capabilities(self.name, model).thinking_mode

    def request_timeout(self, model: str | None) -> httpx.Timeout:
        """Per-request timeouts: local phases (a fast connect, so failover is quick, and a long
        read for model loading), the read scaled by the model's ``timeout_multiplier``. Set on
        every request, so an injected shared client's cloud timeouts do not apply here."""
        factor = resolve_capabilities(self.name, model).timeout_multiplier if model else 1.0
        return self.timeouts().scaled(max(1.0, factor)).to_httpx()

    # -- transport ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def _send(self, method: str, path: str, payload: Any = None, *, stream: bool = False,
                    model: str | None = None) -> httpx.Response:
        """Send to the endpoint that worked last, then the other candidates in order, moving on
        only when nothing accepted the connection (so no request reaches two servers)."""
        order = [self.base_url, *[u for u in self.candidates if u != self.base_url]]
        failure: httpx.HTTPError | None = None
        for url in order:
            request = self.http.build_request(method, f"{url}{path}", json=payload, headers=self._headers(),
                                              timeout=self.request_timeout(model))
            try:
                response = await self.http.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc
                continue
            except httpx.HTTPError as exc:
                raise transport_error(exc, self.name, model=model) from exc
            self.base_url = url
            return response
        assert failure is not None
        raise transport_error(failure, self.name, model=model) from failure

    async def _error(self, response: httpx.Response, model: str | None) -> ProviderError:
        return oerr.classify(response.status_code, await read_error_body(response), provider=self.name,
                             model=model, headers=response.headers,
                             content_type=response.headers.get("content-type", ""))

    async def _json_once(self, method: str, path: str, payload: Any = None, *, model: str | None = None,
                         ) -> Any:
        response = await self._send(method, path, payload, stream=True, model=model)
        if not response.is_success:
            raise await self._error(response, model)
        raw = await read_body(response, provider=self.name, model=model)
        data = parse_json_body(raw, provider=self.name, status=response.status_code,
                               model=model, content_type=response.headers.get("content-type", ""))
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            raise oerr.midstream_error(data["error"], provider=self.name, model=model, partial="")
        return data

    async def _json(self, method: str, path: str, payload: Any = None, *, model: str | None = None) -> Any:
        return await call_with_retry(lambda: self._json_once(method, path, payload, model=model),
                                     policy=self.retry_policy, breaker=self.breaker, provider=self.name)

    # -- chat -------------------------------------------------------------------------------------

    def _plan(self, model: str, tools: list[ToolDefinition] | None, kwargs: dict[str, Any]) -> _Plan:
        # Ollama itself is the authority on native tools: /api/show's capabilities when known,
        # else try them and learn from its cheap 400 (it refuses before loading the model).
        details = self._details.get(_tagged(model))
        native = _tagged(model) not in self._no_tools
        if details is not None and details.capabilities:
            native = native and details.supports_tools
        think = kwargs.get("think")
        if think is not None and think is not False and _tagged(model) in self._no_think:
            think = None
        return _Plan(tools, native, think)

    def _degrade(self, plan: _Plan, model: str, error: BadRequestError) -> bool:
        """Drop the feature Ollama refused and say whether to try again (once per feature)."""
        if plan.native_tools and oerr.is_no_tools(error):
            self._no_tools.add(_tagged(model))
            plan.native_tools = False
            return True
        if plan.think not in (None, False) and oerr.is_no_think(error):
            self._no_think.add(_tagged(model))
            plan.think = None
            return True
        return False

    def _payload(self, messages: list[Message], model: str, temperature: float, max_tokens: int,
                 plan: _Plan, kwargs: dict[str, Any], *, stream: bool) -> dict[str, Any]:
        options = {k: kwargs[k] for k in _OPTION_KWARGS if kwargs.get(k) is not None}
        options.update(kwargs.get("options") or {})
        if plan.text_tool_names and plan.tools:
            messages = _with_tool_note(messages, tools_as_system_prompt(plan.tools))
        return build_payload(model, messages, stream=stream, temperature=temperature, max_tokens=max_tokens,
                             tools=plan.tools if plan.native_tools else None, think=plan.think,
                             num_ctx=kwargs.get("num_ctx"), keep_alive=kwargs.get("keep_alive"),
                             options=options, truncate=kwargs.get("truncate"),
                             response_format=kwargs.get("format"),
                             vision=not _has_tool_images(messages) or self.supports_vision(model))

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
        """One whole reply from ``POST /api/chat`` with ``stream:false``.

        Keywords: ``num_ctx``, ``keep_alive``, ``think`` (bool or a level), ``options`` (raw
        Ollama options), ``truncate``, ``format`` and the common sampling names.
        """
        plan = self._plan(model, tools, kwargs)
        while True:
            payload = self._payload(messages, model, temperature, max_tokens, plan, kwargs, stream=False)
            try:
                data = await self._json("POST", "/api/chat", payload, model=model)
                break
            except BadRequestError as exc:
                if not self._degrade(plan, model, exc):
                    raise
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise InvalidResponseError("Ollama's reply has no message", self.name, model=model)
        reply = ReplyAssembler(text_tools=plan.text_tool_names)
        final = reply.feed({**data, "done": True})
        assert final is not None
        timings = final.timings.model_copy(update={"ttft_ms": None}) if final.timings else None
        return CompletionResponse(content=reply.partial, reasoning=reply.reasoning or None,
                                  tool_calls=final.tool_calls, stop_reason=final.stop_reason,
                                  usage=final.usage, model=data.get("model") or model, timings=timings,
                                  metadata=final.metadata, raw_response=data)

    async def stream(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        tools: list[ToolDefinition] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[StreamChunk]:
        """NDJSON deltas from ``POST /api/chat``, ending with one ``is_final`` chunk."""
        plan = self._plan(model, tools, kwargs)
        while True:
            payload = self._payload(messages, model, temperature, max_tokens, plan, kwargs, stream=True)
            delivered = False

            def open_stream(body: dict[str, Any] = payload) -> AsyncIterator[StreamChunk]:
                return self._stream_once(body, model, plan.text_tool_names)

            retrying = stream_with_retry(open_stream, policy=self.retry_policy, breaker=self.breaker,
                                         provider=self.name)
            try:
                async with aclosing(_generator(retrying)) as chunks:
                    async for chunk in chunks:
                        delivered = True
                        yield chunk
                return
            except BadRequestError as exc:
                if delivered or not self._degrade(plan, model, exc):
                    raise

    async def _stream_once(self, payload: dict[str, Any], model: str, text_tools: set[str] | None,
                           ) -> AsyncGenerator[StreamChunk, None]:
        started = time.monotonic()
        response = await self._send("POST", "/api/chat", payload, stream=True, model=model)
        try:
            if not response.is_success:
                raise await self._error(response, model)
            if looks_like_html("", response.headers.get("content-type", "")):
                raise InvalidResponseError("Ollama's port answered with an HTML page instead of NDJSON",
                                           self.name, status_code=response.status_code, model=model)
            reply = ReplyAssembler(started=started, text_tools=text_tools)
            async with aclosing(self._chunks(response, reply, model)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            await response.aclose()

    async def _chunks(self, response: httpx.Response, reply: ReplyAssembler, model: str,
                      ) -> AsyncGenerator[StreamChunk, None]:
        try:
            async with aclosing(_generator(iter_ndjson(response, provider=self.name))) as lines:
                async for obj in lines:
                    if not isinstance(obj, dict):
                        raise InvalidResponseError(f"Unexpected stream line: {str(obj)[:80]}", self.name,
                                                   model=model)
                    if "error" in obj and not obj.get("message"):
                        raise oerr.midstream_error(obj["error"], provider=self.name, model=model,
                                                   partial=reply.partial)
                    chunk = reply.feed(obj)
                    if chunk is not None:
                        yield chunk
                    if reply.done:
                        return
        except InvalidResponseError as exc:
            exc.partial_content = exc.partial_content or reply.partial or None
            exc.model = exc.model or model
            raise
        except httpx.TimeoutException as exc:
            raise transport_error(exc, self.name, model=model, partial=reply.partial or None) from exc
        except httpx.HTTPError as exc:
            if not reply.lines or isinstance(exc, ResponseTooLarge):
                raise transport_error(exc, self.name, model=model, partial=reply.partial or None) from exc
            raise InvalidResponseError("Ollama's stream broke off before its final line", self.name,
                                       model=model, raw_error=exc, partial_content=reply.partial or None,
                                       ) from exc
        raise InvalidResponseError("Ollama's stream ended without its final (done) line", self.name,
                                   model=model, partial_content=reply.partial or None)

    # -- models -----------------------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        """``/api/tags``, with ``loaded`` (and memory figures) from ``/api/ps`` when it answers."""
        tags = await self._json("GET", "/api/tags")
        data = check_ollama_tags(tags, Shape("Ollama /api/tags", self.name))
        loaded: dict[str, dict[str, Any]] = {}
        try:
            ps_reply = await self._json_once("GET", "/api/ps")
            ps = check_ollama_tags(ps_reply, Shape("Ollama /api/ps", self.name))
            loaded = {str(m.get("name")): m for m in ps.get("models") or [] if isinstance(m, dict)}
            known_ps = True
        except ProviderError:
            known_ps = False  # an older build or a proxy without /api/ps: leave `loaded` unknown
        out: list[ModelInfo] = []
        for entry in data.get("models") or [] if isinstance(data, dict) else []:
            name = entry.get("name") or entry.get("model")
            if not name:
                continue
            details = entry.get("details") or {}
            running = loaded.get(name)
            extra: dict[str, Any] = {"parameter_size": details.get("parameter_size"),
                                     "digest": entry.get("digest"), "modified_at": entry.get("modified_at")}
            if running:
                extra.update(size_vram=running.get("size_vram"), expires_at=running.get("expires_at"),
                             loaded_context_length=running.get("context_length"))
            out.append(ModelInfo(id=name, provider=self.name, size_bytes=entry.get("size"),
                                 quantization=details.get("quantization_level"), family=details.get("family"),
                                 context_length=details.get("context_length"),
                                 capabilities=list(entry.get("capabilities") or []),
                                 loaded=(running is not None) if known_ps else None, raw=entry, **extra))
        return out

    async def show_raw(self, name: str) -> dict[str, Any]:
        """``/api/show`` as the server sent it (``model_info``, ``tensors``): the fit plan that
        chooses ``num_ctx`` reads the architecture from it. Not verbose: no token lists."""
        data = await self._json("POST", "/api/show", {"model": name}, model=name)
        return data if isinstance(data, dict) else {}

    async def show_model(self, name: str) -> ModelDetails:
        """``/api/show``: context length and capabilities (tools, vision, thinking); cached."""
        data = await self._json("POST", "/api/show", {"model": name}, model=name)
        details = parse_show(name, check_ollama_show(data, Shape("Ollama /api/show", self.name, model=name)))
        self._details[_tagged(name)] = details
        return details


def _tagged(name: str) -> str:
    """Ollama's own equivalence: ``llama3.2`` and ``llama3.2:latest`` are one model."""
    return name if not name or ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


_T = TypeVar("_T")


def _generator(iterator: AsyncIterator[_T]) -> AsyncGenerator[_T, None]:
    # The shared helpers are async generators typed as AsyncIterator; they do have aclose().
    return cast("AsyncGenerator[_T, None]", iterator)


def _with_tool_note(messages: list[Message], note: str) -> list[Message]:
    """The conversation with the text-fallback tool note added to (or as) the system message."""
    if messages and messages[0].role == "system":
        first = messages[0]
        return [first.model_copy(update={"content": f"{first.text}\n\n{note}"}), *messages[1:]]
    return [Message(role="system", content=note), *messages]


def _has_tool_images(messages: list[Message]) -> bool:
    return any(m.role in ("tool", "function") and m.images for m in messages)
