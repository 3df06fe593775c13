"""How stored messages look in the transcript: titles, the stats line, notes.

Pure formatting over :class:`~victor_gui.storage.models.StoredMessage` (no Qt), so the live
stream and a reopened chat show the same words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from victor_gui.storage.models import StoredMessage

# Messages rendered when a chat opens; older ones come a page at a time on request.
PAGE = 60
# Reasoning shown for a stored reply (a plain, collapsed box): a runaway 10 MB one would cost
# seconds to lay out for a box nobody scrolls through.
REASONING_HEAD_CHARS = 100_000


def reasoning_head(reasoning: str) -> str:
    """A stored reply's reasoning as shown: at most REASONING_HEAD_CHARS, saying what is left out."""
    if len(reasoning) <= REASONING_HEAD_CHARS:
        return reasoning
    left = len(reasoning) - REASONING_HEAD_CHARS
    return f"{reasoning[:REASONING_HEAD_CHARS]}\n… ({left / 1_000_000:.1f} MB more reasoning not shown)"


def display_provider(m: StoredMessage) -> str | None:
    """Who answered, as people call it: the target's name the session stored ("Desk box",
    "llama.cpp"), else the catalog's display name of the provider, never an internal id."""
    from victor_gui.providers.catalog import display_name

    label = (m.meta or {}).get("answered_by")
    if isinstance(label, str) and label:
        return label
    return display_name(m.provider) if m.provider else m.provider


def title_of(m: StoredMessage) -> str:
    """``You`` for the user; ``provider · model`` for a reply."""
    if m.role == "user":
        return "You"
    who = " · ".join(x for x in (display_provider(m), m.model) if x)
    return who or m.role.capitalize()


def stats_text(who: str, *, ttft_ms: float | None, tokens_per_second: float | None,
               tokens: int | None, cost: float | None = None, stopped: bool = False) -> str:
    """The one stats line: ``who · TTFT 120 ms · 42.0 tok/s · 256 tokens · $0.0012 · stopped``
    (unknown parts left out; local replies carry no cost). Used live, for stored replies and by
    the compare panes, so a reply reads the same while it streams and after a restart."""
    bits: list[str] = [who] if who else []
    if ttft_ms is not None:
        bits.append(f"TTFT {ttft_ms:.0f} ms")
    if tokens_per_second:
        bits.append(f"{tokens_per_second:.1f} tok/s")
    if tokens is not None:
        bits.append(f"{tokens} tokens")
    if cost:
        bits.append(f"${cost:.4f}")
    if stopped:
        bits.append("stopped")
    return " · ".join(bits)


def stats_line(m: StoredMessage) -> str:
    """The stats line of a stored reply (who answered by the name people use)."""
    who = " · ".join(x for x in (display_provider(m), m.model) if x)
    return stats_text(who, ttft_ms=m.ttft_ms, tokens_per_second=m.tokens_per_second,
                      tokens=m.completion_tokens, cost=m.cost, stopped=m.status == "interrupted")


def live_stats(state: Any, *, who: str | None = None) -> str:
    """Stats of a reply still streaming (a :class:`~victor_gui.services.generation.ReplyState`);
    ``who`` defaults to ``provider · model``."""
    from victor_gui.services.generation import ReplyStatus

    if who is None:
        from victor_gui.providers.catalog import display_name

        who = f"{display_name(state.provider) if state.provider else state.provider} · {state.model}"
    return stats_text(who,
                      ttft_ms=state.ttft_ms, tokens_per_second=state.tokens_per_second,
                      tokens=state.completion_tokens, stopped=state.status is ReplyStatus.INTERRUPTED)


# -- tool calls (issue 12): the words of a folded tool-call block, live and stored alike ---------

# A string argument longer than this is shown cut, saying how much is left out (expandable).
FOLD_CHARS = 200
# A tool result shown in a block: at most this much (a 10 MB result would stall the layout).
RESULT_SHOWN_CHARS = 20_000

_STATE_WORDS = {"waiting": "waiting for approval", "running": "running…", "done": "done",
                "error": "failed", "denied": "denied", "cancelled": "cancelled"}


def fold_long_values(value: Any, limit: int = FOLD_CHARS) -> tuple[Any, int]:
    """``value`` (JSON data) with every string longer than ``limit`` cut and ended with
    ``… (N more characters)``; also how many strings were cut."""
    if isinstance(value, str):
        if len(value) <= limit:
            return value, 0
        return f"{value[:limit]}… ({len(value) - limit} more characters)", 1
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        cut = 0
        for key, item in value.items():
            out[str(key)], n = fold_long_values(item, limit)
            cut += n
        return out, cut
    if isinstance(value, list | tuple):
        pairs = [fold_long_values(item, limit) for item in value]
        return [p[0] for p in pairs], sum(p[1] for p in pairs)
    return value, 0


def pretty_arguments(arguments: Any, *, fold: bool = True) -> str:
    """A tool call's arguments as indented JSON (long strings folded unless ``fold`` is False)."""
    import json

    shown = fold_long_values(arguments)[0] if fold else arguments
    return json.dumps(shown, indent=2, ensure_ascii=False, default=str)


def shown_result(text: str) -> str:
    """A tool result as a block shows it: at most RESULT_SHOWN_CHARS, saying what is left out."""
    if len(text) <= RESULT_SHOWN_CHARS:
        return text
    return f"{text[:RESULT_SHOWN_CHARS]}\n… ({len(text) - RESULT_SHOWN_CHARS} more characters not shown)"


def tool_summary(server: str, tool: str, state: str, duration_s: float | None) -> str:
    """The folded line of a tool call: ``⚙ server · tool — done in 0.4 s``."""
    words = _STATE_WORDS.get(state, state)
    if duration_s is not None and state in ("done", "error"):
        words += f" {'in' if state == 'done' else 'after'} {duration_s:.1f} s"
    return f"⚙ {server} · {tool} — {words}"


def tool_record_of(meta: dict[str, Any] | None, result: str = "") -> Any:
    """The :class:`~victor_gui.services.tool_types.ToolCallRecord` of a stored tool message's
    ``meta["tool"]`` (or a live ``tool_call`` event's meta), None when there is none. Tolerant:
    an unknown state reads as ``error``, missing fields as empty."""
    from victor_gui.services.tool_types import ToolCallRecord, ToolCallState

    if not isinstance(meta, dict):
        return None
    try:
        state = ToolCallState(str(meta.get("state", "done")))
    except ValueError:
        state = ToolCallState.ERROR
    arguments = meta.get("arguments")
    duration = meta.get("duration_s")
    return ToolCallRecord(
        call_id=str(meta.get("call_id") or ""), server=str(meta.get("server") or "?"),
        tool=str(meta.get("tool") or "?"),
        arguments=arguments if isinstance(arguments, dict) else {"arguments": arguments},
        state=state, result=str(meta.get("result") or result or ""),
        duration_s=float(duration) if isinstance(duration, int | float) else None,
        approved_by=meta.get("approved_by") if isinstance(meta.get("approved_by"), str) else None)
