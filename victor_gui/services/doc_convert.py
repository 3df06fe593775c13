# baseline until att-docs merges
"""Documents converted to text, in sections that keep their place in the file.

Baseline: plain text, Markdown, CSV, HTML and source code as UTF-8
text; att-docs' module (PDF, DOCX, PPTX, XLSX, progress, cancel, bad inputs) replaces it whole.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable
from pathlib import Path

from victor_gui.errors import AttachmentError
from victor_gui.services.attachment_types import ConvertedDocument, DocumentSection

_TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".csv", ".tsv", ".json", ".yaml", ".yml", ".toml", ".ini",
                  ".log", ".py", ".js", ".ts", ".c", ".h", ".cpp", ".rs", ".go", ".java", ".sh", ".html",
                  ".htm", ".xml", ".rst", ".sql", ".css"}


def convert_document(path: Path, *, progress: Callable[[float], None] | None = None,
                     cancelled: Callable[[], bool] | None = None) -> ConvertedDocument:
    """The text of the document at ``path`` (blocking: run it in a worker thread)."""
    name = path.name
    if path.suffix.lower() not in _TEXT_SUFFIXES:
        raise AttachmentError(f"{name} is not a kind of document this version reads.",
                              reason="unsupported", name=name)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AttachmentError(f"{name} is no longer there.", reason="vanished", name=name) from None
    except OSError as exc:
        raise AttachmentError(f"{name} could not be read ({exc.strerror}).", reason="unreadable",
                              name=name) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AttachmentError(f"{name} is not UTF-8 text.", reason="broken", name=name) from None
    media = mimetypes.guess_type(name)[0] or "text/plain"
    if progress is not None:
        progress(1.0)
    return ConvertedDocument(name, hashlib.sha256(raw).hexdigest(), media, (DocumentSection(text),))

