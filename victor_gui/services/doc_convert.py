"""Documents to text, and text to chunks.

# baseline until att-docs merges: only :func:`chunk_document`, the part retrieval needs; the
# converters (``convert_document``) are att-docs' and their version of this file wins.
"""

from __future__ import annotations

from victor_gui.services.attachment_types import Chunk, ConvertedDocument

DEFAULT_CHUNK_CHARS = 800
DEFAULT_OVERLAP_CHARS = 100


def _cut(text: str, max_chars: int) -> int:
    """Where to end a piece of at most ``max_chars``: a paragraph, line or sentence end, else a
    space, else the limit."""
    if len(text) <= max_chars:
        return len(text)
    window = text[:max_chars]
    for sep in ("\n\n", "\n", ". ", " "):
        at = window.rfind(sep)
        if at > max_chars // 2:
            return at + len(sep)
    return max_chars


def chunk_document(doc: ConvertedDocument, *, max_chars: int = DEFAULT_CHUNK_CHARS,
                   overlap: int = DEFAULT_OVERLAP_CHARS) -> list[Chunk]:
    """``doc``'s text in pieces of at most ``max_chars`` characters, each inside one section (so
    it keeps that section's locator), cut at paragraph, line or sentence ends where possible, with
    ``overlap`` characters repeated between neighbours so a sentence cut in two is whole in one."""
    chunks: list[Chunk] = []
    overlap = max(0, min(overlap, max_chars // 2))
    for section in doc.sections:
        text = section.text.strip()
        start = 0
        while start < len(text):
            end = start + _cut(text[start:], max_chars)
            piece = text[start:end].strip()
            if piece:
                chunks.append(Chunk(doc.sha256, len(chunks), piece, section.locator))
            if end >= len(text):
                break
            start = max(start + 1, end - overlap)
    return chunks
