"""A streaming reply's text as appended chunks (table ``message_chunks``, schema v5).

Decision: each flush of a streaming reply INSERTs one chunk row (its text and reasoning since
the last flush) and never touches the message row. Rewriting the row with
``content = content || ?`` copied the whole growing text into the WAL on every flush, so disk
writes grew with the square of the reply (2 MB reply: 4 GiB written, 17 s). With chunks a
flush writes about what it adds: linear in the reply.

The chunks are folded into the message row once: when the reply ends
(:func:`fold` inside :meth:`~victor_gui.storage.store.ConversationStore.finish_message`, in the
same UPDATE that sets its final status, so the FTS triggers index the final text once), or, after
a crash, when the store is next opened (:func:`recover_streaming`). Until then every reader
joins them (:func:`with_chunks`), so a live or interrupted reply reads whole.

All functions run on a store thread with a connection (no event loop here).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from victor_gui.storage.models import StoredMessage

# Statuses whose row may still have chunks: a live reply, or one cut off by a crash before
# the next open folded it.
_UNFOLDED = ("streaming", "interrupted")


def append_chunk(conn: sqlite3.Connection, message_id: int, text: str, reasoning: str) -> None:
    """Store one flush of a streaming reply as the next chunk (cost: the chunk, not the reply)."""
    if not (text or reasoning):
        return
    # Nothing is stored for a message deleted meanwhile (as the old in-row UPDATE did nothing):
    # the foreign key would fail the flush, and the text has no row to belong to.
    conn.execute(
        "INSERT INTO message_chunks(message_id, seq, text, reasoning) SELECT ?,"
        " (SELECT coalesce(max(seq), -1) + 1 FROM message_chunks WHERE message_id=?), ?, ?"
        " WHERE EXISTS (SELECT 1 FROM messages WHERE id=?)",
        (message_id, message_id, text, reasoning, message_id),
    )


def joined(conn: sqlite3.Connection, message_id: int) -> tuple[str, str]:
    """(text, reasoning) of all of a message's chunks, in order ('' when it has none)."""
    rows = conn.execute(
        "SELECT text, reasoning FROM message_chunks WHERE message_id=? ORDER BY seq", (message_id,)
    ).fetchall()
    return "".join(r[0] for r in rows), "".join(r[1] for r in rows)


def fold(
    conn: sqlite3.Connection,
    message_id: int,
    text: str = "",
    reasoning: str = "",
    sets: dict[str, Any] | None = None,
) -> None:
    """Move a message's chunks (then ``text``/``reasoning``) into its row, in one UPDATE together
    with ``sets`` (column: value, None keeps the value), and drop the chunks.

    One UPDATE on purpose: when ``sets`` ends streaming, the FTS update trigger sees the final
    text and the new status at once and indexes the message exactly once.
    """
    head, head_reasoning = joined(conn, message_id)
    extra = dict(sets or {})
    columns = ", ".join(f"{k}=coalesce(?, {k})" for k in extra)
    conn.execute(
        f"UPDATE messages SET content=content||?, reasoning=reasoning||?,"
        f" {columns + ', ' if columns else ''}updated=? WHERE id=?",
        (head + text, head_reasoning + reasoning, *extra.values(), time.time(), message_id),
    )
    conn.execute("DELETE FROM message_chunks WHERE message_id=?", (message_id,))


def recover_streaming(conn: sqlite3.Connection) -> int:
    """At open: every reply left ``streaming`` (the app died) or with chunks left over becomes
    ``interrupted`` with its chunks folded in. Runs in one transaction; returns how many."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM messages WHERE status='streaming'"
                " UNION SELECT DISTINCT message_id FROM message_chunks"
            )
        ]
        for mid in ids:
            fold(conn, mid)
            conn.execute(
                "UPDATE messages SET status='interrupted' WHERE id=? AND status='streaming'", (mid,)
            )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return len(ids)


def with_chunks(conn: sqlite3.Connection, messages: Iterable[StoredMessage]) -> list[StoredMessage]:
    """``messages`` with any unfolded chunks joined onto their text (live or interrupted)."""
    out = list(messages)
    for m in out:
        if m.status in _UNFOLDED:
            text, reasoning = joined(conn, m.id)
            if text or reasoning:
                m.content += text
                m.reasoning += reasoning
    return out
