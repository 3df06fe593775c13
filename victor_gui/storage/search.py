"""Full-text search over every stored message (SQLite FTS5).

User text is never handed to FTS5's query language as is: ``AND``, ``"``, ``*``, ``(`` or ``-``
typed by a person would be syntax errors or operators. Each word becomes a quoted phrase (inner
quotes doubled), and all words must match.

Which words match as prefixes (type-ahead):

* the **last** word is matched as a prefix, because the person is probably still typing it
  ("kubern" finds "kubernetes"), unless it is wrapped in double quotes (``"boil"`` matches the
  word boil only) or the text ends in whitespace (the word is finished);
* any word typed with a trailing ``*`` is a prefix too;
* every other word matches whole tokens;
* a prefix needs at least 2 letters or digits (a 1-character prefix is matched as a word):
  FTS5 keeps prefix indexes for 2, 3, 4, 6, 8 and 10 characters (schema v4), so these stream
  like a word query, and other lengths are answered from the next longer index.

Hits come newest first: FTS5 walks its index by rowid in that order and stops at ``limit``,
so ranking never touches every match.
"""

from __future__ import annotations

import sqlite3

from victor_gui.storage.models import SearchHit

# Marks placed around matched words in snippets; the UI turns them into highlighting.
MATCH_OPEN = "["
MATCH_CLOSE = "]"
_MAX_TERMS = 16
_MIN_PREFIX = 2


def _is_prefix(term: str, *, last: bool) -> bool:
    core = term.rstrip("*")
    if sum(ch.isalnum() for ch in core) < _MIN_PREFIX:
        return False
    if term.endswith("*"):
        return True
    return last and not (len(term) > 1 and term.startswith('"') and term.endswith('"'))


def fts_query(text: str, *, type_ahead: bool = True) -> str | None:
    """An FTS5 MATCH expression for a person's search text, or None when it holds no words.

    With ``type_ahead`` the last word is a prefix (see the module docstring for the rule).
    """
    words = text.split()[:_MAX_TERMS]
    open_end = type_ahead and bool(text) and not text[-1].isspace()
    quoted = []
    for i, term in enumerate(words):
        prefix = _is_prefix(term, last=open_end and i == len(words) - 1)
        if prefix or term.endswith("*"):
            term = term.rstrip("*")
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
