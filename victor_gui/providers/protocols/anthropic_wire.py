"""Anthropic Messages API payloads: neutral history in, ``/v1/messages`` JSON out, and replies
(whole or streamed as SSE) back to neutral types.

Reference: https://docs.anthropic.com/en/api/messages and /en/docs/build-with-claude/streaming.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

import httpx

from victor_gui.core.text import TextAssembly
from victor_gui.errors import InvalidResponseError, ProviderError
from victor_gui.providers.http import classify_http_error
from victor_gui.providers.json_guard import Shape, loads_object
from victor_gui.providers.protocols.cloud_base import Clock, final_chunk
from victor_gui.providers.protocols.reply_shapes import check_anthropic, check_anthropic_message
from victor_gui.providers.protocols.tool_history import anthropic_tool_id, repair_history
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
    token_count,
)

# The status each documented error type is sent with; a mid-stream ``error`` event carries only
# the type, so it is classified as if it had arrived with this status.
ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}

# The user turn placed before a history that starts with the model's turn.
CONTINUED = "(conversation continued)"

# Anthropic's stop reasons in the OpenAI vocabulary every adapter reports.
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


# -- request ------------------------------------------------------------------------------------


def build_payload(
    messages: list[Message],
    *,
    model: str,
    max_tokens: int,
    temperature: float | None,
    tools: list[ToolDefinition] | None,
    stream: bool,
    kwargs: dict[str, Any],
    thinking_for: Callable[[str], list[dict[str, Any]] | None] | None = None,
) -> dict[str, Any]:
    """The ``/v1/messages`` body for ``messages`` (system turns lifted to the top-level field).

    ``thinking_for(tool_use_id)`` returns the signed thinking blocks that preceded that call, if
    known; with thinking on they are replayed before the call, as the API requires in a tool loop.
    """
    system, turns = convert_messages(messages, thinking_for=thinking_for if kwargs.get("thinking") else None)
    body: dict[str, Any] = {"model": model, "max_tokens": int(max_tokens), "messages": turns}
    if system:
        body["system"] = system
    thinking = kwargs.get("thinking")
    if thinking:
        if isinstance(thinking, int) and not isinstance(thinking, bool):
            thinking = {"type": "enabled", "budget_tokens": thinking}
        elif thinking is True:
            thinking = {"type": "enabled", "budget_tokens": min(max(1024, max_tokens // 2), 32000)}
        body["thinking"] = thinking
        # With thinking on, the API accepts only temperature 1 (and rejects top_k).
    elif temperature is not None:
        body["temperature"] = temperature
    if tools:
        body["tools"] = [
            {
                "name": t.name,
                "description": t.description,
                "input_schema": t.parameters or {"type": "object", "properties": {}},
            }
            for t in tools
        ]
        if kwargs.get("tool_choice"):
            body["tool_choice"] = kwargs["tool_choice"]
    for key in ("top_p", "top_k", "stop_sequences", "metadata", "service_tier"):
        if kwargs.get(key) is not None:
            body[key] = kwargs[key]
    if stream:
        body["stream"] = True
    return body


def convert_messages(
    messages: list[Message], *, thinking_for: Callable[[str], list[dict[str, Any]] | None] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """(system text, alternating user/assistant turns) from neutral messages.

    Several system messages are joined (none is dropped); consecutive turns of one role are
    merged, so consecutive tool results become one user turn with its ``tool_result`` blocks
    first, as the API requires.
    """
    repaired = repair_history(messages).messages
    system_parts: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in repaired:
        if message.role in ("system", "developer"):
            if message.text.strip():
                system_parts.append(message.text)
            continue
        role, blocks = _blocks(message, thinking_for)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            merged = turns[-1]["content"] + blocks
            # tool_result blocks must open the user turn that answers a tool_use turn.
            merged.sort(key=lambda b: 0 if b.get("type") == "tool_result" else 1)
            turns[-1]["content"] = merged
        else:
            turns.append({"role": role, "content": blocks})
    if turns and turns[0]["role"] != "user":
        # A history trimmed from the front can start with the model's turn; the API wants a user
        # turn first, so a neutral one is put before it rather than dropping the model's reply.
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": CONTINUED}]})
    return "\n\n".join(system_parts), turns


def _blocks(
    message: Message, thinking_for: Callable[[str], list[dict[str, Any]] | None] | None
) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        content: str | list[dict[str, Any]] = message.text or "(empty)"
        if message.images:  # a tool that returned images: text block first, then the images
            content = [{"type": "text", "text": content}, *(_image_block(i) for i in message.images)]
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": anthropic_tool_id(message.tool_call_id or ""),
            "content": content,
        }
        return "user", [block]
    blocks: list[dict[str, Any]] = []
    for part in message.parts():
        if isinstance(part, TextPart):
            if part.text:  # the API rejects empty text blocks
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            blocks.append(_image_block(part))
    if message.role == "assistant":
        if message.tool_calls and thinking_for is not None:
            blocks[:0] = thinking_for(message.tool_calls[0].id) or []
        for call in message.tool_calls or []:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": anthropic_tool_id(call.id),
                    "name": call.name,
                    "input": call.arguments,
                }
            )
        return "assistant", blocks
    return "user", blocks


def _image_block(part: ImagePart) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": part.media_type, "data": part.data}}


# -- whole replies --------------------------------------------------------------------------------


def usage_from(data: dict[str, Any] | None, output_tokens: int | None = None) -> Usage:
    """Neutral usage: ``prompt_tokens`` counts the whole prompt (fresh + cache read + cache write),
    as OpenAI's does, with the cached parts broken out."""
    data = data or {}
    fresh = token_count(data.get("input_tokens"))
    read = token_count(data.get("cache_read_input_tokens"))
    written = token_count(data.get("cache_creation_input_tokens"))
    out = token_count(output_tokens if output_tokens is not None else data.get("output_tokens"))
    return Usage(
        prompt_tokens=fresh + read + written,
        completion_tokens=out,
        cached_tokens=read,
        cache_creation_tokens=written,
    )


def parse_message(data: Any, clock: Clock, *, provider: str, model: str) -> CompletionResponse:
    """A :class:`CompletionResponse` from a whole ``message`` object."""
    if not isinstance(data, dict) or data.get("type") == "error":
        raise error_from_event(data, provider=provider, model=model)
    check_anthropic_message(data, Shape("Anthropic reply", provider, model=model))
    text: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCall] = []
    signed: list[dict[str, Any]] = []
    for block in data.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(block.get("thinking") or "")
            signed.append(block)
        elif kind == "tool_use":
            calls.append(
                ToolCall(id=block.get("id"), name=block.get("name") or "", arguments=block.get("input") or {})
            )
    usage = usage_from(data.get("usage"))
    native = data.get("stop_reason")
    return CompletionResponse(
        content="".join(text),
        reasoning="".join(thinking) or None,
        tool_calls=calls or None,
        stop_reason=STOP_REASONS.get(native or "", native),
        usage=usage,
        model=data.get("model") or model,
        timings=clock.timings(usage.completion_tokens),
        metadata={"native_stop_reason": native, "id": data.get("id"), "thinking_blocks": signed},
        raw_response=data,
    )


def error_from_event(
    data: Any, *, provider: str, model: str | None, partial: str | None = None
) -> ProviderError:
    """The typed error for an ``{"type": "error", "error": {...}}`` body or stream event."""
    err = data.get("error") if isinstance(data, dict) else None
    etype = err.get("type") if isinstance(err, dict) else None
    status = ERROR_TYPE_STATUS.get(str(etype), 500)
    error = classify_http_error(status, json.dumps(data), provider=provider, model=model)
    error.partial_content = partial
    return error


# -- streams ------------------------------------------------------------------------------------


class AnthropicStreamDecoder:
    """State machine over the SSE events of one streamed message."""

    def __init__(self, clock: Clock, *, provider: str, model: str) -> None:
        self.clock = clock
        self.provider = provider
        self.model = model
        self._partial = TextAssembly()
        self._blocks: dict[int, dict[str, Any]] = {}  # content index -> {type, tool index, id, name, json}
        self._tools: list[dict[str, Any]] = []
        self.thinking_blocks: list[dict[str, Any]] = []  # signed, for replay in a tool loop
        self._start_usage: dict[str, Any] = {}
        self._output_tokens: int | None = None
        self._stop: str | None = None
        self._model: str | None = None
        self._done = False

    @property
    def partial(self) -> str:
        """The answer text so far (joined on read; read only when an error needs it)."""
        return self._partial.text

    async def run(self, response: httpx.Response) -> AsyncGenerator[StreamChunk, None]:
        async for event in iter_sse(response, provider=self.provider):
            if event.data == "":
                continue
            data = loads_object(event.data, where="Anthropic stream event", provider=self.provider,
                                model=self.model, partial=self.partial)
            kind = data.get("type") or event.event
            if kind != "error":  # an error event's own shape is error_from_event's to read
                check_anthropic(data, Shape("Anthropic stream event", self.provider, model=self.model))
            chunk = self._handle(kind, data)
            if chunk is not None:
                yield chunk
            if self._done:
                break
        if not self._done:
            raise InvalidResponseError(
                "The stream ended before message_stop",
                self.provider,
                model=self.model,
                partial_content=self.partial or None,
            )
        last = final_chunk(
            clock=self.clock,
            usage=usage_from(self._start_usage, self._output_tokens),
            stop_reason=STOP_REASONS.get(self._stop or "", self._stop),
            model=self._model or self.model,
            tool_calls=[self._assemble(t) for t in self._tools],
            native_stop=self._stop,
        )
        for entry in self._blocks.values():  # thinking and signatures streamed in pieces
            for key, pieces in (entry.get("pieces") or {}).items():
                entry["block"][key] = pieces.text
        last.metadata["thinking_blocks"] = self.thinking_blocks
        yield last

    def _handle(self, kind: str, data: dict[str, Any]) -> StreamChunk | None:
        if kind == "message_start":
            message = data.get("message") or {}
            self._start_usage = dict(message.get("usage") or {})
            self._model = message.get("model")
        elif kind == "content_block_start":
            return self._block_start(int(data.get("index", 0)), data.get("content_block") or {})
        elif kind == "content_block_delta":
            return self._block_delta(int(data.get("index", 0)), data.get("delta") or {})
        elif kind == "message_delta":
            self._stop = (data.get("delta") or {}).get("stop_reason") or self._stop
            usage = data.get("usage") or {}
            if usage.get("output_tokens") is not None:
                self._output_tokens = token_count(usage["output_tokens"])
            for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                if usage.get(key) is not None:  # newer API versions repeat the totals here
                    self._start_usage[key] = usage[key]
        elif kind == "message_stop":
            self._done = True
        elif kind == "error":
            raise error_from_event(
                data, provider=self.provider, model=self.model, partial=self.partial or None
            )
        # ping, content_block_stop and unknown future events carry nothing to show.
        return None

    def _block_start(self, index: int, block: dict[str, Any]) -> StreamChunk | None:
        kind = block.get("type")
        entry: dict[str, Any] = {"type": kind}
        self._blocks[index] = entry
        if kind == "tool_use":
            tool = {
                "index": len(self._tools),
                "id": block.get("id"),
                "name": block.get("name") or "",
                "json": TextAssembly(),
            }
            self._tools.append(tool)
            entry["tool"] = tool
            self.clock.mark()
            return StreamChunk(
                tool_call_deltas=[ToolCallDelta(index=tool["index"], id=tool["id"], name=tool["name"])]
            )
        if kind in ("thinking", "redacted_thinking"):
            entry["block"] = dict(block)
            entry["pieces"] = {}
            self.thinking_blocks.append(entry["block"])
        if kind == "text" and block.get("text"):
            return self._text(block["text"])
        if kind == "thinking" and block.get("thinking"):
            return self._thinking(block["thinking"])
        return None

    def _block_delta(self, index: int, delta: dict[str, Any]) -> StreamChunk | None:
        kind = delta.get("type")
        if kind == "text_delta":
            return self._text(delta.get("text") or "")
        if kind == "thinking_delta":
            self._add_piece(index, "thinking", delta.get("thinking") or "")
            return self._thinking(delta.get("thinking") or "")
        if kind == "signature_delta":
            self._add_piece(index, "signature", delta.get("signature") or "")
            return None
        if kind == "input_json_delta":
            tool = self._blocks.get(index, {}).get("tool")
            piece = delta.get("partial_json") or ""
            if tool is None:
                raise InvalidResponseError(
                    "input_json_delta for a block that is not a tool_use",
                    self.provider,
                    model=self.model,
                    partial_content=self.partial or None,
                )
            tool["json"].append(piece)
            if not piece:
                return None
            return StreamChunk(tool_call_deltas=[ToolCallDelta(index=tool["index"], arguments_delta=piece)])
        # citations_delta and future delta types carry nothing to show.
        return None

    def _text(self, text: str) -> StreamChunk | None:
        if not text:
            return None
        self.clock.mark()
        self._partial.append(text)
        return StreamChunk(content=text)

    def _add_piece(self, index: int, key: str, piece: str) -> None:
        """A piece of a thinking block's text or signature, kept in a list until the end
        (``block[key] += piece`` copied the whole text every time)."""
        entry = self._blocks.get(index, {})
        if "block" not in entry:
            return
        if key not in entry["pieces"]:
            entry["pieces"][key] = TextAssembly(entry["block"].get(key) or "")
        entry["pieces"][key].append(piece)

    def _thinking(self, text: str) -> StreamChunk | None:
        if not text:
            return None
        self.clock.mark()
        return StreamChunk(reasoning=text)

    def _assemble(self, tool: dict[str, Any]) -> ToolCall:
        raw = tool["json"].text.strip()
        try:
            args = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            args = {"_raw": raw}
        return ToolCall(
            id=tool["id"], name=tool["name"], arguments=args if isinstance(args, dict) else {"_value": args}
        )
