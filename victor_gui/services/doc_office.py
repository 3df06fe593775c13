"""PDF, DOCX, PPTX and XLSX to sections, with the optional ``documents`` extra's libraries.

Each reader returns the sections and the page/slide/sheet count and raises
:class:`~victor_gui.errors.AttachmentError` with one sentence naming the file: ``missing_extra``
when the library is not installed, ``encrypted``, ``no_text`` (a PDF that is only scans),
``broken`` (truncated or malformed), ``too_large`` (a zip that unpacks past the limit).
"""

from __future__ import annotations

import datetime
import zipfile
from pathlib import Path
from typing import Any

from victor_gui.services.attachment_types import DocumentSection
from victor_gui.services.doc_job import MAX_TABLE_ROWS, MAX_UNZIPPED_BYTES, ConvertJob
from victor_gui.services.doc_text import markdown_table, squeeze_blank_lines, table_sections

EXTRA_HINT = "pip install 'victor_gui[documents]'"

# What the parsers raise on malformed input besides their own error types: a damaged file is
# a "broken" attachment whatever the library's internal failure looks like.
_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError, IndexError, EOFError,
    AssertionError, RecursionError, UnicodeError, OSError, NotImplementedError, ZeroDivisionError,
)


def _missing(job: ConvertJob, kind: str) -> Exception:
    return job.error(f"Reading {job.name} ({kind}) needs the optional document converters, which "
                     f"are not installed: {EXTRA_HINT}.", "missing_extra")


def _broken(job: ConvertJob, kind: str) -> Exception:
    return job.error(f"{job.name} is damaged or incomplete: it cannot be read as a {kind} file.", "broken")


def _ranges(numbers: list[int]) -> str:
    """``[4, 5, 6, 9]`` → ``"4-6, 9"``."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


# -- PDF -----------------------------------------------------------------------------------------


def pdf_sections(path: Path, job: ConvertJob) -> tuple[list[DocumentSection], int]:
    """One section per page with text (``page N``); pages without a text layer are named in a
    warning, and a PDF with none at all is ``no_text``."""
    try:
        import pypdf
        from pypdf.errors import DependencyError, PdfReadError
    except ImportError as exc:
        raise _missing(job, "PDF") from exc
    try:
        return _pdf_pages(pypdf.PdfReader, PdfReadError, path, job)
    except DependencyError as exc:  # AES needs pypdf's crypto extra (cryptography), at any object
        raise job.error(f"Opening {job.name} (an encrypted PDF) needs the cryptography package, "
                        f"which is not installed: {EXTRA_HINT}.", "missing_extra") from exc


def _pdf_pages(open_pdf: Any, read_error: type[Exception], path: Path,
               job: ConvertJob) -> tuple[list[DocumentSection], int]:
    pdf_errors: tuple[type[BaseException], ...] = (read_error, *_PARSE_ERRORS)
    try:
        reader = open_pdf(str(path), strict=False)
        if reader.is_encrypted:
            opened = reader.decrypt("")  # owner-password-only PDFs open with an empty one
            if not opened:
                raise job.error(f"{job.name} is password-protected; save an unprotected copy from a "
                                "PDF reader and attach that.", "encrypted")
        count = len(reader.pages)
    except pdf_errors as exc:
        raise _broken(job, "PDF") from exc
    sections: list[DocumentSection] = []
    blank: list[int] = []
    for index in range(count):
        job.step(index, count)
        try:
            text = reader.pages[index].extract_text() or ""
        except pdf_errors:
            job.warnings.append(f"{job.name}: page {index + 1} could not be read and was left out.")
            continue
        text = squeeze_blank_lines(text.replace("\r\n", "\n").replace("\x00", ""))
        if not text.strip():
            blank.append(index + 1)
            continue
        sections.append(DocumentSection(text=job.add_text(text), locator=f"page {index + 1}"))
    job.step(count, count)
    if not sections:
        raise job.error(f"{job.name} has no text layer (scanned pages or images only); OCR is not "
                        "built in, so its text cannot be read.", "no_text")
    if blank:
        which = f"page {blank[0]} has" if len(blank) == 1 else f"pages {_ranges(blank)} have"
        job.warnings.append(f"{job.name}: {which} no text layer (scans or "
                            "images); OCR is not built in, so they were left out.")
    return sections, count


# -- zip-based Office files ------------------------------------------------------------------------


def check_zip(path: Path, job: ConvertJob, kind: str) -> None:
    """Refuse a truncated zip (``broken``) or one whose parts unpack past
    :data:`~victor_gui.services.doc_job.MAX_UNZIPPED_BYTES` (``too_large``) before parsing it."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _broken(job, kind) from exc
    if unpacked > MAX_UNZIPPED_BYTES:
        raise job.error(f"{job.name} unpacks to {unpacked // (1024 * 1024)} MB, over the "
                        f"{MAX_UNZIPPED_BYTES // (1024 * 1024)} MB limit for Office files.", "too_large")


def docx_sections(path: Path, job: ConvertJob) -> tuple[list[DocumentSection], None]:
    """Paragraphs and tables in order; a heading starts a section ``§ Heading``; tables become
    Markdown tables; list paragraphs get a ``-``."""
    try:
        import docx
        from docx.opc.exceptions import PackageNotFoundError
        from docx.table import Table
    except ImportError as exc:
        raise _missing(job, "Word") from exc
    docx_errors: tuple[type[BaseException], ...] = (PackageNotFoundError, *_PARSE_ERRORS)
    check_zip(path, job, "Word (.docx)")
    try:
        document = docx.Document(str(path))
        blocks = list(document.iter_inner_content())
        # Paragraph.style resolves the default style by scanning every style, per paragraph
        # (12 s for 2000 paragraphs): read the style id from the XML and name it from one map.
        style_names = {style.style_id: style.name or "" for style in document.styles}
    except docx_errors as exc:
        raise _broken(job, "Word (.docx)") from exc
    except Exception as exc:  # lxml's XMLSyntaxError (lxml is python-docx's, not ours to import)
        raise _broken(job, "Word (.docx)") from exc
    sections: list[DocumentSection] = []
    locator = ""
    lines: list[str] = []

    def flush() -> None:
        text = squeeze_blank_lines("\n\n".join(lines))
        if text.strip():
            sections.append(DocumentSection(text=job.add_text(text), locator=locator))

    for index, block in enumerate(blocks):
        job.step(index, len(blocks))
        if isinstance(block, Table):
            rows = [[cell.text for cell in row.cells] for row in block.rows]
            if rows:
                lines.append(markdown_table(rows[0], rows[1:MAX_TABLE_ROWS + 1]))
            continue
        text = block.text.strip()
        if not text:
            continue
        style_id = block._p.style
        style = style_names.get(style_id, style_id or "") if style_id else ""
        level = _heading_level(style)
        if level:
            flush()
            lines = []
            locator = f"§ {text}"
            lines.append("#" * level + " " + text)
        elif style.startswith("List"):
            lines.append("- " + text)
        else:
            lines.append(text)
    flush()
    job.step(len(blocks), len(blocks))
    return sections, None


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    if style.startswith("Heading"):
        digits = style[len("Heading"):].strip()
        return min(int(digits), 6) if digits.isdigit() else 1
    return 0


def pptx_sections(path: Path, job: ConvertJob) -> tuple[list[DocumentSection], int]:
    """One section per slide with text (``slide N``): its text frames, tables and notes."""
    try:
        import pptx
        from pptx.exc import PackageNotFoundError
    except ImportError as exc:
        raise _missing(job, "PowerPoint") from exc
    pptx_errors: tuple[type[BaseException], ...] = (PackageNotFoundError, *_PARSE_ERRORS)
    check_zip(path, job, "PowerPoint (.pptx)")
    try:
        slides = list(pptx.Presentation(str(path)).slides)
    except pptx_errors as exc:
        raise _broken(job, "PowerPoint (.pptx)") from exc
    except Exception as exc:  # lxml's XMLSyntaxError
        raise _broken(job, "PowerPoint (.pptx)") from exc
    sections: list[DocumentSection] = []
    for index, slide in enumerate(slides):
        job.step(index, len(slides))
        lines: list[str] = []
        for shape in slide.shapes:
            _shape_lines(shape, lines)
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                lines.append("Notes: " + notes.text.strip())
        text = squeeze_blank_lines("\n".join(lines))
        if text.strip():
            sections.append(DocumentSection(text=job.add_text(text), locator=f"slide {index + 1}"))
    job.step(len(slides), len(slides))
    if not sections:
        raise job.error(f"{job.name} has no text on its slides (pictures only); OCR is not built in.",
                        "no_text")
    return sections, len(slides)


def _shape_lines(shape: Any, lines: list[str]) -> None:
    if getattr(shape, "shapes", None) is not None:  # a group: its members in order
        for member in shape.shapes:
            _shape_lines(member, lines)
        return
    if getattr(shape, "has_table", False):
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
        if rows:
            lines.append(markdown_table(rows[0], rows[1:]))
    elif getattr(shape, "has_text_frame", False):
        for paragraph in shape.text_frame.paragraphs:
            text = "".join(run.text for run in paragraph.runs).strip()
            if text:
                lines.append(text)


def xlsx_sections(path: Path, job: ConvertJob) -> tuple[list[DocumentSection], int]:
    """Each sheet's rows as Markdown tables (``sheet NAME``), values not formulas, capped at
    :data:`~victor_gui.services.doc_job.MAX_TABLE_ROWS` rows with a warning."""
    try:
        import openpyxl
    except ImportError as exc:
        raise _missing(job, "Excel") from exc
    check_zip(path, job, "Excel (.xlsx)")
    try:
        book = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except _PARSE_ERRORS as exc:
        raise _broken(job, "Excel (.xlsx)") from exc
    except Exception as exc:  # openpyxl's InvalidFileException, lxml's XMLSyntaxError
        raise _broken(job, "Excel (.xlsx)") from exc
    sections: list[DocumentSection] = []
    try:
        sheets = list(book.worksheets)
        for index, sheet in enumerate(sheets):
            job.step(index, len(sheets))
            rows_total = sheet.max_row if isinstance(sheet.max_row, int) else None
            rows = ([_value(v) for v in row] for row in sheet.iter_rows(values_only=True))
            sections += table_sections(rows, job, where=f"sheet {sheet.title}",
                                       total_rows=rows_total - 1 if rows_total else None)
        job.step(len(sheets), len(sheets))
    except _PARSE_ERRORS as exc:
        raise _broken(job, "Excel (.xlsx)") from exc
    finally:
        book.close()
    if not sections:
        raise job.error(f"{job.name} has no cells with values.", "no_text")
    return sections, len(sheets)


def _value(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value
