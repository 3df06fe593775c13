"""Assembling an Ollama reply, line by line, into :class:`StreamChunk` deltas and a final chunk.

The same assembler serves both modes: a stream feeds it every NDJSON line; ``stream:false``
feeds it the one object. Reasoning is kept apart from the answer (``message.thinking`` and a
leading inline ``<think>`` block); tool calls are emitted in the chunk they arrive in and again,
all of them, on the final chunk; with the text fallback (a model without native tools), a
reply that looks like a tool call is held back until the end and parsed instead of shown.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from victor_gui.providers.protocols.ollama_wire import (
    InlineThink,
    durations_ms,
    parse_tool_calls,
    timings_from,
    usage_from,
)
from victor_gui.providers.types import StreamChunk, ToolCall

try:  # the shared text parser, once it is on main; a narrow stand-in until then
    from victor_gui.providers.tool_parsing import parse_tool_calls_from_text
except ImportError:  # pragma: no cover - exercised only before tool_parsing lands

    def parse_tool_calls_from_text(
        text: str, tool_names: set[str] | None = None
    ) -> tuple[list[ToolCall], str]:
        """A reply that is nothing but ``{"name": ..., "arguments": {...}}`` (fences allowed)."""
        body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, ValueError):
            return [], text
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return [], text
        arguments = data.get("arguments", data.get("parameters", {}))
        if not isinstance(arguments, dict) or (tool_names and data["name"] not in tool_names):
            return [], text
        return [ToolCall(name=data["name"], arguments=arguments)], ""


# First characters of a reply that may be a tool call written as text (JSON, XML tags, fences).
_TOOLISH = "{[<`"


class ReplyAssembler:
    """Turns Ollama reply objects into chunks; ``partial`` is the answer text released so far."""

    def __init__(self, *, started: float | None = None, text_tools: set[str] | None = None) -> None:
        self.started = time.monotonic() if started is None else started
        self.text_tools = text_tools  # tool names when using the text fallback, else None
        self.first_at: float | None = None
        self.lines = 0
        self.done = False
        self.model: str | None = None
        self.tool_calls: list[ToolCall] = []
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._think = InlineThink()
        self._hold: bool | None = None  # text fallback: None undecided, True holding, False passing
        self._held = ""

    @property
    def partial(self) -> str:
        return "".join(self._content)

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    def feed(self, obj: dict[str, Any]) -> StreamChunk | None:
        """The chunk for one reply object, or None when it carries nothing to show yet."""
        self.lines += 1
        self.model = obj.get("model") or self.model
        message: dict[str, Any] = obj["message"] if isinstance(obj.get("message"), dict) else {}
        content, inline = self._think.feed(str(message.get("content") or ""))
        reasoning = str(message.get("thinking") or "") + inline
        content = self._gate(content)
        calls = parse_tool_calls(message.get("tool_calls"))
        self.tool_calls += calls
        if obj.get("done"):
            return self._final(obj, content, reasoning)
        if not (content or reasoning or calls):
            return None
        self._release(content, reasoning)
        return StreamChunk(content=content, reasoning=reasoning, tool_calls=calls or None, model=self.model)

    def _release(self, content: str, reasoning: str) -> None:
        if (content or reasoning or self.tool_calls) and self.first_at is None:
            self.first_at = time.monotonic()
        self._content.append(content)
        self._reasoning.append(reasoning)

    def _gate(self, content: str) -> str:
        """With the text fallback, hold a reply back while it may be a tool call."""
        if self.text_tools is None or self._hold is False or not content:
            return content
        if self._hold is None:
            head = (self._held + content).lstrip()
            if not head:
                self._held += content
                return ""
            self._hold = head[0] in _TOOLISH
            if not self._hold:
                content, self._held = self._held + content, ""
                return content
        self._held += content
        return ""

    def _final(self, obj: dict[str, Any], content: str, reasoning: str) -> StreamChunk:
        self.done = True
        rest, more = self._think.flush()
        content += self._gate(rest)
        reasoning += more
        used_text_tools = False
        if self.text_tools is not None:
            if self._hold:
                calls, content = parse_tool_calls_from_text(self._held + content, self.text_tools)
            else:  # already shown; calls written after prose still count
                calls, _ = parse_tool_calls_from_text(self.partial + content, self.text_tools)
            self._held = ""
            self.tool_calls += calls
            used_text_tools = bool(calls)
        self._release(content, reasoning)
        done_reason = obj.get("done_reason")
        stop = done_reason
        if self.tool_calls and done_reason in (None, "stop"):
            stop = "tool_calls"  # Ollama says "stop"; the rest of the app expects the OpenAI name
        ttft = (self.first_at - self.started) * 1000 if self.first_at is not None else None
        metadata: dict[str, Any] = {"done_reason": done_reason, **durations_ms(obj)}
        if used_text_tools:
            metadata["tool_text_fallback"] = True
        return StreamChunk(content=content, reasoning=reasoning, is_final=True,
                           tool_calls=list(self.tool_calls) or None, stop_reason=stop,
                           usage=usage_from(obj), timings=timings_from(obj, ttft), model=self.model,
                           metadata=metadata)
