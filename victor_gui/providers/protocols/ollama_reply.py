"""Assembling an Ollama reply, line by line, into :class:`StreamChunk` deltas and a final chunk.

The same assembler serves both modes: a stream feeds it every NDJSON line; ``stream:false``
feeds it the one object. Reasoning is kept apart from the answer (``message.thinking`` and a
leading inline ``<think>`` block); tool calls are emitted in the chunk they arrive in and again,
all of them, on the final chunk; with the text fallback (a model without native tools), a
reply that looks like a tool call is held back until the end and parsed instead of shown.
"""

from __future__ import annotations

import time
from typing import Any

from victor_gui.providers.json_guard import Shape
from victor_gui.providers.protocols.ollama_wire import (
    durations_ms,
    parse_tool_calls,
    partial_suffix,
    timings_from,
    usage_from,
)
from victor_gui.providers.protocols.reply_shapes import check_ollama
from victor_gui.providers.thinking import ThinkTagSplitter
from victor_gui.providers.tool_parsing import parse_tool_calls_from_text
from victor_gui.providers.types import StreamChunk, ToolCall

# Where a tool call written as text can begin (the dialects tool_parsing reads). In text-fallback
# mode the reply streams normally up to the first of these, and is held from there to the end.
_MARKERS = ("<tool_call>", "<function=", "[TOOL_REQUEST]", "```", "{")


_SHAPE = Shape("Ollama /api/chat", "ollama")

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
        # Pre-0.9 Ollama put reasoning inline; only a reply that *starts* with <think> is split,
        # so an answer that talks about the tag is left alone.
        self._think = ThinkTagSplitter(anywhere=False)
        self._holding = False  # text fallback: a call may have begun; keep the rest for the end
        self._held = ""
        self._held_more: list[str] = []  # text after a tool-call marker, joined once at the end

    @property
    def partial(self) -> str:
        return "".join(self._content)

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    def feed(self, obj: dict[str, Any]) -> StreamChunk | None:
        check_ollama(obj, _SHAPE)  # a field of the wrong type is an InvalidResponseError naming it
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
        """With the text fallback, release text only up to where a tool call may begin."""
        if self.text_tools is None or not content:
            return content
        if self._holding:
            self._held_more.append(content)
            return ""
        text = self._held + content  # what was held is at most a cut-off marker
        hits = [i for i in (text.find(m) for m in _MARKERS) if i >= 0]
        if hits:
            self._holding, self._held = True, text[min(hits):]
            return text[: min(hits)]
        keep = max(partial_suffix(text, m) for m in _MARKERS)
        self._held = text[len(text) - keep:]
        return text[: len(text) - keep]

    def _final(self, obj: dict[str, Any], content: str, reasoning: str) -> StreamChunk:
        self.done = True
        rest, more = self._think.flush()
        content += self._gate(rest)
        reasoning += more
        used_text_tools = False
        if self.text_tools is not None:
            held, self._held = self._held + "".join(self._held_more), ""
            self._held_more.clear()
            if self._holding:
                calls, rest = parse_tool_calls_from_text(held, self.text_tools)
                self.tool_calls += calls
                used_text_tools = bool(calls)
                content += rest.strip() if calls else rest
            else:  # only a cut-off marker was held: it is plain text
                content += held
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
