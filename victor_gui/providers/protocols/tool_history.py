"""Tool-call history that stays valid whichever protocol receives it.

A conversation may be started on one provider and continued on another. Every protocol insists
that a tool result follows the call it answers (Anthropic: a ``tool_result`` in the very next user
turn; Gemini: as many ``functionResponse`` parts as the model turn had ``functionCall`` parts;
OpenAI: a ``tool`` message per ``tool_call_id``). A history edited by hand, cut by context
trimming, or written by an older client can break that pairing, and the provider then rejects the
whole request with a 400.

:func:`repair_tool_history` fixes the pairing on the neutral :class:`Message` list before any
protocol sees it. It never drops information silently: an unanswered call gets a short synthetic
result that says so, and a result whose call is missing becomes a user text turn that keeps its
output. The number of repairs is returned so callers can report it.
"""

from __future__ import annotations

import hashlib
import logging
import re

from victor_gui.providers.types import Message, ToolCall

log = logging.getLogger(__name__)

UNANSWERED_RESULT = "(no result: this tool call was not answered)"

_ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_NOT_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]+")


def anthropic_tool_id(raw: str) -> str:
    """``raw`` as an id Anthropic accepts (``^[a-zA-Z0-9_-]+$``).

    Deterministic, so a call and its result sanitise to the same value wherever they are
    converted; a short digest of the original keeps two foreign ids that differ only in
    disallowed characters from colliding.
    """
    if raw and _ANTHROPIC_ID.match(raw):
        return raw
    digest = hashlib.sha1(raw.encode("utf-8")).hexdigest()[:10]
    cleaned = _NOT_ID_CHARS.sub("_", raw).strip("_")[:48]
    return f"{cleaned}_{digest}" if cleaned else f"toolu_{digest}"


def repair_tool_history(messages: list[Message]) -> tuple[list[Message], int]:
    """(messages with every tool call paired with exactly one result, number of repairs).

    Rules, in order of the history:

    * A ``tool`` message answers the pending call with its ``tool_call_id``; failing that, the
      first unanswered pending call whose *name* equals its ``tool_call_id`` (older clients
      stored the tool name as the id) or, when it has no id, its ``name``. Its
      ``tool_call_id`` is rewritten to the call's id.
    * A ``tool`` message that answers no pending call becomes a user text turn carrying its
      output, so the model still sees what the tool returned.
    * Calls still unanswered when the next non-tool turn (or the end) arrives get a synthetic
      result, placed right after the results that did arrive.
    """
    out: list[Message] = []
    pending: list[ToolCall] = []
    answered: set[str] = set()
    deferred: list[Message] = []
    repairs = 0

    def close_pending() -> None:
        nonlocal repairs
        for call in pending:
            if call.id not in answered:
                out.append(
                    Message(role="tool", tool_call_id=call.id, name=call.name, content=UNANSWERED_RESULT)
                )
                repairs += 1
        pending.clear()
        answered.clear()
        # Orphans met inside a window of results go after it, so they never split the results.
        out.extend(deferred)
        deferred.clear()

    for message in messages:
        if message.role in ("tool", "function"):
            call = _match(message, pending, answered)
            if call is None:
                label = message.name or message.tool_call_id or "a tool"
                (deferred if pending else out).append(
                    Message(
                        role="user",
                        content=f"[Output of {label}; its call is missing from the history]\n{message.text}",
                    )
                )
                repairs += 1
                continue
            answered.add(call.id)
            out.append(
                message.model_copy(
                    update={"role": "tool", "tool_call_id": call.id, "name": message.name or call.name}
                )
            )
            continue
        close_pending()
        if message.role == "assistant" and message.tool_calls:
            # Duplicate ids inside one turn would make pairing ambiguous everywhere.
            seen: set[str] = set()
            calls: list[ToolCall] = []
            for call in message.tool_calls:
                if call.id in seen:
                    call = call.model_copy(update={"id": f"{call.id}_{len(calls)}"})
                    repairs += 1
                seen.add(call.id)
                calls.append(call)
            message = message.model_copy(update={"tool_calls": calls})
            pending.extend(calls)
        out.append(message)
    close_pending()
    if repairs:
        log.warning("Repaired %d unpaired tool call(s)/result(s) in the history", repairs)
    return out, repairs


def _match(message: Message, pending: list[ToolCall], answered: set[str]) -> ToolCall | None:
    open_calls = [c for c in pending if c.id not in answered]
    for call in open_calls:
        if message.tool_call_id and call.id == message.tool_call_id:
            return call
    # Fall back to the name only when the id is absent or is itself a tool name: a result whose
    # real id matches nothing must not be pinned on an unrelated call of the same tool.
    for call in open_calls:
        if message.tool_call_id == call.name or (not message.tool_call_id and message.name == call.name):
            return call
    return None


def tool_result_text(message: Message) -> str:
    """A tool message's output as text (image parts are not sent back as tool output)."""
    return message.text
