"""Make a stored conversation safe to send to any protocol (after a switch, or to a fallback).

The neutral :class:`~victor_gui.providers.types.Message` list is already protocol-neutral; what
breaks a switch is history that one protocol tolerated and another refuses. This module repairs
it once, before the provider serialises it, so every protocol receives the same, valid shape:

* **Every tool call has an id, unique in the conversation.** Calls made through a protocol
  without ids (old Ollama, text-parsed calls) got synthetic ids; a duplicate id (two turns that
  both used ``fallback_0``) is renamed, and its result follows it.
* **Every tool result pairs with a call.** A result is matched by ``tool_call_id``; failing that,
  by tool name when exactly one pending call has that name (Victor stored the *name* in
  ``tool_call_id`` for id-less calls). The result gets the tool ``name`` (Ollama's
  ``tool_name``) from its call.
* **An orphan result** (its call is not in the history, e.g. trimmed away or never stored)
  becomes a *user* note ``[Result of tool <name>, whose call is not in this conversation]: …``:
  strict OpenAI-compatible servers reject a ``tool`` message without its call, and dropping it
  would lose what the tool said.
* **A call without a result** gets a synthetic result ``(no result: the tool was not run)``
  straight after its turn, because OpenAI-style servers reject an unanswered call.
* **Reasoning is never replayed**: ``reasoning`` is cleared (it is shown from the store, not sent).
* **Empty assistant turns** (an interrupted reply with no text and no calls) are left out.
* **Images for a model without vision** become a text placeholder ``[image omitted: …]``, so one
  picture early in a chat does not make every request to the new model fail.

The counts of each repair are returned so the caller can record them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from victor_gui.providers.types import ImagePart, Message, TextPart, ToolCall, new_tool_call_id

NO_RESULT = "(no result: the tool was not run)"
IMAGE_OMITTED = "[image omitted: the current model does not take images]"


@dataclass
class PreparedHistory:
    """The repaired conversation and what was changed to get it."""

    messages: list[Message]
    repairs: dict[str, int] = field(default_factory=dict)

    @property
    def repaired(self) -> bool:
        return any(self.repairs.values())


def prepare_history(messages: list[Message], *, vision: bool = True) -> PreparedHistory:
    """Repair ``messages`` (see the module docstring); the input is not modified."""
    repairs = {"orphan_tool_results": 0, "unanswered_tool_calls": 0, "renamed_tool_call_ids": 0,
               "paired_by_name": 0, "images_omitted": 0, "empty_turns_dropped": 0}
    out: list[Message] = []
    seen_ids: set[str] = set()
    pending: dict[str, str] = {}  # call id -> tool name, awaiting a result (in call order)
    renamed: dict[str, str] = {}  # old id -> new id for the current turn's duplicate ids

    def close_pending() -> None:
        for call_id, name in pending.items():
            out.append(Message(role="tool", tool_call_id=call_id, name=name, content=NO_RESULT))
            repairs["unanswered_tool_calls"] += 1
        pending.clear()
        renamed.clear()

    for original in messages:
        msg = original.model_copy(update={"reasoning": None})
        role = "tool" if msg.role == "function" else msg.role
        if role == "tool":
            call_id = renamed.get(msg.tool_call_id or "", msg.tool_call_id)
            if not call_id or call_id not in pending:
                by_name = [cid for cid, name in pending.items() if name in (msg.tool_call_id, msg.name)]
                if len(by_name) == 1:
                    call_id = by_name[0]
                    repairs["paired_by_name"] += 1
            if call_id and call_id in pending:
                name = pending.pop(call_id)
                out.append(msg.model_copy(update={"role": "tool", "tool_call_id": call_id, "name": name,
                                                  "content": _tool_text(msg)}))
            else:
                close_pending()
                label = msg.name or msg.tool_call_id or "unknown"
                out.append(Message(role="user", content=(
                    f"[Result of tool {label}, whose call is not in this conversation]: {_tool_text(msg)}")))
                repairs["orphan_tool_results"] += 1
            continue
        close_pending()
        if role == "assistant" and not msg.text and not msg.tool_calls and not msg.images:
            repairs["empty_turns_dropped"] += 1
            continue
        if msg.tool_calls:
            calls = []
            for call in msg.tool_calls:
                call_id = call.id
                if call_id in seen_ids or call_id in pending:
                    call_id = new_tool_call_id()
                    renamed[call.id] = call_id
                    repairs["renamed_tool_call_ids"] += 1
                seen_ids.add(call_id)
                pending[call_id] = call.name
                calls.append(ToolCall(id=call_id, name=call.name, arguments=dict(call.arguments)))
            msg = msg.model_copy(update={"tool_calls": calls})
        if not vision and msg.images:
            parts = [p if isinstance(p, TextPart) else TextPart(text=IMAGE_OMITTED) for p in msg.parts()]
            repairs["images_omitted"] += sum(isinstance(p, ImagePart) for p in msg.parts())
            msg = msg.model_copy(update={"content": "\n".join(p.text for p in parts)})
        out.append(msg.model_copy(update={"role": role}))
    close_pending()
    return PreparedHistory(out, repairs)


def _tool_text(msg: Message) -> str:
    return msg.text or "(no output)"
