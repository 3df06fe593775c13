"""convert_document on real files of every format written in tmp, and each bad input's sentence."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.services.doc_files import make_csv, make_docx, make_pdf, make_pptx, make_xlsx, truncate
from victor_gui.errors import AttachmentError
from victor_gui.services.doc_convert import MAX_SECTION_CHARS, check_document, convert_document
from victor_gui.services.doc_job import MAX_TABLE_ROWS, MAX_TEXT_FILE_BYTES, MAX_UNZIPPED_BYTES
from victor_gui.services.doc_text import BLOCK_BYTES

REPO = Path(__file__).resolve().parents[2]


def refused(path: Path, reason: str) -> str:
    with pytest.raises(AttachmentError) as caught:
        convert_document(path)
    assert caught.value.reason == reason, str(caught.value)
    assert caught.value.name == path.name
    assert path.name in str(caught.value)
    return str(caught.value)


# -- PDF -----------------------------------------------------------------------------------------


def test_pdf_pages_are_located_sections_and_a_blank_page_is_named(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "report.pdf", ["Revenue grew (a lot)\nin spring", None, "Costs fell"])
    calls: list[tuple[int, int]] = []
    doc = convert_document(path, progress=lambda done, total: calls.append((done, total)))
    assert [(s.locator, s.text) for s in doc.sections] == [
        ("page 1", "Revenue grew (a lot)\nin spring"), ("page 3", "Costs fell")]
    assert doc.pages == 3 and doc.media_type == "application/pdf" and doc.name == "report.pdf"
    assert doc.warnings == ("report.pdf: page 2 has no text layer (scans or images); OCR is not "
                            "built in, so they were left out.",)
    assert calls[-1] == (3, 3) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_encrypted_pdf_is_refused_and_an_owner_only_password_opens(tmp_path: Path) -> None:
    message = refused(make_pdf(tmp_path / "secret.pdf", ["the plan"], password="pw"), "encrypted")
    assert "password-protected" in message
    opened = convert_document(make_pdf(tmp_path / "owner.pdf", ["open to read"], password=""))
    assert opened.text == "open to read"


def test_image_only_pdf_says_ocr_is_not_built_in(tmp_path: Path) -> None:
    message = refused(make_pdf(tmp_path / "scan.pdf", [None, None]), "no_text")
    assert "has no text layer" in message and "OCR is not built in" in message


def test_truncated_and_fake_pdfs_are_broken(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "cut.pdf", [f"page {i} text" for i in range(20)])
    truncate(path, 0.3)
    assert "damaged or incomplete" in refused(path, "broken")
    fake = tmp_path / "fake.pdf"
    fake.write_text("just some words, no PDF here")
    refused(fake, "broken")


# -- Office --------------------------------------------------------------------------------------


def test_docx_headings_lists_and_tables(tmp_path: Path) -> None:
    doc = convert_document(make_docx(tmp_path / "guide.docx"))
    assert [s.locator for s in doc.sections] == ["", "§ Installation", "§ Prices"]
    assert doc.sections[0].text == "Preface before any heading."
    assert doc.sections[1].text == ("# Installation\n\nRun the installer and follow the steps.\n\n"
                                    "- Accept the licence")
    assert "| Plan | Cost |\n|---|---|\n| Basic | 5 \\| EUR |\n| Pro | 12 |" in doc.sections[2].text
    assert doc.sections[2].text.endswith("Prices include tax.")


@pytest.mark.parametrize("kind", ["docx", "pptx", "xlsx"])
def test_truncated_office_files_are_broken(tmp_path: Path, kind: str) -> None:
    makers = {"docx": lambda p: make_docx(p), "pptx": lambda p: make_pptx(p, ["A\nB"] * 5),
              "xlsx": lambda p: make_xlsx(p, {"S": [[i, i * 2] for i in range(500)]})}
    path = truncate(makers[kind](tmp_path / f"half.{kind}"), 0.6)
    assert "damaged or incomplete" in refused(path, "broken")


def test_a_docx_without_text_is_no_text(tmp_path: Path) -> None:
    import docx

    path = tmp_path / "blank.docx"
    docx.Document().save(str(path))
    assert "has no text" in refused(path, "no_text")


def test_pptx_slides_skip_blank_ones(tmp_path: Path) -> None:
    deck = make_pptx(tmp_path / "deck.pptx", ["Welcome\nAgenda today", None, "Plan\nShip it"])
    doc = convert_document(deck)
    assert [(s.locator, s.text) for s in doc.sections] == [
        ("slide 1", "Welcome\nAgenda today"), ("slide 3", "Plan\nShip it")]
    assert doc.pages == 3
    refused(make_pptx(tmp_path / "pictures.pptx", [None, None]), "no_text")


def test_xlsx_sheets_as_tables_capped_with_a_note(tmp_path: Path) -> None:
    big = [["id", "value"]] + [[i, i * 1.5] for i in range(MAX_TABLE_ROWS + 10)]
    path = make_xlsx(tmp_path / "book.xlsx", {"Small": [["name", "n"], ["a|b", 2.0]], "Big": big})
    doc = convert_document(path)
    assert doc.pages == 2
    assert doc.sections[0].locator == "sheet Small"
    assert doc.sections[0].text == "| name | n |\n|---|---|\n| a\\|b | 2 |"
    big_sections = doc.sections[1:]
    assert big_sections[0].locator == "sheet Big, rows 1-200"
    assert big_sections[0].text.startswith("| id | value |\n|---|---|\n| 0 | 0 |\n| 1 | 1.5 |")
    assert sum(s.text.count("\n") - 1 for s in big_sections) == MAX_TABLE_ROWS
    assert doc.warnings == (f"book.xlsx, sheet Big: only the first {MAX_TABLE_ROWS} rows of "
                            f"{MAX_TABLE_ROWS + 10} were kept.",)


def test_zip_bomb_docx_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            block = b"\0" * (4 * 1024 * 1024)
            for _ in range(MAX_UNZIPPED_BYTES // len(block) + 1):
                part.write(block)
    assert path.stat().st_size < 5 * 1024 * 1024
    assert "over the 512 MB limit" in refused(path, "too_large")


# -- text-like -----------------------------------------------------------------------------------


def test_csv_with_semicolons_is_a_table(tmp_path: Path) -> None:
    doc = convert_document(make_csv(tmp_path / "p.csv", [["city", "pop"], ["Lyon", "522000"]], delimiter=";"))
    assert doc.media_type == "text/csv"
    assert [(s.locator, s.text) for s in doc.sections] == [
        ("row 1", "| city | pop |\n|---|---|\n| Lyon | 522000 |")]


def test_html_visible_text_without_script_or_style(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text("<!DOCTYPE html><html><head><title>T</title><style>p{color:red}</style></head>"
                    "<body><p>Intro &amp; more</p><script>steal()</script><h2>Usage</h2>"
                    "<p>Run <b>it</b> now</p><ul><li>one</li><li>two</li></ul></body></html>")
    doc = convert_document(path)
    assert [(s.locator, s.text) for s in doc.sections] == [
        ("", "Intro & more"), ("§ Usage", "## Usage\n\nRun it now\n\n- one\n- two")]
    assert "steal" not in doc.text and "color" not in doc.text


def test_markdown_sections_ignore_headings_in_code_fences(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text("intro\n# Setup\nstep\n```sh\n# a comment, not a heading\n```\n## Use\nrun\n")
    doc = convert_document(path)
    assert [s.locator for s in doc.sections] == ["", "§ Setup", "§ Use"]
    assert "# a comment, not a heading" in doc.sections[1].text


def test_non_utf8_text_converts_with_a_clear_note(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes("Café “quoted” costs 5 €\r\nsecond line".encode("cp1252"))
    doc = convert_document(path)
    assert doc.text == "Café “quoted” costs 5 €\nsecond line"
    assert len(doc.warnings) == 1 and "legacy.txt is not UTF-8" in doc.warnings[0]
    assert "Windows-1252" in doc.warnings[0]


def test_a_bad_byte_past_the_first_block_restarts_in_the_fallback(tmp_path: Path) -> None:
    path = tmp_path / "late.txt"
    path.write_bytes(b"a" * (BLOCK_BYTES + 10) + "\nend: déjà".encode("cp1252"))
    doc = convert_document(path)
    assert "\n".join(s.text for s in doc.sections).endswith("a\nend: déjà")
    assert len(doc.warnings) == 1 and "not UTF-8" in doc.warnings[0]


def test_html_meta_charset_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "ru.htm"
    path.write_bytes('<html><head><meta charset="windows-1251"></head><body><p>Привет, мир</p>'
                     '</body></html>'.encode("cp1251"))
    doc = convert_document(path)
    assert doc.text == "Привет, мир" and doc.warnings == ()


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
def test_unicode_encodings_by_bom_or_nul_pattern(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "u.txt"
    text = "Grüße, 日本語 and ascii text long enough to sniff"
    path.write_bytes(text.encode(encoding))
    doc = convert_document(path)
    assert doc.text == text and doc.warnings == ()


def test_crlf_across_a_block_boundary_stays_one_line_end(tmp_path: Path) -> None:
    path = tmp_path / "edge.log"
    path.write_bytes(b"x" * (BLOCK_BYTES - 1) + b"\r\nafter")
    doc = convert_document(path)
    text = "\n".join(s.text for s in doc.sections)  # long text is cut at line ends into sections
    assert text == "x" * (BLOCK_BYTES - 1) + "\nafter"


def test_long_text_is_cut_into_line_located_sections(tmp_path: Path) -> None:
    lines = [f"line {i} " + "w" * 60 for i in range(40_000)]
    path = tmp_path / "big.txt"
    path.write_text("\n".join(lines))
    doc = convert_document(path)
    assert len(doc.sections) > 1 and all(len(s.text) <= MAX_SECTION_CHARS for s in doc.sections)
    assert doc.sections[0].locator.startswith("lines 1-")
    first_end = int(doc.sections[0].locator.split("-")[1])
    assert doc.sections[1].text.startswith(f"line {first_end} ")  # line N is "line N-1"
    assert "\n".join(s.text for s in doc.sections) == "\n".join(lines)


def test_source_code_by_extension_and_text_by_sniffing(tmp_path: Path) -> None:
    code = tmp_path / "tool.py"
    code.write_text("def f():\n    return 1\n")
    assert convert_document(code).media_type == "text/x-python"
    about = tmp_path / "pdf-notes.txt"
    about.write_text("A PDF file starts with %PDF-1.7 and ends with %%EOF.\n")
    assert convert_document(about).media_type == "text/plain"  # mentions the magic, still text
    plain = tmp_path / "NOTES"
    plain.write_text("no extension, plain words\n")
    doc = convert_document(plain)
    assert (doc.media_type, doc.text) == ("text/plain", "no extension, plain words\n")


# -- refusals ------------------------------------------------------------------------------------


def test_binary_images_archives_and_old_office_are_refused(tmp_path: Path) -> None:
    blob = tmp_path / "data.bin"
    blob.write_bytes(bytes(range(256)) * 8)
    assert "binary file" in refused(blob, "unsupported")
    png = tmp_path / "photo.txt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    assert "an image" in refused(png, "unsupported")
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.txt", "hi")
    assert "zip archive" in refused(archive, "unsupported")
    old = tmp_path / "old.doc"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    assert "save it as .docx" in refused(old, "unsupported")
    locked = tmp_path / "locked.xlsx"
    locked.write_bytes(old.read_bytes())
    assert "password-protected" in refused(locked, "encrypted")


def test_vanished_folder_and_empty_files(tmp_path: Path) -> None:
    assert "no longer there" in refused(tmp_path / "gone.pdf", "vanished")
    folder = tmp_path / "dir.txt"
    folder.mkdir()
    refused(folder, "unreadable")
    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    refused(empty, "no_text")
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n\n \t\n")
    refused(blank, "no_text")


def test_a_200_mb_text_file_is_refused_from_its_size_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    with path.open("wb") as fh:
        fh.write(b"2026-12-07 log line\n" * 1000)
        fh.truncate(200 * 1024 * 1024)  # sparse: a 200 MB file that costs no disk
    calls: list[tuple[int, int]] = []
    message = refused(path, "too_large")
    with pytest.raises(AttachmentError):
        convert_document(path, progress=lambda d, t: calls.append((d, t)))
    assert calls == []  # refused before the first block was read
    assert "200 MB" in message and f"{MAX_TEXT_FILE_BYTES // 2**20} MB limit" in message
    with pytest.raises(AttachmentError) as early:
        check_document(path)  # the same refusal from the checks that parse nothing
    assert str(early.value) == message


def test_check_document_names_the_format_without_parsing(tmp_path: Path) -> None:
    assert check_document(make_docx(tmp_path / "a.docx")) == "docx"
    assert check_document(make_pdf(tmp_path / "b.pdf", ["x"])) == "pdf"
    page = tmp_path / "page"
    page.write_text("<!doctype html><p>hi</p>")
    assert check_document(page) == "html"
    with pytest.raises(AttachmentError) as gone:
        check_document(tmp_path / "missing.csv")
    assert gone.value.reason == "vanished"


def _convert_without(module: str, path: Path) -> str:
    """convert_document(path) in a fresh interpreter where ``module`` cannot be imported (as if
    an extra were not installed): "reason :: message"."""
    script = textwrap.dedent(f"""
        import sys
        sys.modules[{module!r}] = None  # importing it now raises ImportError
        from victor_gui.errors import AttachmentError
        from victor_gui.services.doc_convert import convert_document
        try:
            convert_document({str(path)!r})
        except AttachmentError as exc:
            print(exc.reason, "::", exc)
    """)
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True).stdout.strip()


def test_missing_extra_names_the_pip_command(tmp_path: Path) -> None:
    assert _convert_without("pypdf", make_pdf(tmp_path / "needs.pdf", ["text"])) == (
        "missing_extra :: Reading needs.pdf (PDF) needs the optional document converters, which are "
        "not installed: pip install 'victor_gui[documents]'.")
    aes = make_pdf(tmp_path / "aes.pdf", ["readable"], password="")  # AES, empty user password
    assert _convert_without("cryptography", aes) == (
        "missing_extra :: Opening aes.pdf (an encrypted PDF) needs the cryptography package, which is "
        "not installed: pip install 'victor_gui[documents]'.")


def test_cancel_between_pages_stops_the_conversion(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "long.pdf", [f"page {i}" for i in range(30)])
    calls: list[int] = []
    with pytest.raises(AttachmentError) as caught:
        convert_document(path, progress=lambda done, total: calls.append(done),
                         cancelled=lambda: len(calls) >= 3)
    assert caught.value.reason == "cancelled" and "long.pdf" in str(caught.value)
    assert calls == [0, 1, 2]
