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

import re
import sqlite3

from victor_gui.storage.chunks import joined
from victor_gui.storage.models import SearchHit

# Marks placed around matched words in snippets; the UI turns them into highlighting. Control
# characters, not brackets: "[" "]" were shown literally and could not be told from brackets in
# the message itself ("deep [thought] about [brackets]").
MATCH_OPEN = "\x02"
MATCH_CLOSE = "\x03"
_MAX_TERMS = 16
_MIN_PREFIX = 2


def _is_prefix(term: str, *, last: bool) -> bool:
    core = term.rstrip("*")
    if sum(ch.isalnum() for ch in core) < _MIN_PREFIX:
        return False
    if term.endswith("*"):
        return True
    return last and not (len(term) > 1 and term.startswith('"') and term.endswith('"'))


def _terms(text: str, *, type_ahead: bool = True) -> list[tuple[str, bool]]:
    """(term, is prefix) for each usable word of a person's search text."""
    words = text.split()[:_MAX_TERMS]
    open_end = type_ahead and bool(text) and not text[-1].isspace()
    out = []
    for i, term in enumerate(words):
        prefix = _is_prefix(term, last=open_end and i == len(words) - 1)
        if prefix or term.endswith("*"):
            term = term.rstrip("*")
        if not any(ch.isalnum() for ch in term):
            continue  # punctuation alone tokenises to nothing; as a phrase it would match nothing
        out.append((term, prefix))
    return out


def fts_query(text: str, *, type_ahead: bool = True) -> str | None:
    """An FTS5 MATCH expression for a person's search text, or None when it holds no words.

    With ``type_ahead`` the last word is a prefix (see the module docstring for the rule).
    """
    terms = _terms(text, type_ahead=type_ahead)
    quoted = ['"' + t.replace('"', '""') + '"' + ("*" if p else "") for t, p in terms]
    return " ".join(quoted) or None


# Snippets are built here, not with FTS5's snippet(): that re-tokenises the whole row and scores
# every window of it, quadratic in the row (a 1 MB message took 2.5 s, 10 MB 225 s, on the one
# reader thread everything else waited behind). Here a hit's text is read only up to HEAD_CHARS
# (substr in SQL: the rest never reaches Python), the first match is found with a regex, and the
# snippet is a few words around it: linear in HEAD_CHARS and bounded whatever the row's size.
HEAD_CHARS = 64 * 1024
_BEFORE = 40
_AFTER = 100


def _matcher(terms: list[tuple[str, bool]]) -> re.Pattern[str] | None:
    """A case-insensitive regex for any of the terms as FTS5 sees them (a term's words in order,
    any punctuation between; a prefix term matches to the end of its word)."""
    alternatives = []
    for term, prefix in terms:
        words = re.findall(r"\w+", term)
        if words:
            body = r"\W+".join(re.escape(w) for w in words)
            alternatives.append(rf"(?<!\w){body}" + (r"\w*" if prefix else r"(?!\w)"))
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


def make_snippet(text: str, matcher: re.Pattern[str] | None, *, more: bool = False) -> str | None:
    """A few words around the first match in ``text`` with every match in them between
    :data:`MATCH_OPEN`/:data:`MATCH_CLOSE`; None when nothing matches. ``more``: ``text`` is
    only the head of a longer text (an ellipsis goes at the end even if the window reaches it)."""
    first = matcher.search(text) if matcher is not None else None
    if first is None or matcher is None:
        return None
    start = max(0, first.start() - _BEFORE)
    if start:
        space = text.find(" ", start, first.start())
        start = space + 1 if space >= 0 else start
    end = min(len(text), first.end() + _AFTER)
    if end < len(text):
        space = text.rfind(" ", first.end(), end)
        end = space if space > 0 else end
    window = text[start:end].replace(MATCH_OPEN, "").replace(MATCH_CLOSE, "")
    marked = matcher.sub(lambda m: f"{MATCH_OPEN}{m.group(0)}{MATCH_CLOSE}", window)
    return ("…" if start else "") + marked.strip() + ("…" if end < len(text) or more else "")


def snippet_parts(snippet: str) -> list[tuple[str, bool]]:
    """``snippet`` as (text, is_match) pieces, in order, without the marks."""
    parts: list[tuple[str, bool]] = []
    for i, piece in enumerate(re.split(f"[{MATCH_OPEN}{MATCH_CLOSE}]", snippet)):
        if piece:
            parts.append((piece, i % 2 == 1))
    return parts


def plain_snippet(snippet: str) -> str:
    """``snippet`` without its match marks."""
    return snippet.replace(MATCH_OPEN, "").replace(MATCH_CLOSE, "")


def _head(text: str, more: bool) -> str:
    cut = text[:_BEFORE + _AFTER]
    return cut + ("…" if more or len(text) > len(cut) else "")


def _hit_snippet(conn: sqlite3.Connection, message_id: int, terms: list[tuple[str, bool]],
                 matcher: re.Pattern[str] | None) -> str:
    """The snippet of one hit, reading at most HEAD_CHARS of its text and reasoning."""
    row = conn.execute(
        "SELECT substr(content, 1, ?), length(content) > ?, substr(reasoning, 1, ?), length(reasoning) > ?"
        " FROM messages WHERE id=?",
        (HEAD_CHARS, HEAD_CHARS, HEAD_CHARS, HEAD_CHARS, message_id),
    ).fetchone()
    if row is None:
        return ""
    content, content_more, reasoning, reasoning_more = row
    for text, more in ((content, content_more), (reasoning, reasoning_more)):
        snip = make_snippet(text, matcher, more=bool(more))
        if snip is not None:
            return snip
    if content_more:
        # The match lies past the head: find it with instr() in SQLite (linear, in C) for the
        # word as typed and in its usual cases, and cut the snippet from there.
        for word in {v for t, _ in terms[:1] for w in re.findall(r"\w+", t)[:1]
                     for v in (w, w.lower(), w.capitalize(), w.upper())}:
            at = conn.execute(
                "SELECT instr(content, ?) FROM messages WHERE id=?", (word, message_id)
            ).fetchone()[0]
            if at:
                piece = conn.execute(
                    "SELECT substr(content, ?, ?) FROM messages WHERE id=?",
                    (max(1, at - 2 * _BEFORE), 4 * (_BEFORE + _AFTER), message_id),
                ).fetchone()[0]
                snip = make_snippet(piece, matcher, more=True)
                if snip is not None:
                    return snip if snip.startswith("…") else "…" + snip
    return _head(content or reasoning, bool(content_more or reasoning_more))


def _live_hits(conn: sqlite3.Connection, matchers: list[re.Pattern[str]]) -> list[tuple[int, str]]:
    """(id, snippet) of replies still streaming whose appended chunks match every term: FTS
    indexes a reply once it ends, and there are only ever a few streaming at once."""
    out = []
    for (mid,) in conn.execute("SELECT id FROM messages WHERE status='streaming' ORDER BY id DESC"):
        text, reasoning = joined(conn, int(mid))
        text = f"{text}\n{reasoning}" if reasoning else text
        if text and all(m.search(text) for m in matchers):
            out.append((int(mid), make_snippet(text[:HEAD_CHARS], matchers[0], more=len(text) > HEAD_CHARS)
                        or _head(text, len(text) > HEAD_CHARS)))
    return out


def search_sync(conn: sqlite3.Connection, text: str, limit: int = 50) -> list[SearchHit]:
    """Messages matching ``text``, newest first, with a snippet each (runs on a store thread).

    Replies still streaming are searched in their appended chunks (see :func:`_live_hits`).
    """
    query = fts_query(text)
    if query is None:
        return []
    terms = _terms(text)
    matcher = _matcher(terms)
    ids = [r[0] for r in conn.execute(
        "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT ?",
        (query, int(limit)),
    )]
    snippets = {mid: _hit_snippet(conn, mid, terms, matcher) for mid in ids}
    matchers = [m for m in (_matcher([t]) for t in terms) if m is not None]
    if matchers:
        snippets.update(_live_hits(conn, matchers))
    hits = []
    for mid in sorted(snippets, reverse=True)[: int(limit)]:
        row = conn.execute(
            "SELECT m.id, m.conversation_id, c.title, m.position, m.role, m.created FROM messages AS m"
            " JOIN conversations AS c ON c.id = m.conversation_id WHERE m.id=?",
            (mid,),
        ).fetchone()
        if row is not None:
            hits.append(SearchHit(row[0], row[1], row[2], row[3], row[4], snippets[mid], row[5]))
    return hits
