"""Chat-completions payloads and replies for Azure OpenAI.

Azure speaks OpenAI's ``/chat/completions`` with its own additions: ``prompt_filter_results`` and
per-choice ``content_filter_results``, ``finish_reason: "content_filter"``, and 400 errors with
``code: "content_filter"`` and an ``innererror.content_filter_result``. This module is the small
OpenAI codec Azure needs until the shared OpenAI-compatible protocol
(``victor_gui.providers.protocols.openai_compat``) is merged; then Azure should reuse that one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from victor_gui.errors import ContentFilterError, InvalidResponseError, ProviderError
from victor_gui.providers.http import classify_http_error
from victor_gui.providers.protocols.cloud_base import Clock, final_chunk
from victor_gui.providers.protocols.tool_history import repair_tool_history
from victor_gui.providers.streaming import iter_sse
from victor_gui.providers.types import (
    CompletionResponse,
    ImagePart,
    Message,
    StreamChunk,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolDefinition,
    Usage,
)


def convert_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """OpenAI chat messages; tool history repaired first so every result follows its call."""
    repaired, _ = repair_tool_history(messages)
    out: list[dict[str, Any]] = []
    for m in repaired:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text})
        elif m.role == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": m.text or None}
            if m.tool_calls:
                msg["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {
                            "name": c.name,
                            "arguments": json.dumps(c.arguments, ensure_ascii=False),
                        },
                    }
                    for c in m.tool_calls
                ]
            out.append(msg)
        else:
            role = "system" if m.role in ("system", "developer") else "user"
            if m.images:
                parts: list[dict[str, Any]] = []
                for part in m.parts():
                    if isinstance(part, TextPart):
                        parts.append({"type": "text", "text": part.text})
                    elif isinstance(part, ImagePart):
                        parts.append({"type": "image_url", "image_url": {"url": part.to_data_url()}})
                out.append({"role": role, "content": parts})
            else:
                out.append({"role": role, "content": m.text})
    return out


def build_payload(
    messages: list[Message],
    *,
    temperature: float | None,
    max_tokens: int | None,
    tools: list[ToolDefinition] | None,
    stream: bool,
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": convert_messages(messages)}
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens:
        # Reasoning deployments (o-series) take max_completion_tokens; the caller says which.
        body["max_completion_tokens" if kwargs.get("max_completion_tokens") else "max_tokens"] = int(
            max_tokens
        )
    if tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            }
            for t in tools
        ]
    for key in ("top_p", "stop", "tool_choice", "reasoning_effort", "seed", "user"):
        if kwargs.get(key) is not None:
            body[key] = kwargs[key]
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def usage_from(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    details = data.get("prompt_tokens_details") or {}
    completion = data.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
        total_tokens=int(data.get("total_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion.get("reasoning_tokens") or 0),
    )


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


def parse_completion(data: Any, clock: Clock, *, provider: str, model: str) -> CompletionResponse:
    if not isinstance(data, dict) or not data.get("choices"):
        raise InvalidResponseError("The reply has no choices", provider, model=model)
    choice = data["choices"][0]
    message = choice.get("message") or {}
    if choice.get("finish_reason") == "content_filter":
        raise filter_error(
            "reply",
            choice.get("content_filter_results"),
            provider=provider,
            model=model,
            partial=message.get("content"),
        )
    calls = [
        ToolCall(
            id=c.get("id"),
            name=(c.get("function") or {}).get("name") or "",
            arguments=(c.get("function") or {}).get("arguments"),
        )
        for c in message.get("tool_calls") or []
    ]
    usage = usage_from(data.get("usage"))
    return CompletionResponse(
        content=message.get("content") or "",
        reasoning=message.get("reasoning_content") or None,
        tool_calls=calls or None,
        stop_reason=choice.get("finish_reason") or ("tool_calls" if calls else None),
        usage=usage,
        model=data.get("model") or model,
        timings=clock.timings(usage.completion_tokens if usage else 0),
        metadata={"id": data.get("id")},
        raw_response=data,
    )


def stream_error(data: dict[str, Any], *, provider: str, model: str, partial: str) -> ProviderError:
    err = data.get("error") or {}
    code = err.get("code") if isinstance(err, dict) else None
    status = int(code) if isinstance(code, str) and code.isdigit() else int(err.get("status") or 500)
    error = classify_http_error(status, json.dumps(data), provider=provider, model=model)
    error.partial_content = partial or None
    return error


class AzureStreamDecoder:
    """OpenAI-style SSE chunks, with Azure's filter annotations."""

    def __init__(self, clock: Clock, *, provider: str, model: str) -> None:
        self.clock = clock
        self.provider = provider
        self.model = model
        self.partial = ""
        self._tools: dict[int, dict[str, str]] = {}
        self._usage: Usage | None = None
        self._finish: str | None = None

    async def run(self, response: httpx.Response) -> AsyncGenerator[StreamChunk, None]:
        done = False
        async for event in iter_sse(response, provider=self.provider):
            if event.data.strip() == "[DONE]":
                done = True
                break
            data = json.loads(event.data)
            if "error" in data:
                raise stream_error(data, provider=self.provider, model=self.model, partial=self.partial)
            self._usage = usage_from(data.get("usage")) or self._usage
            for choice in data.get("choices") or []:
                chunk = self._choice(choice)
                if chunk is not None:
                    yield chunk
        if not done:
            raise InvalidResponseError(
                "The stream ended before [DONE]",
                self.provider,
                model=self.model,
                partial_content=self.partial or None,
            )
        calls = [
            ToolCall(id=t["id"] or None, name=t["name"], arguments=t["args"])
            for _, t in sorted(self._tools.items())
        ]
        stop = self._finish or ("tool_calls" if calls else None)
        yield final_chunk(
            clock=self.clock,
            usage=self._usage,
            stop_reason=stop,
            tool_calls=calls,
            model=self.model,
            native_stop=self._finish,
        )

    def _choice(self, choice: dict[str, Any]) -> StreamChunk | None:
        delta = choice.get("delta") or {}
        finish = choice.get("finish_reason")
        if finish == "content_filter":
            raise filter_error(
                "reply",
                choice.get("content_filter_results"),
                provider=self.provider,
                model=self.model,
                partial=self.partial,
            )
        if finish:
            self._finish = finish
        chunk = StreamChunk(
            content=delta.get("content") or "", reasoning=delta.get("reasoning_content") or ""
        )
        deltas = []
        for raw in delta.get("tool_calls") or []:
            index = int(raw.get("index", len(self._tools)))
            fn = raw.get("function") or {}
            tool = self._tools.setdefault(index, {"id": "", "name": "", "args": ""})
            tool["id"] = raw.get("id") or tool["id"]
            tool["name"] = fn.get("name") or tool["name"]
            tool["args"] += fn.get("arguments") or ""
            deltas.append(
                ToolCallDelta(
                    index=index,
                    id=raw.get("id"),
                    name=fn.get("name"),
                    arguments_delta=fn.get("arguments") or "",
                )
            )
        if deltas:
            chunk.tool_call_deltas = deltas
        if not (chunk.content or chunk.reasoning or deltas):
            return None
        self.clock.mark()
        self.partial += chunk.content
        return chunk
