"""Tool-call history that stays valid whichever protocol receives it: the one implementation of
conversation repair, used by every protocol converter and by the chat session service.

A conversation may be started on one provider and continued on another. Every protocol insists
that a tool result follows the call it answers (Anthropic: a ``tool_result`` in the very next user
turn; Gemini: as many ``functionResponse`` parts as the model turn had ``functionCall`` parts;
OpenAI: a ``tool`` message per ``tool_call_id``). A history edited by hand, cut by context
trimming, written by an older client or carried over from a protocol without call ids can break
that pairing, and the provider then rejects the whole request with a 400.

:func:`repair_history` fixes the pairing on the neutral :class:`Message` list before any protocol
sees it, never dropping information silently:

* **Every tool call has an id unique in the conversation.** A repeated id (two turns that both
  used ``fallback_0``, or twice in one turn) is renamed deterministically (``<id>_2``), so the
  same history always becomes the same request (prompt caches keep working); a result that names
  the old id answers the renamed call once the original is answered or closed.
* **Every result pairs with one call**: by ``tool_call_id``; failing that, by tool *name* when
  exactly one pending call has it, the name being the result's ``tool_call_id`` (Victor stored
  the name there for id-less calls) or, when it has no id, its ``name``. A result whose real id
  matches nothing is never pinned on another call of the same tool. The result takes the call's
  id and name (Ollama's ``tool_name``, Gemini's ``functionResponse.name``).
* **An orphan result** (its call is not in the history) becomes a *user* note
  ``[Result of tool <name>, whose call is not in this conversation]: <output>``; met while calls
  are still being answered, it goes after their results so it never splits them.
* **An unanswered call** gets a synthetic result :data:`NO_RESULT`, after the results that did
  arrive and before the next turn.
* **An empty result** is sent as :data:`NO_OUTPUT` (DeepSeek and others reject empty tool content).

For replaying a stored conversation (``replay=True``, the session service) it also clears
``reasoning`` (shown from the store, never sent back), leaves out empty assistant turns (an
interrupted reply), and with ``vision=False`` turns images into the text :data:`IMAGE_OMITTED`.
Counts of each repair are returned so callers can report them.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field

from victor_gui.providers.types import ImagePart, Message, TextPart, ToolCall

log = logging.getLogger(__name__)

NO_RESULT = "(no result: the tool was not run)"
NO_OUTPUT = "(no output)"
IMAGE_OMITTED = "[image omitted: the current model does not take images]"


def tool_images_left_out(count: int) -> str:
    """The note a tool result's text gets when its ``count`` images are not sent to the model."""
    return f"[{count} image(s) left out: this model does not take images]"


def tool_images_intro(name: str) -> str:
    """The text before a tool's images where they travel apart from the result (OpenAI)."""
    return f"Images returned by the tool {name}:"
REPAIR_KINDS = (
    "orphan_tool_results",
    "unanswered_tool_calls",
    "renamed_tool_call_ids",
    "paired_by_name",
    "images_omitted",
    "empty_turns_dropped",
)

_ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_NOT_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]+")


def anthropic_tool_id(raw: str) -> str:
    """``raw`` as an id Anthropic accepts (``^[a-zA-Z0-9_-]+$``).

    Deterministic, so a call and its result sanitise to the same value wherever they are
    converted; a short digest of the original keeps two foreign ids that differ only in
    disallowed characters from colliding.
    """
    if raw and _ANTHROPIC_ID.fullmatch(raw):  # fullmatch: "$" would let a trailing newline in
        return raw
    digest = hashlib.sha1(raw.encode("utf-8")).hexdigest()[:10]
    cleaned = _NOT_ID_CHARS.sub("_", raw).strip("_")[:48]
    return f"{cleaned}_{digest}" if cleaned else f"toolu_{digest}"


@dataclass
class RepairedHistory:
    """The repaired conversation and how many of each repair (:data:`REPAIR_KINDS`) it took."""

    messages: list[Message]
    repairs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REPAIR_KINDS, 0))

    @property
    def changes(self) -> dict[str, int]:
        """Only the repairs that happened (for response metadata)."""
        return {k: v for k, v in self.repairs.items() if v}

    @property
    def count(self) -> int:
        """Repairs that changed what the model sees (a result paired by name is not one)."""
        return sum(v for k, v in self.repairs.items() if k != "paired_by_name")

    @property
    def repaired(self) -> bool:
        return any(self.repairs.values())


def repair_history(messages: list[Message], *, vision: bool = True, replay: bool = False) -> RepairedHistory:
    """Repair ``messages`` as the module docstring describes; the input is not modified."""
    return _Repairer(vision=vision, replay=replay).run(messages)


class _Repairer:
    def __init__(self, *, vision: bool, replay: bool) -> None:
        self.vision = vision
        self.replay = replay
        self.result = RepairedHistory([])
        self.out = self.result.messages
        self.counts = self.result.repairs
        self.seen: set[str] = set()  # every call id used so far
        self.pending: dict[str, ToolCall] = {}  # calls of the current turn awaiting a result
        self.renamed: dict[str, list[str]] = {}  # original id -> renamed ids of the current turn
        self.deferred: list[Message] = []  # orphan notes met while results were arriving

    def run(self, messages: list[Message]) -> RepairedHistory:
        for message in messages:
            if message.role in ("tool", "function"):
                self.result_message(message)
                continue
            self.close_turn()
            self.other_message(message)
        self.close_turn()
        if self.result.count:
            log.warning("Repaired the conversation history: %s", self.result.changes)
        return self.result

    def result_message(self, message: Message) -> None:
        call = self.match(message)
        output = message.text or NO_OUTPUT
        if call is None:
            label = message.name or message.tool_call_id or "unknown"
            text = f"[Result of tool {label}, whose call is not in this conversation]: {output}"
            note = Message(role="user", content=text)
            (self.deferred if self.pending else self.out).append(note)
            self.counts["orphan_tool_results"] += 1
            return
        del self.pending[call.id]
        update: dict[str, object] = {"role": "tool", "tool_call_id": call.id, "name": call.name}
        images = message.images
        if images and not self.vision:
            update["content"] = f"{message.text or NO_OUTPUT}\n{tool_images_left_out(len(images))}"
            self.counts["images_omitted"] += len(images)
        elif images and not message.text:
            update["content"] = [TextPart(text=NO_OUTPUT), *images]
        elif not message.text:
            update["content"] = NO_OUTPUT
        if self.replay:
            update["reasoning"] = None
        self.out.append(message.model_copy(update=update))

    def match(self, message: Message) -> ToolCall | None:
        wanted = message.tool_call_id
        if wanted:
            if wanted in self.pending:
                return self.pending[wanted]
            for renamed in self.renamed.get(wanted, []):
                if renamed in self.pending:
                    return self.pending[renamed]
        # By name only when the id is absent or is itself a tool name, and only when unambiguous.
        name = wanted or message.name
        by_name = [c for c in self.pending.values() if c.name == name]
        if not name or len(by_name) != 1:
            return None
        self.counts["paired_by_name"] += 1
        return by_name[0]

    def close_turn(self) -> None:
        for call in self.pending.values():
            self.out.append(Message(role="tool", tool_call_id=call.id, name=call.name, content=NO_RESULT))
            self.counts["unanswered_tool_calls"] += 1
        self.pending.clear()
        self.renamed.clear()
        self.out.extend(self.deferred)
        self.deferred.clear()

    def other_message(self, message: Message) -> None:
        update: dict[str, object] = {}
        if self.replay:
            if (
                message.role == "assistant"
                and not message.text
                and not message.tool_calls
                and not message.images
            ):
                self.counts["empty_turns_dropped"] += 1
                return
            update["reasoning"] = None
        if message.role == "assistant" and message.tool_calls:
            update["tool_calls"] = [self.unique(call) for call in message.tool_calls]
        if not self.vision and message.images:
            parts = [p if isinstance(p, TextPart) else TextPart(text=IMAGE_OMITTED) for p in message.parts()]
            self.counts["images_omitted"] += sum(isinstance(p, ImagePart) for p in message.parts())
            update["content"] = "\n".join(p.text for p in parts)
        self.out.append(message.model_copy(update=update) if update else message)

    def unique(self, call: ToolCall) -> ToolCall:
        new_id = call.id
        n = 2
        while new_id in self.seen:
            new_id = f"{call.id}_{n}"
            n += 1
        if new_id != call.id:
            self.renamed.setdefault(call.id, []).append(new_id)
            self.counts["renamed_tool_call_ids"] += 1
            call = call.model_copy(update={"id": new_id})
        self.seen.add(new_id)
        self.pending[new_id] = call
        return call


def tool_result_text(message: Message) -> str:
    """A tool message's output as text (its image parts travel as each protocol allows)."""
    return message.text
