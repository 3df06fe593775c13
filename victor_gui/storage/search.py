"""Full-text search over every stored message (SQLite FTS5).

User text is never handed to FTS5's query language as is: ``AND``, ``"``, ``*``, ``(`` or ``-``
typed by a person would be syntax errors or operators. Each word becomes a quoted phrase (inner
quotes doubled). Words match whole tokens; a word typed with a trailing ``*`` matches as a
prefix. Prefixes are opt-in because FTS5 answers them by merging the full posting lists of
every matching token (hundreds of milliseconds for a short prefix over a million messages),
while a whole-word query streams one list. Hits come newest first: FTS5 walks its index by
rowid in that order and stops at ``limit``, so ranking never touches every match.
"""

from __future__ import annotations

import sqlite3

from victor_gui.storage.models import SearchHit

# Marks placed around matched words in snippets; the UI turns them into highlighting.
MATCH_OPEN = "["
MATCH_CLOSE = "]"
_MAX_TERMS = 16


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression for a person's search text, or None when it holds no words."""
    quoted = []
    for term in text.split()[:_MAX_TERMS]:
        prefix = term.endswith("*") and len(term.rstrip("*")) >= 2
        term = term.rstrip("*") if prefix else term
        if not any(ch.isalnum() for ch in term):
            continue  # punctuation alone tokenises to nothing; as a phrase it would match nothing
        quoted.append('"' + term.replace('"', '""') + '"' + ("*" if prefix else ""))
    return " ".join(quoted) or None


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
