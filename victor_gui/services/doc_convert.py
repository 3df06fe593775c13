"""Documents converted to text, in sections that keep their place (page, section).

# baseline until att-docs merges: plain text, Markdown, CSV and source code (UTF-8), and PDF
# through pypdf (the ``documents`` extra). att-docs owns this module (every format, limits,
# chunking); its version wins at merge.
"""

from __future__ import annotations

import asyncio
import codecs
import threading
from collections.abc import Callable
from pathlib import Path

from victor_gui.errors import AttachmentError
from victor_gui.services.attachment_types import ConvertedDocument, DocumentSection

Progress = Callable[[float], None]
_CHUNK = 1 << 20
# Larger text is far past any context window, and joining it holds the GIL long enough to stall
# the window (measured: ~0.5 s for 200 MB, ~0.13 s for 47 MB).
MAX_TEXT_BYTES = 20_000_000

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".csv", ".tsv", ".json", ".yaml", ".yml", ".toml",
                 ".py", ".js", ".ts", ".c", ".h", ".cpp", ".rs", ".go", ".java", ".sh", ".html",
                 ".htm", ".xml", ".ini", ".cfg", ".log", ".rst", ".sql"}
MEDIA_TYPES = {".pdf": "application/pdf", ".md": "text/markdown", ".csv": "text/csv",
               ".html": "text/html", ".htm": "text/html", ".json": "application/json"}


def media_type_of(name: str) -> str:
    """The media type a document name suggests (text/plain for text-like ones)."""
    suffix = Path(name).suffix.lower()
    return MEDIA_TYPES.get(suffix, "text/plain" if suffix in TEXT_SUFFIXES or not suffix else
                           "application/octet-stream")


def _check(cancelled: threading.Event | None, name: str) -> None:
    if cancelled is not None and cancelled.is_set():
        raise AttachmentError(f"Converting {name} was cancelled.", reason="cancelled", name=name)


def convert_document(path: Path, *, name: str | None = None, sha256: str = "",
                     progress: Progress | None = None,
                     cancelled: threading.Event | None = None) -> ConvertedDocument:
    """The text of ``path`` in sections; AttachmentError with a clear sentence when it has none."""
    name = name or path.name
    suffix = Path(name).suffix.lower()
    if suffix == ".pdf":
        return _pdf(path, name, sha256, progress, cancelled)
    if suffix not in TEXT_SUFFIXES and suffix:
        raise AttachmentError(f"{name} is not a kind of document this app can read.",
                              reason="unsupported", name=name)
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise AttachmentError(f"{name} is no longer there.", reason="vanished", name=name) from exc
    if size > MAX_TEXT_BYTES:
        limit = MAX_TEXT_BYTES // 1_000_000
        raise AttachmentError(f"{name} is {size / 1e6:.0f} MB; text files up to {limit} MB can be attached.",
                              reason="too_large", name=name)
    # Read and decoded a megabyte at a time: one decode of a 200 MB file holds the GIL for
    # about a second, and the event loop (another thread) would stall that long.
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pieces: list[str] = []
    try:
        size = max(size, 1)
        done = 0
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                _check(cancelled, name)
                pieces.append(decoder.decode(chunk))
                done += len(chunk)
                if progress is not None:
                    progress(done / size)
            pieces.append(decoder.decode(b"", final=True))
    except FileNotFoundError as exc:
        raise AttachmentError(f"{name} is no longer there.", reason="vanished", name=name) from exc
    except UnicodeDecodeError as exc:
        raise AttachmentError(f"{name} is not UTF-8 text.", reason="unreadable", name=name) from exc
    except OSError as exc:
        raise AttachmentError(f"{name} cannot be read.", reason="unreadable", name=name) from exc
    return ConvertedDocument(name, sha256, media_type_of(name), (DocumentSection("".join(pieces)),))


def _pdf(path: Path, name: str, sha256: str, progress: Progress | None,
         cancelled: threading.Event | None) -> ConvertedDocument:
    try:
        from pypdf import PdfReader
    except ImportError as exc:
        raise AttachmentError(f"Reading {name} needs the documents extra "
                              "(pip install victor-gui[documents]).",
                              reason="missing_extra", name=name) from exc
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise AttachmentError(f"{name} is encrypted; save a copy without a password and attach that.",
                                  reason="encrypted", name=name)
        sections = []
        total = len(reader.pages)
        for i, page in enumerate(reader.pages):
            _check(cancelled, name)
            sections.append(DocumentSection(page.extract_text() or "", f"page {i + 1}"))
            if progress is not None:
                progress((i + 1) / max(total, 1))
    except AttachmentError:
        raise
    except FileNotFoundError as exc:
        raise AttachmentError(f"{name} is no longer there.", reason="vanished", name=name) from exc
    except Exception as exc:  # pypdf raises many kinds for a broken file
        raise AttachmentError(f"{name} is damaged and cannot be read.", reason="broken", name=name) from exc
    if not any(s.text.strip() for s in sections):
        raise AttachmentError(f"{name} has no text layer (scanned pages); it cannot be read as text.",
                              reason="no_text", name=name)
    return ConvertedDocument(name, sha256, "application/pdf", tuple(sections), pages=total)


async def convert_in_worker(path: Path, *, name: str | None = None, sha256: str = "",
                            progress: Progress | None = None,
                            cancelled: threading.Event | None = None) -> ConvertedDocument:
    """:func:`convert_document` in a worker thread (the loop never waits on it); ``progress`` is
    called from that thread with 0..1."""
    return await asyncio.to_thread(convert_document, path, name=name, sha256=sha256,
                                   progress=progress, cancelled=cancelled)
