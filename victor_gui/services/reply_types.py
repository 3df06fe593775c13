"""The records a chat session hands out (events, results) and keeps per reply attempt."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from victor_gui.core.text import TextAssembly
from victor_gui.errors import ProviderError
from victor_gui.providers.types import Message, Timings, ToolCall, Usage
from victor_gui.services.context_trim import TrimResult
from victor_gui.services.context_window import ContextWindow
from victor_gui.storage.models import StoredMessage


@dataclass(frozen=True)
class ReplyEvent:
    """What the UI hears: ``delta`` events, ``note`` (a note was stored: ``meta`` has it),
    ``fallback`` (``text`` says who failed and who answers now), ``tool_call`` (a call changed
    state: ``text`` is the tool, ``meta`` its :meth:`ToolCallRecord.to_meta` plus ``result``),
    then one ``finished`` per model turn (a reply with tool rounds has several)."""

    kind: str  # "delta" | "note" | "fallback" | "tool_call" | "finished"
    message_id: int
    text: str = ""
    reasoning: str = ""
    status: str | None = None
    error: str | None = None
    meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class ReplyResult:
    """How a reply ended, and who gave it, with the ids a view needs without asking the store
    again: the reply's row (``message_id``, whose stats are stored on it) and the user message
    it answers (``user_message_id``: the one just sent, edited, or answered again)."""

    message_id: int
    status: str  # complete | interrupted | error
    error: ProviderError | None = None
    provider: str | None = None
    model: str | None = None
    fell_back: bool = False
    user_message_id: int | None = None
    # The reply's stored row once finished (its stats line), filled by the chat controller.
    stored: StoredMessage | None = None


@dataclass(frozen=True)
class SwitchResult:
    """What :meth:`ChatSession.switch` did: its note, the new window, and any trimming."""

    note_id: int
    context_window: ContextWindow
    dropped_turns: int
    trim_note_id: int | None = None


@dataclass
class RequestPlan:
    """What one request sends: the repaired, trimmed messages, and how they were made."""

    messages: list[Message]
    trim: TrimResult
    window: ContextWindow
    repairs: dict[str, int] = field(default_factory=dict)


@dataclass
class Progress:
    """What one reply attempt received so far."""

    started: float = field(default_factory=time.perf_counter)
    first: float | None = None
    usage: Usage | None = None
    timings: Timings | None = None
    tool_calls: list[ToolCall] | None = None
    model: str | None = None
    shown: bool = False
    # Signed thinking blocks (Anthropic, Bedrock) that must be replayed with the tool calls.
    thinking_blocks: list[dict[str, Any]] | None = None
    # The generation's own count and end, so the stored speed is the one shown while streaming.
    tokens: int = 0
    finished: float | None = None
    # The answer text received, in pieces (``str +=`` on an attribute copied it all every delta).
    _text: TextAssembly = field(default_factory=TextAssembly, repr=False)

    @property
    def text(self) -> str:
        """The answer text received so far (joined on read)."""
        return self._text.text

    def add_text(self, piece: str) -> None:
        self._text.append(piece)


def generation_speed(tokens: int, first: float | None, end: float | None) -> float | None:
    """Tokens per second after the first token: the one formula for the live figure and the
    stored one. The first token's arrival starts the clock, so it is not counted in the rate."""
    if first is None or end is None or tokens < 2 or end - first <= 0:
        return None
    return (tokens - 1) / (end - first)



def reply_timings(
    started: float, first: float | None, ended: float, usage: Usage | None, server: Timings | None,
    *, tokens: int | None = None,
) -> Timings | None:
    """Client-measured TTFT and generation speed, preferring the server's own figures.

    ``tokens``: the tokens the client counted (the server's usage count wins when it sent one);
    ``ended``: when the last token arrived. The speed is :func:`generation_speed`, as live."""
    ttft = (
        server.ttft_ms
        if server and server.ttft_ms is not None
        else ((first - started) * 1000 if first is not None else None)
    )
    tps = server.tokens_per_second if server and server.tokens_per_second else None
    if tps is None:
        count = usage.completion_tokens if usage and usage.completion_tokens else (tokens or 0)
        tps = generation_speed(count, first, ended)
    if ttft is None and tps is None:
        return None
    return Timings(ttft_ms=ttft, tokens_per_second=tps, source="server" if server else "client")
