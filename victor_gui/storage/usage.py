"""Token and cost totals over stored replies (the SQL behind ``/usage``), run on the read thread.

Counted: assistant replies that name a provider (transcript notes and user turns never do),
whatever their status, since an interrupted or failed reply may still have used tokens. Days
are the user's local calendar days.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

GROUPS: dict[str, str] = {
    "chat": "m.conversation_id",
    "provider": "m.provider",
    "model": "m.provider || '/' || coalesce(m.model, '?')",
    "day": "date(m.created, 'unixepoch', 'localtime')",
    "all": "'all'",
}


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Totals of one group: a chat (``key`` = its id, ``label`` = its title), a provider, a
    ``provider/model``, a day (``YYYY-MM-DD``) or ``all``."""

    key: str
    label: str
    replies: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost: float | None  # sum of the known costs; None when no reply of the group has one
    uncosted: int  # replies with tokens but no cost (no price known, or cost tracking off)


def usage_sync(
    conn: sqlite3.Connection, group_by: str, conversation_id: int | None, since: float | None
) -> list[UsageRow]:
    """Totals grouped by ``group_by`` (a key of :data:`GROUPS`), largest cost first, then key."""
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
    where = ["m.role = 'assistant'", "m.provider IS NOT NULL"]
    args: list[Any] = []
    if conversation_id is not None:
        where.append("m.conversation_id = ?")
        args.append(conversation_id)
    if since is not None:
        where.append("m.created >= ?")
        args.append(since)
    key = GROUPS[group_by]
    sql = f"""
        SELECT {key} AS k, min(coalesce(c.title, '')), count(*),
               coalesce(sum(m.prompt_tokens), 0), coalesce(sum(m.completion_tokens), 0),
               coalesce(sum(m.cached_tokens), 0), sum(m.cost),
               sum(CASE WHEN m.cost IS NULL AND (coalesce(m.prompt_tokens, 0)
                        + coalesce(m.completion_tokens, 0)) > 0 THEN 1 ELSE 0 END)
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE {' AND '.join(where)}
        GROUP BY k ORDER BY coalesce(sum(m.cost), 0) DESC, k
    """
    out = []
    for k, title, replies, prompt, completion, cached, cost, uncosted in conn.execute(sql, args):
        label = (title or f"Chat {k}") if group_by == "chat" else str(k)
        out.append(UsageRow(str(k), label, replies, prompt, completion, cached, cost, uncosted))
    return out
