"""Replicate: language models run as predictions.

``model`` is ``owner/name`` (official models: ``POST /v1/models/{owner}/{name}/predictions``) or
``owner/name:version`` (``POST /v1/predictions`` with that version). A whole reply asks the API
to wait (``Prefer: wait``) and polls ``urls.get`` if the prediction is still running; a stream
reads the prediction's ``urls.stream`` SSE (``output`` / ``error`` / ``done`` events). Token
counts and speed come from the finished prediction's ``metrics``.

Replicate's language models take one prompt, so the conversation is flattened into a transcript
(system text as ``system_prompt``); tool definitions are not sent (the reply says so in
``metadata["tools_omitted"]``). A prediction is billed while it runs, so a stream the caller
stops, or one that fails before its first token, is cancelled (``urls.cancel``) rather than
left running.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, cast
from urllib.parse import quote

import httpx

from victor_gui.core.text import TextAssembly
from victor_gui.errors import InvalidResponseError, ModelNotFoundError, ProviderError, ProviderTimeoutError
from victor_gui.providers.http import classify_http_error, transport_error
from victor_gui.providers.protocols.cloud_base import Clock, CloudProvider, final_chunk
from victor_gui.providers.resilience import call_with_retry, stream_with_retry
from victor_gui.providers.streaming import SSEEvent, iter_sse
from victor_gui.providers.types import (
    CompletionResponse,
    Message,
    ModelInfo,
    StreamChunk,
    ToolDefinition,
    Usage,
    token_count,
)

TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
WAIT_S = 60  # the most the API holds a request open under Prefer: wait
# Words in a failed prediction's error that mean the prompt was too long, not that the model broke.
CONTEXT_WORDS = ("context length", "context window", "too long", "exceeds the maximum", "maximum context")


def transcript(messages: list[Message]) -> tuple[str, str, str | None]:
    """(prompt, system prompt, first image as a data URL) for a one-prompt model."""
    system = "\n\n".join(m.text for m in messages if m.role in ("system", "developer") and m.text.strip())
    turns = [m for m in messages if m.role not in ("system", "developer")]
    image = next((img.to_data_url() for m in turns for img in m.images), None)
    if len(turns) == 1 and turns[0].role == "user":
        return turns[0].text, system, image
    lines = []
    for m in turns:
        if m.role == "tool":
            lines.append(f"Tool result ({m.name or m.tool_call_id or 'tool'}): {m.text}")
        elif m.role == "assistant":
            calls = "".join(f"\n[called {c.name}({json.dumps(c.arguments)})]" for c in m.tool_calls or [])
            lines.append(f"Assistant: {m.text}{calls}")
        else:
            lines.append(f"User: {m.text}")
    lines.append("Assistant:")
    return "\n\n".join(lines), system, image


def usage_from(metrics: Any) -> Usage | None:
    if not isinstance(metrics, dict) or "output_token_count" not in metrics:
        return None
    return Usage(
        prompt_tokens=token_count(metrics.get("input_token_count")),
        completion_tokens=token_count(metrics.get("output_token_count")),
    )


def output_text(output: Any) -> str:
    if output is None:
        return ""
    return "".join(str(piece) for piece in output) if isinstance(output, list) else str(output)


class ReplicateProvider(CloudProvider):
    """Language models on Replicate. Extra keyword: ``replicate_input`` (a dict merged into the
    prediction's ``input``, for model-specific inputs such as ``prompt_template``)."""

    def supports_tools(self) -> bool:
        return False

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self._require_key()}", "content-type": "application/json", **extra}

    def _api(self, path: str) -> str:
        return (self.base_url or "https://api.replicate.com/v1").rstrip("/") + path

    def _create(self, model: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        owner_name, _, version = model.partition(":")
        if version:
            return self._api("/predictions"), {"version": version, **body}
        owner, _, name = owner_name.partition("/")
        return self._api(f"/models/{quote(owner, safe='')}/{quote(name, safe='')}/predictions"), body

    def _input(
        self,
        messages: list[Message],
        temperature: float | None,
        max_tokens: int | None,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        prompt, system, image = transcript(messages)
        data: dict[str, Any] = {"prompt": prompt}
        if system:
            data["system_prompt"] = system
        if image:
            data["image"] = image
        if max_tokens:
            data["max_tokens"] = int(max_tokens)
        if temperature is not None:
            data["temperature"] = temperature
        data.update(kwargs.get("replicate_input") or {})
        return data

    def classify_error(
        self, status: int, body: str, headers: httpx.Headers, model: str | None
    ) -> ProviderError:
        if status == 404 and model is not None:
            return ModelNotFoundError(
                f"HTTP 404: Replicate has no model {model!r}", self.name, status_code=404, model=model
            )
        return super().classify_error(status, body, headers, model)

    def failure(self, prediction: dict[str, Any], model: str, partial: str | None = None) -> ProviderError:
        """The typed error for a prediction that ended without success."""
        detail = str(prediction.get("error") or prediction.get("status") or "prediction failed")
        if prediction.get("status") == "canceled":
            return ProviderError(
                f"The prediction was canceled: {detail}", self.name, model=model, partial_content=partial
            )
        # A failed prediction has no HTTP status: the words tell a bad request from a crash.
        status = 400 if any(w in detail.lower() for w in CONTEXT_WORDS) else 500
        error = classify_http_error(
            status, json.dumps({"detail": f"Prediction failed: {detail}"}), provider=self.name, model=model
        )
        error.partial_content = partial
        return error

    async def _cancel(self, prediction: dict[str, Any]) -> None:
        """Best effort: stop billing for a prediction nobody will read."""
        url = (prediction.get("urls") or {}).get("cancel")
        if not url:
            return
        try:
            response = await self.http.post(url, headers=self._headers(), timeout=5.0)
            await response.aclose()
        except httpx.HTTPError:
            pass

    # -- whole replies ---------------------------------------------------------------------------

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
        """Create a prediction, wait for it (polling past the API's wait), return its output."""
        headers = self._headers(prefer=f"wait={WAIT_S}")
        url, body = self._create(model, {"input": self._input(messages, temperature, max_tokens, kwargs)})

        async def attempt() -> CompletionResponse:
            clock = Clock()
            prediction = await self._request_json("POST", url, headers=headers, body=body, model=model)
            prediction = await self._until_done(prediction, model)
            if prediction.get("status") != "succeeded":
                raise self.failure(prediction, model)
            usage = usage_from(prediction.get("metrics"))
            metadata: dict[str, Any] = {"id": prediction.get("id")}
            if tools:
                metadata["tools_omitted"] = "Replicate models take no tool definitions"
            return CompletionResponse(
                content=output_text(prediction.get("output")),
                stop_reason="stop",
                usage=usage,
                model=model,
                metadata=metadata,
                raw_response=prediction,
                timings=clock.timings(usage.completion_tokens if usage else 0),
            )

        return await call_with_retry(
            attempt, policy=self.retry_policy, breaker=self.breaker, provider=self.name, sleep=self._sleep
        )

    async def _until_done(self, prediction: Any, model: str) -> dict[str, Any]:
        if not isinstance(prediction, dict) or "status" not in prediction:
            raise InvalidResponseError(
                "Replicate answered something other than a prediction", self.name, model=model
            )
        deadline = time.monotonic() + float(self.timeout or self.default_timeouts.read)
        delay = 0.2
        while prediction.get("status") not in TERMINAL:
            if time.monotonic() > deadline:
                await self._cancel(prediction)
                raise ProviderTimeoutError(
                    "The prediction did not finish in time (cancelled)", self.name, model=model
                )
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)
            get_url = (prediction.get("urls") or {}).get("get") or self._api(
                f"/predictions/{prediction['id']}"
            )
            prediction = await self._request_json("GET", get_url, headers=self._headers(), model=model)
        return cast(dict[str, Any], prediction)

    # -- streams ---------------------------------------------------------------------------------

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
        """Create a streaming prediction and read its SSE output."""
        headers = self._headers()
        url, body = self._create(
            model, {"input": self._input(messages, temperature, max_tokens, kwargs), "stream": True}
        )

        async def open_stream() -> AsyncGenerator[StreamChunk, None]:
            clock = Clock()
            prediction = await self._request_json("POST", url, headers=headers, body=body, model=model)
            stream_url = (
                (prediction.get("urls") or {}).get("stream") if isinstance(prediction, dict) else None
            )
            if not stream_url:
                raise InvalidResponseError(
                    "This model does not stream (no urls.stream)", self.name, model=model
                )
            partial = TextAssembly()
            finished = False
            try:
                response = await self._open(
                    "GET",
                    stream_url,
                    model=model,
                    headers={**headers, "accept": "text/event-stream", "cache-control": "no-store"},
                )
                try:
                    events_gen = cast(AsyncGenerator[SSEEvent, None], iter_sse(response, provider=self.name))
                    async with aclosing(events_gen) as events:
                        async for event in events:
                            if event.event == "output" and event.data:
                                clock.mark()
                                partial.append(event.data)
                                yield StreamChunk(content=event.data)
                            elif event.event == "error":
                                raise self.failure(
                                    {"status": "failed", "error": _detail(event.data)}, model,
                                    partial.text or None,
                                )
                            elif event.event == "done":
                                ended = json.loads(event.data or "{}")
                                reason = ended.get("reason") if isinstance(ended, dict) else None
                                if reason == "canceled":
                                    raise self.failure(
                                        {"status": "canceled", "error": reason}, model, partial.text or None
                                    )
                                finished = True
                                break
                finally:
                    await response.aclose()
            except httpx.HTTPError as exc:
                raise transport_error(exc, self.name, model=model, partial=partial.text or None) from exc
            except (ValueError, RecursionError) as exc:  # RecursionError: nested past the decoder's limit
                raise InvalidResponseError(
                    f"Malformed stream event: {exc}", self.name, model=model,
                    partial_content=partial.text or None,
                ) from exc
            finally:
                if not finished:
                    await self._cancel(prediction)  # stopped, failed or cut: stop the billing
            if not finished:
                raise InvalidResponseError(
                    "The stream ended before done", self.name, model=model,
                    partial_content=partial.text or None,
                )
            done = await self._metrics(prediction, model)
            usage = usage_from(done.get("metrics"))
            last = final_chunk(clock=clock, usage=usage, stop_reason="stop", tool_calls=[], model=model)
            last.metadata["id"] = prediction.get("id")
            if tools:
                last.metadata["tools_omitted"] = "Replicate models take no tool definitions"
            yield last

        chunks = stream_with_retry(
            open_stream, policy=self.retry_policy, breaker=self.breaker, provider=self.name, sleep=self._sleep
        )
        async with aclosing(chunks):  # type: ignore[type-var]
            async for chunk in chunks:
                yield chunk

    async def _metrics(self, prediction: dict[str, Any], model: str) -> dict[str, Any]:
        """The finished prediction (for its token counts); {} when it cannot be fetched."""
        get_url = (prediction.get("urls") or {}).get("get")
        if not get_url:
            return {}
        try:
            done = await self._request_json("GET", get_url, headers=self._headers(), model=model)
        except ProviderError:
            return {}
        return done if isinstance(done, dict) else {}

    async def list_models(self) -> list[ModelInfo]:
        """The official language-model collection (``GET /v1/collections/language-models``)."""
        data = await self._retrying_json(
            "GET", self._api("/collections/language-models"), headers=self._headers()
        )
        return [
            ModelInfo(
                id=f"{m['owner']}/{m['name']}",
                provider=self.name,
                capabilities=["chat", "streaming"],
                display_name=m.get("description"),
                raw=m,
            )
            for m in data.get("models") or []
        ]


def _detail(data: str) -> str:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return data
    return str(value.get("detail") or value) if isinstance(value, dict) else str(value)


__all__ = ["ReplicateProvider"]
