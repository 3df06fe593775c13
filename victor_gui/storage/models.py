"""Plain records the conversation store hands out (dataclasses: cheap to build by the thousand)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from victor_gui.core.attachment_ref import AttachmentRef
from victor_gui.providers.types import Message, ToolCall

# Role of transcript notes. Not a provider role on purpose: Message() refuses it, so a note can
# never reach a model by accident (ChatSession.history leaves notes out).
NOTE_ROLE = "note"

MessageStatus = Literal["complete", "streaming", "interrupted", "error"]
STATUSES: tuple[str, ...] = ("complete", "streaming", "interrupted", "error")


@dataclass(slots=True)
class Conversation:
    """A chat: its title, system prompt and per-chat parameters (temperature, max_tokens, ...)."""

    id: int
    title: str
    created: float
    updated: float
    system_prompt: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    message_count: int = 0


@dataclass(slots=True)
class StoredMessage:
    """One message as stored, with where it came from and how fast it arrived."""

    id: int
    conversation_id: int
    position: int
    role: str
    content: str
    content_parts: list[dict[str, Any]] | None
    reasoning: str
    tool_calls: list[dict[str, Any]] | None
    tool_call_id: str | None
    provider: str | None
    model: str | None
    endpoint: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    ttft_ms: float | None
    tokens_per_second: float | None
    cost: float | None
    created: float
    updated: float
    status: str
    error: str | None
    # JSON details: a note's ``kind`` (see victor_gui.services.notes), fallback attempts, trimming.
    meta: dict[str, Any] | None = None
    # The message this one follows in the conversation's tree (None: a first message); see
    # victor_gui.storage.tree for versions and branches. (Right after meta: message_from_row
    # fills the fields by position.)
    parent_id: int | None = None
    # The files attached to this message, in order (their bytes: ConversationStore.read_attachment).
    attachments: tuple[AttachmentRef, ...] = ()

    @property
    def is_note(self) -> bool:
        """A transcript note (model switch, trimming): shown to the user, never sent to a model."""
        return self.role == NOTE_ROLE

    def to_message(self) -> Message:
        """This message as a provider :class:`Message` for the next request."""
        content: Any = self.content_parts if self.content_parts else self.content
        calls = [ToolCall(**c) for c in self.tool_calls] if self.tool_calls else None
        return Message(
            role=self.role,
            content=content,
            tool_calls=calls,
            tool_call_id=self.tool_call_id,
            reasoning=self.reasoning or None,
        )


MESSAGE_COLUMNS = (
    "id, conversation_id, position, role, content, content_parts, reasoning, tool_calls, tool_call_id, "
    "provider, model, endpoint, prompt_tokens, completion_tokens, cached_tokens, ttft_ms, "
    "tokens_per_second, cost, created, updated, status, error, meta, parent_id"
)


def _loads(value: str | None) -> Any:
    return json.loads(value) if value else None


def message_from_row(row: sqlite3.Row | tuple[Any, ...]) -> StoredMessage:
    """Build a :class:`StoredMessage` from a row selected with :data:`MESSAGE_COLUMNS`."""
    r = tuple(row)
    return StoredMessage(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        _loads(r[5]),
        r[6],
        _loads(r[7]),
        r[8],
        r[9],
        r[10],
        r[11],
        r[12],
        r[13],
        r[14],
        r[15],
        r[16],
        r[17],
        r[18],
        r[19],
        r[20],
        r[21],
        _loads(r[22]),
        r[23] if len(r) > 23 else None,
    )


@dataclass(slots=True)
class SearchHit:
    """One full-text match: where it is, and a snippet with each match between
    ``search.MATCH_OPEN`` and ``search.MATCH_CLOSE``."""

    message_id: int
    conversation_id: int
    conversation_title: str
    position: int
    role: str
    snippet: str
    created: float


@dataclass(slots=True)
class StoreNotice:
    """Something the UI should tell the user about opening the store.

    ``kind``: ``damaged`` (the file was moved aside to ``moved_to`` and a new one started),
    ``damaged_earlier`` (that happened at an earlier start), ``in_use``, ``disk_full``,
    ``read_only`` or ``io`` (the file was kept as it is; ``read_only`` is then True: the history
    is shown but nothing new can be saved until the cause is fixed and the app restarted).
    """

    message: str
    moved_to: Path | None = None
    kind: str = "damaged"
    read_only: bool = False
