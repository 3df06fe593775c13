"""A converted document cut into chunks small enough to embed and to quote.

Chunks never cross sections, so each keeps its section's locator ("page 3"). Inside a section
the text is cut at paragraphs (blank lines) first, then lines, then sentences, then — only for a
run with no break at all — at a character count; the pieces are packed greedily up to
``max_tokens`` (the estimate of :func:`~victor_gui.services.token_count.estimate_tokens`, which
errs high), and each chunk after the first of a section starts with the last pieces of the one
before, up to ``overlap`` tokens, so a sentence cut at a chunk's end is whole in the next. A
Markdown table cut into several chunks has its header repeated atop each.
"""

from __future__ import annotations

import re

from victor_gui.services.attachment_types import Chunk, ConvertedDocument
from victor_gui.services.token_count import CHARS_PER_TOKEN, estimate_tokens

DEFAULT_CHUNK_TOKENS = 512
DEFAULT_OVERLAP_TOKENS = 64

_PARAGRAPHS = re.compile(r"\n[ \t]*\n+")
_SENTENCES = re.compile(r"(?<=[.!?。！？])\s+")

_RULE = re.compile(r"^\|(?:\s*:?-+:?\s*\|)+\s*$")
# (text, the joiner before it, its token estimate, the table header it belongs under or "")
_Piece = tuple[str, str, int, str]


def _hard_split(text: str, max_tokens: int) -> list[str]:
    out: list[str] = []
    step = max(1, int(max_tokens * CHARS_PER_TOKEN))
    start = 0
    while start < len(text):
        size = step
        while size > 1 and estimate_tokens(text[start:start + size]) > max_tokens:
            size //= 2
        out.append(text[start:start + size])
        start += size
    return out


def _pieces(text: str, max_tokens: int) -> list[_Piece]:
    """``text`` as pieces of at most ``max_tokens``, each with the joiner that preceded it."""
    pieces: list[_Piece] = []
    for para in _PARAGRAPHS.split(text):
        if not para.strip():
            continue
        tokens = estimate_tokens(para)
        if tokens <= max_tokens:
            pieces.append((para, "\n\n", tokens, ""))
            continue
        joiner = "\n\n"
        lines = para.split("\n")
        header = _table_header(lines, max_tokens)
        for number, line in enumerate(lines):
            under = header if number >= 2 else ""
            tokens = estimate_tokens(line)
            if tokens <= max_tokens:
                pieces.append((line, joiner, tokens, under))
                joiner = "\n"
                continue
            for sentence in _SENTENCES.split(line):
                tokens = estimate_tokens(sentence)
                if tokens <= max_tokens:
                    pieces.append((sentence, joiner, tokens, ""))
                else:
                    for index, part in enumerate(_hard_split(sentence, max_tokens)):
                        pieces.append((part, joiner if index == 0 else "", estimate_tokens(part), ""))
                joiner = " "
            joiner = "\n"
    return pieces


def _table_header(lines: list[str], max_tokens: int) -> str:
    """A Markdown table's first two lines, repeated atop each chunk of its rows so a chunk of
    rows still says what its columns are; "" when ``lines`` is no table or the header is big."""
    if len(lines) < 3 or not lines[0].startswith("|") or not _RULE.match(lines[1]):
        return ""
    header = lines[0] + "\n" + lines[1]
    return header if estimate_tokens(header) <= max_tokens // 4 else ""


def _head_cost(first: _Piece) -> int:
    return estimate_tokens(first[3]) + 1 if first[3] else 0


def _join(pieces: list[_Piece]) -> str:
    head = pieces[0][3] + "\n" if pieces[0][3] else ""
    return (head + pieces[0][0] + "".join(piece[1] + piece[0] for piece in pieces[1:])).strip()


def chunk_document(doc: ConvertedDocument, max_tokens: int = DEFAULT_CHUNK_TOKENS,
                   overlap: int = DEFAULT_OVERLAP_TOKENS) -> list[Chunk]:
    """``doc``'s chunks in order (module docstring: where it cuts), numbered from 0 across the
    document, each with its section's locator. ``overlap`` must be below ``max_tokens``."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    overlap = max(0, min(overlap, max_tokens // 2))
    chunks: list[Chunk] = []
    for section in doc.sections:
        current: list[_Piece] = []
        total = 0
        for piece in _pieces(section.text, max_tokens):
            if current and total + piece[2] > max_tokens:
                chunks.append(Chunk(doc.sha256, len(chunks), _join(current), section.locator))
                tail: list[_Piece] = []
                kept = 0
                for previous in reversed(current):
                    if kept + previous[2] > overlap:
                        break
                    tail.insert(0, previous)
                    kept += previous[2]
                if tail:
                    kept += _head_cost(tail[0])
                if kept + piece[2] > max_tokens:
                    tail, kept = [], 0
                current, total = tail, kept
            if not current:
                total = _head_cost(piece)
            current.append(piece)
            total += piece[2]
        if current:
            chunks.append(Chunk(doc.sha256, len(chunks), _join(current), section.locator))
    return chunks
