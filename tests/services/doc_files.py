"""Real document files for the conversion tests, written with the formats' own libraries.

PDFs are built with pypdf itself (reportlab is not installed): each page gets a content stream
that draws its lines with a standard Helvetica font resource, so pypdf's text extraction reads
them back; a page given ``None`` has no text at all (as a scan's page would).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import docx
import openpyxl
import pptx
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(path: Path, pages: Sequence[str | None], *, password: str | None = None) -> Path:
    """A PDF with one page per entry: its lines drawn as text, or no text for ``None``."""
    writer = PdfWriter()
    font = DictionaryObject({
        NameObject("/Type"): NameObject("/Font"),
        NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
        NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
    })
    font_ref = writer._add_object(font)
    for text in pages:
        page = writer.add_blank_page(width=612, height=792)
        if text is None:
            continue
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 740 Td"]
        for line in text.split("\n"):
            ops.append(f"({_escape(line)}) Tj T*")
        ops.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject({
            NameObject("/Font"): DictionaryObject({NameObject("/F1"): font_ref}),
        })
    if password is not None:
        writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def make_docx(path: Path) -> Path:
    """A Word file: an intro paragraph, two headings with text, a bulleted item and a table."""
    document = docx.Document()
    document.add_paragraph("Preface before any heading.")
    document.add_heading("Installation", level=1)
    document.add_paragraph("Run the installer and follow the steps.")
    document.add_paragraph("Accept the licence", style="List Bullet")
    document.add_heading("Prices", level=2)
    table = document.add_table(rows=3, cols=2)
    for r, row in enumerate([("Plan", "Cost"), ("Basic", "5 | EUR"), ("Pro", "12")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("Prices include tax.")
    document.save(str(path))
    return path


def make_pptx(path: Path, slides: Sequence[str | None]) -> Path:
    """A PowerPoint file, one slide per entry (title + body), or a blank slide for ``None``."""
    deck = pptx.Presentation()
    for text in slides:
        if text is None:
            deck.slides.add_slide(deck.slide_layouts[6])
            continue
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        title, body = text.split("\n", 1) if "\n" in text else (text, "")
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    deck.save(str(path))
    return path


def make_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """An Excel file with the given sheets (first row a header)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(str(path))
    return path


def make_csv(path: Path, rows: list[list[object]], *, delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut ``path`` to ``keep`` of its bytes (a download that stopped half-way)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
