"""How conversations and messages become SQLite rows: column encoding and the insert.

Blocking functions for the store's threads (:class:`~victor_gui.storage.store.ConversationStore`
runs them inside its transactions): JSON columns, the plain text that search indexes, usage
columns SQLite can hold, an exported message made storable, and the append of a message under
the chosen branch's last one (see :mod:`.tree`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from victor_gui.providers.types import ContentPart, ImagePart, TextPart, Timings, ToolCall, Usage
from victor_gui.storage import tree
from victor_gui.storage.models import STATUSES, Conversation

CONVERSATION_COLUMNS = "id, title, created, updated, system_prompt, params"


def dumps(value: Any) -> str | None:
    """Compact JSON for a column; None stays NULL."""
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def content_columns(content: str | Sequence[ContentPart | dict[str, Any]]) -> tuple[str, str | None]:
    """(plain text, parts JSON or None): the text is what search indexes and a list shows."""
    if isinstance(content, str):
        return content, None
    parts = [p.model_dump() if isinstance(p, TextPart | ImagePart) else dict(p) for p in content]
    text = "".join(p.get("text", "") for p in parts if p.get("type") == "text")
    return text, dumps(parts)


def tool_calls_json(calls: Sequence[ToolCall | dict[str, Any]] | None) -> str | None:
    """The ``tool_calls`` column: JSON of the calls, NULL when there are none."""
    if not calls:
        return None
    return dumps([c.model_dump() if isinstance(c, ToolCall) else dict(c) for c in calls])


def conversation_from_row(row: tuple[Any, ...], count: int = 0) -> Conversation:
    """A :class:`Conversation` from a row of :data:`CONVERSATION_COLUMNS`."""
    return Conversation(row[0], row[1], row[2], row[3], row[4], json.loads(row[5] or "{}"), count)


def imported_message(fields: dict[str, Any]) -> dict[str, Any]:
    """An exported message's fields as columns; ``streaming`` (or unknown) becomes ``interrupted``."""
    values = dict(fields)
    values["content"] = values.get("content") or ""
    values["reasoning"] = values.get("reasoning") or ""
    values["content_parts"] = dumps(values.get("content_parts"))
    values["tool_calls"] = dumps(values.get("tool_calls"))
    values["meta"] = dumps(values.get("meta"))
    if values.get("status") not in STATUSES or values.get("status") == "streaming":
        values["status"] = "interrupted"
    values["created"] = values.get("created") or time.time()
    values["updated"] = values.get("updated") or values["created"]
    return values


def usage_columns(usage: Usage | None, timings: Timings | None) -> dict[str, Any]:
    """The token-count and speed columns of a reply."""
    # Usage clamps its counts already; a count built some other way that SQLite cannot hold
    # (it raised OverflowError past 2**63 and the reply was never finished) is stored as unknown.
    return {
        "prompt_tokens": _count(usage.prompt_tokens) if usage else None,
        "completion_tokens": _count(usage.completion_tokens) if usage else None,
        "cached_tokens": _count(usage.cached_tokens) if usage else None,
        "ttft_ms": timings.ttft_ms if timings else None,
        "tokens_per_second": timings.tokens_per_second if timings else None,
    }


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and 0 <= value < 2**63 else None


def insert_message(conn: sqlite3.Connection, conversation_id: int, values: dict[str, Any]) -> int:
    """Insert a message after the chosen branch's last one and touch its conversation; its id."""
    row = conn.execute(
        "SELECT coalesce(max(position), -1) + 1 FROM messages WHERE conversation_id=?", (conversation_id,)
    ).fetchone()
    # A new message follows the chosen branch's last one (see .tree).
    values = {"conversation_id": conversation_id, "position": row[0],
              "parent_id": tree.leaf(conn, conversation_id), **values}
    cur = conn.execute(
        f"INSERT INTO messages({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
        tuple(values.values()),
    )
    conn.execute("UPDATE conversations SET updated=? WHERE id=?", (values["updated"], conversation_id))
    return int(cur.lastrowid or 0)
