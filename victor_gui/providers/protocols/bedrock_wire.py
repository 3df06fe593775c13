"""Bedrock Converse payloads: neutral history in, ``/model/{id}/converse`` JSON out, replies (whole,
or ConverseStream event frames) back to neutral types.

Unlike Victor, every system message is kept (one ``system`` block each) and consecutive tool
results are merged into one user turn, as Converse requires. ``toolUseId`` follows the same
pattern as Anthropic's, so foreign ids are sanitised the same deterministic way.

Claude's extended thinking comes back as signed ``reasoningContent`` blocks (``reasoningText``
with ``text`` + ``signature``, or an opaque ``redactedContent``). With thinking on, Bedrock wants
the blocks that preceded a ``toolUse`` sent back first in that assistant turn, in this same
shape; they are gathered here (``metadata["thinking_blocks"]``) and replayed via ``thinking_for``.

Reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

import httpx

from victor_gui.core.text import TextAssembly
from victor_gui.errors import ContentFilterError, InvalidResponseError, ProviderError
from victor_gui.providers.http import classify_http_error
from victor_gui.providers.json_guard import loads_object
from victor_gui.providers.protocols.cloud_base import Clock, final_chunk
from victor_gui.providers.protocols.eventstream import iter_frames
from victor_gui.providers.protocols.tool_history import anthropic_tool_id, repair_history
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

STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
FILTERED = {"guardrail_intervened", "content_filtered"}
# Stream exception frames name their type; each is classified as if sent with this status.
EXCEPTION_STATUS = {
    "throttlingexception": 429,
    "validationexception": 400,
    "accessdeniedexception": 403,
    "resourcenotfoundexception": 404,
    "modeltimeoutexception": 408,
    "modelstreamerrorexception": 500,
    "internalserverexception": 500,
    "serviceunavailableexception": 503,
}
CONTINUED = "(conversation continued)"

ThinkingLookup = Callable[[str], list[dict[str, Any]] | None]


def convert(
    messages: list[Message], *, thinking_for: ThinkingLookup | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(``system`` blocks, alternating ``messages``) for Converse.

    ``thinking_for(tool_use_id)`` returns the signed ``reasoningContent`` blocks that preceded
    that call, if known; they open the assistant turn that made the call.
    """
    repaired = repair_history(messages).messages
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in repaired:
        if message.role in ("system", "developer"):
            if message.text.strip():
                system.append({"text": message.text})
            continue
        role, blocks = _blocks(message, thinking_for)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            merged = turns[-1]["content"] + blocks
            # Results open a user turn; reasoning must open an assistant turn (stable sort).
            merged.sort(key=lambda b: 0 if "toolResult" in b or "reasoningContent" in b else 1)
            turns[-1]["content"] = merged
        else:
            turns.append({"role": role, "content": blocks})
    if turns and turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"text": CONTINUED}]})
    return system, turns


def _image_block(part: ImagePart) -> dict[str, Any]:
    fmt = part.media_type.split("/")[-1].replace("jpg", "jpeg")
    return {"image": {"format": fmt, "source": {"bytes": part.data}}}


def _blocks(message: Message, thinking_for: ThinkingLookup | None) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        try:
            value = json.loads(message.text)
        except (ValueError, RecursionError):
            value = None
        output = {"json": value} if isinstance(value, dict) else {"text": message.text or "(empty)"}
        content: list[dict[str, Any]] = [output]
        content += [_image_block(image) for image in message.images]  # a tool's images, after its output
        tool_id = anthropic_tool_id(message.tool_call_id or "")
        return "user", [{"toolResult": {"toolUseId": tool_id, "content": content, "status": "success"}}]
    blocks: list[dict[str, Any]] = []
    for part in message.parts():
        if isinstance(part, TextPart) and part.text.strip():  # blank text blocks are rejected
            blocks.append({"text": part.text})
        elif isinstance(part, ImagePart):
            blocks.append(_image_block(part))
    if message.role == "assistant":
        if message.tool_calls and thinking_for is not None:
            blocks[:0] = [dict(b) for b in thinking_for(message.tool_calls[0].id) or []]
        for call in message.tool_calls or []:
            blocks.append(
                {
                    "toolUse": {
                        "toolUseId": anthropic_tool_id(call.id),
                        "name": call.name,
                        "input": call.arguments,
                    }
                }
            )
        return "assistant", blocks
    return "user", blocks


def build_payload(
    messages: list[Message],
    *,
    temperature: float | None,
    max_tokens: int | None,
    tools: list[ToolDefinition] | None,
    kwargs: dict[str, Any],
    thinking_for: ThinkingLookup | None = None,
) -> dict[str, Any]:
    """The Converse request body. Remembered reasoning is replayed only with thinking on: without
    it the blocks are useless to the model and only cost tokens."""
    system, turns = convert(messages, thinking_for=thinking_for if kwargs.get("thinking") else None)
    body: dict[str, Any] = {"messages": turns}
    if system:
        body["system"] = system
    config: dict[str, Any] = {}
    if max_tokens:
        config["maxTokens"] = int(max_tokens)
    thinking = kwargs.get("thinking")
    if thinking:
        budget = thinking if isinstance(thinking, int) and not isinstance(thinking, bool) else 4096
        if isinstance(thinking, dict):
            budget = int(thinking.get("budget_tokens") or 4096)
        # Claude on Bedrock takes Anthropic's thinking switch as a model-specific field.
        body["additionalModelRequestFields"] = {"thinking": {"type": "enabled", "budget_tokens": budget}}
    elif temperature is not None:
        config["temperature"] = temperature
    if kwargs.get("top_k") is not None and not thinking:
        # Converse has no top_k; Claude takes it as a model-specific field (not with thinking on).
        body.setdefault("additionalModelRequestFields", {})["top_k"] = int(kwargs["top_k"])
    if kwargs.get("top_p") is not None:
        config["topP"] = kwargs["top_p"]
    if kwargs.get("stop_sequences"):
        config["stopSequences"] = list(kwargs["stop_sequences"])
    if config:
        body["inferenceConfig"] = config
    if tools:
        body["toolConfig"] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": t.name,
                        "description": t.description or t.name,
                        "inputSchema": {"json": t.parameters},
                    }
                }
                for t in tools
            ]
        }
    if kwargs.get("guardrail_config"):
        body["guardrailConfig"] = kwargs["guardrail_config"]
    return body


def usage_from(data: dict[str, Any] | None) -> Usage | None:
    """Neutral usage; ``prompt_tokens`` is the whole prompt (fresh + cache read + cache write)."""
    if not data:
        return None
    fresh = token_count(data.get("inputTokens"))
    read = token_count(data.get("cacheReadInputTokens"))
    written = token_count(data.get("cacheWriteInputTokens"))
    return Usage(
        prompt_tokens=fresh + read + written,
        completion_tokens=token_count(data.get("outputTokens")),
        cached_tokens=read,
        cache_creation_tokens=written,
    )


def parse_converse(data: Any, clock: Clock, *, provider: str, model: str) -> CompletionResponse:
    if not isinstance(data, dict) or "output" not in data:
        raise InvalidResponseError("The Converse reply has no output", provider, model=model)
    text, thinking, calls = "", "", []
    signed: list[dict[str, Any]] = []
    for block in ((data["output"].get("message") or {}).get("content")) or []:
        if "text" in block:
            text += block["text"]
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append(
                ToolCall(id=use.get("toolUseId"), name=use.get("name") or "", arguments=use.get("input"))
            )
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"] or {}
            thinking += (reasoning.get("reasoningText") or {}).get("text") or ""
            if _replayable(reasoning):
                signed.append(block)
    native = data.get("stopReason")
    if native in FILTERED:
        raise ContentFilterError(
            f"Bedrock stopped the reply ({native})", provider, model=model, partial_content=text or None
        )
    usage = usage_from(data.get("usage"))
    return CompletionResponse(
        content=text,
        reasoning=thinking or None,
        tool_calls=calls or None,
        stop_reason=STOP_REASONS.get(native or "", native),
        usage=usage,
        model=model,
        timings=clock.timings(usage.completion_tokens if usage else 0),
        metadata={
            "native_stop_reason": native,
            "latency_ms": (data.get("metrics") or {}).get("latencyMs"),
            "thinking_blocks": signed,
        },
        raw_response=data,
    )


def _replayable(reasoning: dict[str, Any]) -> bool:
    """Signed or redacted reasoning; unsigned text (e.g. DeepSeek's) cannot be sent back to Claude."""
    return bool(reasoning.get("redactedContent") or (reasoning.get("reasoningText") or {}).get("signature"))


def exception_error(kind: str, payload: bytes, *, provider: str, model: str, partial: str) -> ProviderError:
    """The typed error for an exception frame (``:message-type: exception``)."""
    status = EXCEPTION_STATUS.get(kind.lower(), 500)
    body = payload.decode("utf-8", errors="replace")
    error = classify_http_error(status, body, provider=provider, model=model)
    error.partial_content = partial or None
    return error


class BedrockStreamDecoder:
    """ConverseStream frames into chunks."""

    def __init__(self, clock: Clock, *, provider: str, model: str) -> None:
        self.clock = clock
        self.provider = provider
        self.model = model
        self._partial = TextAssembly()
        self._tools: dict[int, dict[str, Any]] = {}  # contentBlockIndex -> tool
        # contentBlockIndex -> text / signature / redactedContent, each assembled from pieces
        self._reasoning: dict[int, dict[str, TextAssembly]] = {}
        self._usage: Usage | None = None
        self._stop: str | None = None

    async def run(self, response: httpx.Response) -> AsyncGenerator[StreamChunk, None]:
        async for frame in iter_frames(response.aiter_bytes(), provider=self.provider):
            if frame.is_exception:
                raise exception_error(
                    frame.event_type,
                    frame.payload,
                    provider=self.provider,
                    model=self.model,
                    partial=self.partial,
                )
            data = loads_object(frame.payload or b"{}", where="Bedrock stream event", provider=self.provider,
                                model=self.model, partial=self.partial)
            chunk = self._event(frame.event_type, data)
            if chunk is not None:
                yield chunk
        if self._stop is None:
            raise InvalidResponseError(
                "The stream ended before messageStop",
                self.provider,
                model=self.model,
                partial_content=self.partial or None,
            )
        if self._stop in FILTERED:
            raise ContentFilterError(
                f"Bedrock stopped the reply ({self._stop})",
                self.provider,
                model=self.model,
                partial_content=self.partial or None,
            )
        calls = [self._assemble(t) for _, t in sorted(self._tools.items())]
        last = final_chunk(
            clock=self.clock,
            usage=self._usage,
            stop_reason=STOP_REASONS.get(self._stop, self._stop),
            tool_calls=calls,
            model=self.model,
            native_stop=self._stop,
        )
        last.metadata["thinking_blocks"] = self.thinking_blocks()
        yield last

    @property
    def partial(self) -> str:
        """The answer text so far (joined on read; read only when an error needs it)."""
        return self._partial.text

    def thinking_blocks(self) -> list[dict[str, Any]]:
        """The signed (or redacted) reasoning blocks of this reply, as Converse wants them back."""
        blocks: list[dict[str, Any]] = []
        for _, pieces in sorted(self._reasoning.items()):
            part = {key: assembly.text for key, assembly in pieces.items()}
            if part.get("redactedContent"):
                blocks.append({"reasoningContent": {"redactedContent": part["redactedContent"]}})
            elif part.get("signature"):
                text = {"text": part.get("text", ""), "signature": part["signature"]}
                blocks.append({"reasoningContent": {"reasoningText": text}})
        return blocks

    def _event(self, kind: str, data: dict[str, Any]) -> StreamChunk | None:
        if kind == "contentBlockStart":
            use = (data.get("start") or {}).get("toolUse")
            if use:
                index = int(data.get("contentBlockIndex", len(self._tools)))
                tool = {
                    "ordinal": len(self._tools),
                    "id": use.get("toolUseId"),
                    "name": use.get("name") or "",
                    "json": TextAssembly(),
                }
                self._tools[index] = tool
                self.clock.mark()
                return StreamChunk(
                    tool_call_deltas=[ToolCallDelta(index=tool["ordinal"], id=tool["id"], name=tool["name"])]
                )
        elif kind == "contentBlockDelta":
            delta = data.get("delta") or {}
            if delta.get("text"):
                self.clock.mark()
                self._partial.append(delta["text"])
                return StreamChunk(content=delta["text"])
            if "toolUse" in delta:
                target = self._tools.get(int(data.get("contentBlockIndex", -1)))
                piece = (delta["toolUse"] or {}).get("input") or ""
                if target is None:
                    raise InvalidResponseError(
                        "toolUse delta for an unknown block",
                        self.provider,
                        model=self.model,
                        partial_content=self.partial or None,
                    )
                target["json"].append(piece)
                return StreamChunk(
                    tool_call_deltas=[ToolCallDelta(index=target["ordinal"], arguments_delta=piece)]
                )
            if "reasoningContent" in delta:
                index = int(data.get("contentBlockIndex", -1))
                return self._reasoning_delta(index, delta["reasoningContent"])
        elif kind == "messageStop":
            self._stop = data.get("stopReason") or "end_turn"
        elif kind == "metadata":
            self._usage = usage_from(data.get("usage")) or self._usage
        return None

    def _reasoning_delta(self, index: int, delta: Any) -> StreamChunk | None:
        # Pieces of one block share its index: text deltas, then one signature (or a redacted blob).
        part = self._reasoning.setdefault(index, {})
        delta = delta if isinstance(delta, dict) else {}
        for key in ("text", "signature", "redactedContent"):
            if isinstance(delta.get(key), str):
                part.setdefault(key, TextAssembly()).append(delta[key])
        if delta.get("text"):
            self.clock.mark()
            return StreamChunk(reasoning=delta["text"])
        return None

    @staticmethod
    def _assemble(tool: dict[str, Any]) -> ToolCall:
        raw = tool["json"].text.strip()
        try:
            args = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            args = {"_raw": raw}
        return ToolCall(
            id=tool["id"], name=tool["name"], arguments=args if isinstance(args, dict) else {"_value": args}
        )
