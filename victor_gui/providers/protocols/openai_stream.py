"""Assembling OpenAI-style chat-completion chunks (and whole replies) into neutral types.

One :class:`StreamAssembler` per request: it turns each decoded ``chat.completion.chunk``
into zero or more :class:`StreamChunk` deltas, keeps reasoning apart from the answer (the
``reasoning_content``/``reasoning`` fields and inline ``<think>`` tags), collects index-keyed
tool-call fragments, and builds the final chunk with usage, server or client timings and the
assembled tool calls.
"""

from __future__ import annotations

import json
import time
from typing import Any

from victor_gui.core.text import TextAssembly
from victor_gui.errors import InvalidResponseError, ProviderError
from victor_gui.providers.http import classify_http_error, error_details_from_json
from victor_gui.providers.json_guard import Shape
from victor_gui.providers.protocols.reply_shapes import check_openai
from victor_gui.providers.thinking import ThinkTagSplitter
from victor_gui.providers.types import (
    CompletionResponse,
    StreamChunk,
    Timings,
    ToolCall,
    ToolCallDelta,
    Usage,
    token_count,
)

REASONING_FIELDS = ("reasoning_content", "reasoning")


def usage_from(data: Any) -> Usage | None:
    """:class:`Usage` from an OpenAI ``usage`` object, with cached and reasoning token details."""
    if not isinstance(data, dict):
        return None
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=token_count(data.get("prompt_tokens")),
        completion_tokens=token_count(data.get("completion_tokens")),
        total_tokens=token_count(data.get("total_tokens")),
        cached_tokens=token_count(prompt_details.get("cached_tokens") or data.get("prompt_cache_hit_tokens")),
        reasoning_tokens=token_count(completion_details.get("reasoning_tokens")),
    )


def server_timings(data: Any) -> Timings | None:
    """llama.cpp ``timings`` (milliseconds) as tokens/second figures."""
    if not isinstance(data, dict):
        return None

    def rate(per_second: str, count: str, ms: str) -> float | None:
        value = data.get(per_second)
        if isinstance(value, int | float) and value > 0:
            return float(value)
        n, t = data.get(count), data.get(ms)
        if isinstance(n, int | float) and isinstance(t, int | float) and t > 0:
            return n * 1000.0 / t
        return None

    tps = rate("predicted_per_second", "predicted_n", "predicted_ms")
    pps = rate("prompt_per_second", "prompt_n", "prompt_ms")
    if tps is None and pps is None:
        return None
    return Timings(source="server", tokens_per_second=tps, prompt_tokens_per_second=pps)


def error_from_payload(
    payload: Any, *, provider: str, model: str | None, partial: str | None, status: int | None = None
) -> ProviderError:
    """The typed error for an error object found in a body or a stream event."""
    message, etype, code = error_details_from_json(payload)
    err_status = status if status and status >= 400 else None
    if err_status is None and code is not None and str(code).isdigit() and 400 <= int(code) < 600:
        err_status = int(code)
    if err_status is None:
        low = f"{etype or ''} {code or ''}".lower()
        # No status to go on (a 200 body or a stream event): the words decide between a request
        # problem (incl. LM Studio's context overflow in a 200) and a server failure.
        low += " " + message.lower()
        err_status = 400 if any(w in low for w in ("invalid", "context length", "bad")) else 500
    body = json.dumps(payload) if isinstance(payload, dict | list) else json.dumps({"error": str(payload)})
    error = classify_http_error(err_status, body, provider=provider, model=model)
    if "unexpected endpoint or method" in message.lower():
        error = InvalidResponseError(
            f"The server does not know this route ({message}); check that the base URL ends in /v1",
            provider,
            model=model,
        )
    error.partial_content = partial or None
    return error


class StreamAssembler:
    """State of one streamed reply."""

    def __init__(
        self, *, provider: str, model: str, think_anywhere: bool, started: float | None = None
    ) -> None:
        self.provider = provider
        self.model = model
        self.started = time.monotonic() if started is None else started
        self.splitter = ThinkTagSplitter(anywhere=think_anywhere)
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.timings: Timings | None = None
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.deltas = 0
        self.server_model: str | None = None
        # True once a reasoning *field* carried text: inline <think> is then a duplicate
        # (llama.cpp --reasoning-format deepseek-legacy fills both).
        self.field_reasoning = False

    @property
    def partial(self) -> str:
        return "".join(self.content)

    def _mark(self) -> None:
        now = time.monotonic()
        if self.first_token_at is None:
            self.first_token_at = now
        self.last_token_at = now
        self.deltas += 1

    def feed(self, data: dict[str, Any]) -> list[StreamChunk]:
        """Chunks for one decoded event; raises the typed error for an error event."""
        if data.get("error"):  # also OpenRouter's error-with-choices chunks
            raise error_from_payload(data, provider=self.provider, model=self.model, partial=self.partial)
        check_openai(data, Shape(f"{self.provider} reply", self.provider, model=self.model))
        self.server_model = data.get("model") or self.server_model
        if data.get("usage"):
            self.usage = usage_from(data["usage"]) or self.usage
        if data.get("timings"):
            self.timings = server_timings(data["timings"]) or self.timings
        out: list[StreamChunk] = []
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or choice.get("message") or {}
            reasoning = ""
            for field in REASONING_FIELDS:
                if isinstance(delta.get(field), str) and delta[field]:
                    reasoning += delta[field]
                    self.field_reasoning = True
                    break
            content, inline = self.splitter.feed(delta.get("content") or "")
            if not self.field_reasoning:
                reasoning += inline
            tool_deltas = self._tool_deltas(delta.get("tool_calls"))
            if content or reasoning or tool_deltas:
                self._mark()
                self.content.append(content)
                self.reasoning.append(reasoning)
                out.append(
                    StreamChunk(content=content, reasoning=reasoning, tool_call_deltas=tool_deltas or None)
                )
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def _tool_deltas(self, raw: Any) -> list[ToolCallDelta]:
        deltas: list[ToolCallDelta] = []
        for position, frag in enumerate(raw or []):
            index = frag.get("index", position)
            fn = frag.get("function") or {}
            slot = self.tools.setdefault(index, {"id": None, "name": "", "arguments": TextAssembly()})
            if frag.get("id"):
                slot["id"] = frag["id"]
            if fn.get("name"):
                slot["name"] = fn["name"] if not slot["name"] else slot["name"]
            args = fn.get("arguments")
            if isinstance(args, dict):  # a few servers send whole objects
                args = json.dumps(args)
            slot["arguments"].append(args or "")
            deltas.append(
                ToolCallDelta(index=index, id=frag.get("id"), name=fn.get("name"), arguments_delta=args or "")
            )
        return deltas

    def flush_text(self) -> StreamChunk | None:
        """Text the think splitter still holds (at end of stream)."""
        content, reasoning = self.splitter.flush()
        if not content and not reasoning:
            return None
        self.content.append(content)
        self.reasoning.append(reasoning)
        return StreamChunk(content=content, reasoning=reasoning)

    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=s["id"], name=s["name"], arguments=s["arguments"].text)
            for _, s in sorted(self.tools.items())
            if s["name"]
        ]

    def final_timings(self) -> Timings | None:
        ttft = None if self.first_token_at is None else (self.first_token_at - self.started) * 1000.0
        if self.timings is not None:
            return self.timings.model_copy(update={"ttft_ms": ttft})
        if self.first_token_at is None:
            return None
        tokens = self.usage.completion_tokens if self.usage and self.usage.completion_tokens else self.deltas
        span = (self.last_token_at or self.first_token_at) - self.first_token_at
        tps = (tokens - 1) / span if span > 0 and tokens > 1 else None
        return Timings(source="client", ttft_ms=ttft, tokens_per_second=tps)

    def final_chunk(self, metadata: dict[str, Any] | None = None) -> StreamChunk:
        calls = self.tool_calls()
        stop = self.finish_reason or ("tool_calls" if calls else None)
        return StreamChunk(
            is_final=True,
            stop_reason=stop,
            tool_calls=calls or None,
            usage=self.usage,
            timings=self.final_timings(),
            model=self.server_model or self.model,
            metadata=dict(metadata or {}),
        )


def completion_from(
    data: Any, *, provider: str, model: str, started: float, think_anywhere: bool, metadata: dict[str, Any]
) -> CompletionResponse:
    """A whole ``chat.completion`` body as a :class:`CompletionResponse` (same parsing as a stream:
    the message is fed to a :class:`StreamAssembler` as one delta)."""
    data = check_openai(data, Shape(f"{provider} reply", provider, model=model))
    if not data.get("choices"):
        raise InvalidResponseError("The reply has no choices", provider, model=model)
    choice = data["choices"][0]
    asm = StreamAssembler(provider=provider, model=model, think_anywhere=think_anywhere)
    whole = {"delta": choice.get("message") or {}, "finish_reason": choice.get("finish_reason")}
    asm.feed(
        {
            "choices": [whole],
            "usage": data.get("usage"),
            "timings": data.get("timings"),
            "model": data.get("model"),
        }
    )
    asm.flush_text()
    calls = asm.tool_calls()
    elapsed = time.monotonic() - started
    timings = asm.timings
    if timings is None and asm.usage and asm.usage.completion_tokens and elapsed > 0:
        # No server figures: a whole reply gives only an average over the request.
        timings = Timings(source="client", tokens_per_second=asm.usage.completion_tokens / elapsed)
    return CompletionResponse(
        content=asm.partial,
        tool_calls=calls or None,
        reasoning="".join(asm.reasoning) or None,
        stop_reason=choice.get("finish_reason") or ("tool_calls" if calls else None),
        usage=asm.usage,
        model=data.get("model") or model,
        timings=timings,
        metadata=dict(metadata, latency_ms=round(elapsed * 1000.0, 1)),
        raw_response=data,
    )
