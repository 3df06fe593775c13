"""Attached documents to text: :func:`convert_document` and :func:`chunk_document`.

:func:`convert_document` is synchronous and meant for a worker
(:func:`victor_gui.services.doc_worker.convert_in_worker` runs it in a child process). It tells
the format from the file's first bytes first and its extension second, then:

* PDF (pypdf): a section per page, ``page N``;
* DOCX (python-docx): paragraphs and Markdown tables, a section per heading, ``§ Heading``;
* PPTX (python-pptx): a section per slide, ``slide N``;
* XLSX (openpyxl, read-only): each sheet's rows as Markdown tables, ``sheet NAME``;
* CSV/TSV: Markdown tables, ``rows a-b``; HTML (stdlib ``html.parser``): the visible text,
  script/style dropped, a section per heading; Markdown: a section per heading;
* plain text and source code (by extension, or any file that sniffs as text): one section.

Why pypdf + python-docx + python-pptx + openpyxl and not ``markitdown``: these four are pure
Python, already the ``documents`` extra, and expose the structure the sources line needs (page,
slide, sheet, heading) while converting, so progress and cancel can sit between pages; markitdown
returns one Markdown string per file (the places would have to be parsed back out of it) and
brings a heavier dependency tree (pandas for spreadsheets, among others) for the same formats.

Text encodings are in :mod:`~victor_gui.services.doc_text` (UTF-8/16/32 by BOM, else UTF-8,
else cp1252 with a warning). Limits (:mod:`~victor_gui.services.doc_job`): 32 MiB for text-like
files and 100 MiB for Office/PDF files, checked from the size before reading (a 200 MB log is
refused in milliseconds), 32 M characters of extracted text, 512 MiB unpacked for Office zips.

Every failure is an :class:`~victor_gui.errors.AttachmentError` whose message is one sentence
naming the file and whose ``reason`` is one of ``vanished``, ``unreadable``, ``encrypted``,
``no_text``, ``too_large``, ``broken``, ``unsupported``, ``missing_extra``, ``cancelled``.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import stat
import zipfile
from pathlib import Path

from victor_gui.errors import AttachmentError
from victor_gui.services.attachment_types import ConvertedDocument, DocumentSection
from victor_gui.services.doc_chunk import chunk_document
from victor_gui.services.doc_job import (
    MAX_BINARY_FILE_BYTES,
    MAX_TEXT_FILE_BYTES,
    CancelledFn,
    ConvertJob,
    ProgressFn,
)
from victor_gui.services.doc_office import docx_sections, pdf_sections, pptx_sections, xlsx_sections
from victor_gui.services.doc_text import (
    BLOCK_BYTES,
    csv_sections,
    html_declared_charset,
    html_sections,
    looks_binary,
    markdown_sections,
    read_text,
)

__all__ = ["FORMATS", "check_document", "chunk_document", "convert_document", "detect_format"]

# format → media type of the original
FORMATS: dict[str, str] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
    "html": "text/html",
    "markdown": "text/markdown",
    "text": "text/plain",
}
_BINARY_FORMATS = frozenset({"pdf", "docx", "pptx", "xlsx"})
_BY_EXTENSION = {
    ".pdf": "pdf", ".docx": "docx", ".docm": "docx", ".dotx": "docx", ".pptx": "pptx", ".pptm": "pptx",
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".csv": "csv", ".tsv": "csv", ".html": "html", ".htm": "html",
    ".xhtml": "html", ".md": "markdown", ".markdown": "markdown", ".mdown": "markdown",
}
_ZIP_PARTS = (("word/document.xml", "docx"), ("ppt/presentation.xml", "pptx"), ("xl/workbook.xml", "xlsx"))
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Office 97-2003 files, and encrypted OOXML ones
_KNOWN_BINARY = (  # magic → what it is, for the "cannot read" sentence
    (b"\x89PNG", "an image"), (b"\xff\xd8\xff", "an image"), (b"GIF8", "an image"),
    (b"RIFF", "a media file"), (b"\x7fELF", "a program"), (b"MZ", "a program"),
    (b"\x1f\x8b", "a compressed archive"), (b"7z\xbc\xaf", "a compressed archive"),
    (b"Rar!", "a compressed archive"), (b"SQLite format 3", "a database"), (b"GGUF", "a model file"),
)
_OLD_OFFICE = {".doc": ".docx", ".xls": ".xlsx", ".ppt": ".pptx"}


def detect_format(path: Path, head: bytes, job: ConvertJob) -> str:
    """The format (a key of :data:`FORMATS`) from the first bytes, then the extension; raises
    ``unsupported`` (binary, images, old Office), ``encrypted`` (protected Office) or ``broken``."""
    ext = path.suffix.lower()
    # The PDF header may follow up to 1 KB of junk, but only trust that for a .pdf: a text file
    # that mentions "%PDF-" is still text.
    if head.startswith(b"%PDF-") or (ext == ".pdf" and b"%PDF-" in head[:1024]):
        return "pdf"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        by_ext = _BY_EXTENSION.get(ext)
        if by_ext in ("docx", "pptx", "xlsx"):
            return by_ext
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            names = set()
        for part, fmt in _ZIP_PARTS:
            if part in names:
                return fmt
        raise job.error(f"{job.name} is a zip archive; unpack it and attach the files inside.", "unsupported")
    if head.startswith(_OLE2):
        if _BY_EXTENSION.get(ext) in ("docx", "pptx", "xlsx"):
            raise job.error(f"{job.name} is password-protected; save an unprotected copy and attach "
                            "that.", "encrypted")
        newer = _OLD_OFFICE.get(ext, ".docx, .xlsx or .pptx")
        raise job.error(f"{job.name} is an old Office 97-2003 file, which cannot be read; save it as "
                        f"{newer} and attach that.", "unsupported")
    by_ext = _BY_EXTENSION.get(ext)
    if by_ext in _BINARY_FORMATS:
        raise job.error(f"{job.name} is damaged or not really a {ext} file: it does not start like "
                        "one.", "broken")
    for magic, what in _KNOWN_BINARY:
        if head.startswith(magic):
            raise job.error(f"{job.name} is {what}, not a document with text.", "unsupported")
    if looks_binary(head):
        raise job.error(f"{job.name} is a binary file, not a document with text that can be read.",
                        "unsupported")
    if by_ext is not None:
        return by_ext
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith(b"<!doctype html") or start.startswith(b"<html"):
        return "html"
    return "text"


def _media_type(path: Path, fmt: str) -> str:
    if fmt != "text":
        return FORMATS[fmt]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed if guessed and (guessed.startswith("text/") or guessed.endswith(("json", "xml"))) \
        else "text/plain"


# A section longer than this is cut at line ends into several (same locator; for plain text
# "lines a-b"): the worker hands sections to the event loop one by one, and one 30 MB string
# would stall the loop for tens of milliseconds as it is received (bench/bench_convert.py).
MAX_SECTION_CHARS = 1024 * 1024


def split_long_sections(sections: list[DocumentSection], *, by_lines: bool) -> list[DocumentSection]:
    """``sections`` with each one past :data:`MAX_SECTION_CHARS` cut at line ends; ``by_lines``
    (plain text, one section) locates the pieces as ``lines a-b`` of the file."""
    out: list[DocumentSection] = []
    for section in sections:
        text = section.text
        if len(text) <= MAX_SECTION_CHARS:
            out.append(section)
            continue
        start, line = 0, 1
        while start < len(text):
            end = min(start + MAX_SECTION_CHARS, len(text))
            if end < len(text):
                cut = text.rfind("\n", start, end)
                end = cut + 1 if cut > start else end
            piece = text[start:end]
            lines = piece.count("\n") - (1 if piece.endswith("\n") else 0)
            locator = f"lines {line}-{line + lines}" if by_lines else section.locator
            out.append(DocumentSection(text=piece.rstrip("\n"), locator=locator))
            line += piece.count("\n")
            start = end
    return [s for s in out if s.text.strip()]


def _hash_file(path: Path, job: ConvertJob) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(BLOCK_BYTES):
            job.check()
            digest.update(block)
    return digest.hexdigest()


def convert_document(path: str | os.PathLike[str], *, progress: ProgressFn | None = None,
                     cancelled: CancelledFn | None = None) -> ConvertedDocument:
    """The text of the document at ``path`` in located sections (module docstring: formats,
    limits, errors). ``progress(done, total)`` is called between pages/blocks (units vary by
    format, ``done == total`` at the end); ``cancelled()`` is checked there too and, when true,
    stops with ``AttachmentError(reason="cancelled")``. Blocking: run it in a worker."""
    path = Path(path)
    job = ConvertJob(path.name, progress, cancelled)
    try:
        return _convert(path, job)
    except MemoryError as exc:
        raise job.error(f"{job.name} needs more memory to convert than is allowed; split it or attach "
                        "the part you need.", "too_large") from exc
    except OSError as exc:
        raise _os_error(job, exc) from exc


def _preflight(path: Path, job: ConvertJob) -> tuple[os.stat_result, bytes, str]:
    """The checks that need no parsing: a regular non-empty file, a known format, under its limit."""
    info = path.stat()
    if stat.S_ISDIR(info.st_mode):
        raise job.error(f"{job.name} is a folder, not a file.", "unreadable")
    if not stat.S_ISREG(info.st_mode):
        raise job.error(f"{job.name} is not a regular file.", "unreadable")
    if info.st_size == 0:
        raise job.error(f"{job.name} is empty.", "no_text")
    with path.open("rb") as fh:
        head = fh.read(8192)
    fmt = detect_format(path, head, job)
    limit = MAX_BINARY_FILE_BYTES if fmt in _BINARY_FORMATS else MAX_TEXT_FILE_BYTES
    if info.st_size > limit:
        what = "PDF and Office files" if fmt in _BINARY_FORMATS else "text files"
        raise job.too_large(info.st_size, limit, what)
    return info, head, fmt


def check_document(path: str | os.PathLike[str]) -> str:
    """The format :func:`convert_document` would read ``path`` as (a key of :data:`FORMATS`), or
    its refusal — vanished, a folder, empty, binary, encrypted Office, too large — from a stat
    and the first 8 KB, without parsing: milliseconds, so a worker can refuse before it starts."""
    path = Path(path)
    job = ConvertJob(path.name)
    try:
        return _preflight(path, job)[2]
    except OSError as exc:
        raise _os_error(job, exc) from exc


def _os_error(job: ConvertJob, exc: OSError) -> AttachmentError:
    if isinstance(exc, FileNotFoundError):
        return job.error(f"{job.name} is no longer there (moved or deleted since it was attached).",
                         "vanished")
    if isinstance(exc, PermissionError):
        return job.error(f"{job.name} cannot be read: permission denied.", "unreadable")
    return job.error(f"{job.name} cannot be read: {exc.strerror or exc}.", "unreadable")


def _convert(path: Path, job: ConvertJob) -> ConvertedDocument:
    info, head, fmt = _preflight(path, job)
    media_type = _media_type(path, fmt)
    pages: int | None = None
    if fmt in _BINARY_FORMATS:
        sha256 = _hash_file(path, job)
        reader = {"pdf": pdf_sections, "docx": docx_sections, "pptx": pptx_sections,
                  "xlsx": xlsx_sections}[fmt]
        sections, pages = reader(path, job)
        if not sections:
            raise job.error(f"{job.name} has no text.", "no_text")
    else:
        declared = html_declared_charset(head) if fmt == "html" else None
        decoded = read_text(path, job, total=info.st_size, declared=declared)
        sha256 = decoded.sha256
        if not decoded.text.strip():
            raise job.error(f"{job.name} has no text (only spaces or blank lines).", "no_text")
        job.chars = 0  # the sections count again what the decode pass counted
        if fmt == "csv":
            sections = csv_sections(decoded.text, job)
        elif fmt == "html":
            sections = html_sections(decoded.text, job)
        elif fmt == "markdown":
            sections = markdown_sections(decoded.text)
        else:
            sections = [DocumentSection(text=decoded.text)]
        if not sections:
            raise job.error(f"{job.name} has no visible text.", "no_text")
        sections = split_long_sections(sections, by_lines=fmt == "text")
    if info.st_size != path.stat().st_size:
        job.warnings.append(f"{job.name} changed while it was being read; attach it again for the "
                            "current version.")
    return ConvertedDocument(name=job.name, sha256=sha256, media_type=media_type, sections=tuple(sections),
                             pages=pages, warnings=tuple(job.warnings))
