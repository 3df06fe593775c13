"""Full-text search over every stored message (SQLite FTS5).

User text is never handed to FTS5's query language as is: ``AND``, ``"``, ``*``, ``(`` or ``-``
typed by a person would be syntax errors or operators. Each word becomes a quoted phrase (inner
quotes doubled); the last word also matches as a prefix, so results appear while typing. Hits
come newest first: FTS5 walks its index by rowid in that order and stops at ``limit``, which
keeps a query over a million messages in milliseconds where ranking every match would not.
"""

from __future__ import annotations

import sqlite3

from victor_gui.storage.models import SearchHit

# Marks placed around matched words in snippets; the UI turns them into highlighting.
MATCH_OPEN = "["
MATCH_CLOSE = "]"
_MAX_TERMS = 16


def fts_query(text: str, *, prefix_last: bool = True) -> str | None:
    """An FTS5 MATCH expression for a person's search text, or None when it holds no words."""
    terms = [t for t in text.split() if t.strip('"')][:_MAX_TERMS]
    if not terms:
        return None
    quoted = ['"' + t.replace('"', '""') + '"' for t in terms]
    if prefix_last and len(terms[-1]) >= 2:
        quoted[-1] += "*"
    return " ".join(quoted)


def search_sync(conn: sqlite3.Connection, text: str, limit: int = 50) -> list[SearchHit]:
    """Messages matching ``text``, newest first, with a snippet each (runs on a store thread)."""
    query = fts_query(text)
    if query is None:
        return []
    rows = conn.execute(
        f"""
        SELECT m.id, m.conversation_id, c.title, m.position, m.role, f.snip, m.created
        FROM (
            SELECT rowid AS rid,
                   snippet(messages_fts, -1, '{MATCH_OPEN}', '{MATCH_CLOSE}', '…', 12) AS snip
            FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT ?
        ) AS f
        JOIN messages AS m ON m.id = f.rid
        JOIN conversations AS c ON c.id = m.conversation_id
        ORDER BY m.id DESC
        """,
        (query, int(limit)),
    ).fetchall()
    return [SearchHit(*row) for row in rows]
