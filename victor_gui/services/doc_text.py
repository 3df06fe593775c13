"""Text-like files to sections: plain text and source code, Markdown, CSV, HTML.

Decoding (:func:`read_text`), in order:

1. a byte-order mark: UTF-8, UTF-16 or UTF-32 (LE/BE);
2. no mark but the NUL-byte pattern of UTF-16 (every other byte zero in the first 4 KB);
3. an HTML ``<meta charset>`` (HTML only);
4. UTF-8, strictly;
5. if that fails anywhere in the file: **Windows-1252** (cp1252), which covers Latin-1's
   printable range plus the curly quotes, dashes and euro sign that real Western files carry,
   with a warning on the document that says so (never silently garbled: the chip and the
   transcript show the warning). The five bytes cp1252 leaves undefined show as U+FFFD.

The file is read in 1 MiB blocks through an incremental decoder, hashed on the way, with
progress and cancel between blocks; line ends become ``\\n``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from pathlib import Path

from victor_gui.services.attachment_types import DocumentSection
from victor_gui.services.doc_job import (
    MAX_TABLE_COLUMNS,
    MAX_TABLE_ROWS,
    TABLE_ROWS_PER_SECTION,
    ConvertJob,
)

BLOCK_BYTES = 1024 * 1024
FALLBACK_ENCODING = "cp1252"

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)


def sniff_encoding(head: bytes) -> tuple[str | None, int]:
    """The encoding a file's first bytes announce (BOM or UTF-16's NUL pattern) and the BOM's
    length; ``(None, 0)`` when they announce nothing (then UTF-8 is tried, then the fallback)."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec, len(bom)
    sample = head[:4096]
    if len(sample) >= 16:
        even_zero = sample[0::2].count(0) / (len(sample) / 2)
        odd_zero = sample[1::2].count(0) / (len(sample) / 2)
        if odd_zero > 0.4 and even_zero < 0.05:
            return "utf-16-le", 0
        if even_zero > 0.4 and odd_zero < 0.05:
            return "utf-16-be", 0
    return None, 0


def html_declared_charset(head: bytes) -> str | None:
    """The charset an HTML file's ``<meta>`` declares in its first bytes, when Python knows it."""
    match = _META_CHARSET.search(head[:4096])
    if not match:
        return None
    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None


class _Decoded:
    """What :func:`read_text` returns: the text, the SHA-256 of the bytes, the encoding used."""

    __slots__ = ("encoding", "sha256", "text")

    def __init__(self, text: str, sha256: str, encoding: str) -> None:
        self.text = text
        self.sha256 = sha256
        self.encoding = encoding


def _decode_pass(path: Path, job: ConvertJob, codec: str, skip: int, errors: str, total: int) -> _Decoded:
    decoder = codecs.getincrementaldecoder(codec)(errors=errors)
    digest = hashlib.sha256()
    parts: list[str] = []
    carry = ""
    done = 0
    job.chars = 0
    with path.open("rb") as fh:
        while True:
            job.step(done, total)
            block = fh.read(BLOCK_BYTES)
            final = not block
            digest.update(block)
            if done == 0 and skip:
                block = block[skip:]
            done += len(block) + (skip if done == 0 else 0)
            piece = carry + decoder.decode(block, final=final)
            carry = ""
            if piece.endswith("\r") and not final:
                carry, piece = "\r", piece[:-1]  # its "\n" may open the next block
            parts.append(job.add_text(piece.replace("\r\n", "\n").replace("\r", "\n")))
            if final:
                break
    job.step(total, total)
    return _Decoded("".join(parts), digest.hexdigest(), codec)


def read_text(path: Path, job: ConvertJob, *, total: int, declared: str | None = None) -> _Decoded:
    """The file's text (module docstring: the decoding order); warns on ``job`` when it falls back."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    codec, skip = sniff_encoding(head)
    if codec is None and declared is not None and declared not in ("utf-8", "ascii"):
        codec = declared
    if codec is not None:
        try:
            return _decode_pass(path, job, codec, skip, "strict", total)
        except UnicodeDecodeError:
            job.warnings.append(f"{job.name} has bytes that are not valid {codec}; they show as �.")
            return _decode_pass(path, job, codec, skip, "replace", total)
    try:
        return _decode_pass(path, job, "utf-8", 0, "strict", total)
    except UnicodeDecodeError:
        job.warnings.append(
            f"{job.name} is not UTF-8; it was read as Windows-1252 (Western European), so letters "
            "of other languages may show wrong. Save it as UTF-8 for an exact reading.")
        return _decode_pass(path, job, FALLBACK_ENCODING, 0, "replace", total)


def looks_binary(head: bytes) -> bool:
    """Whether a file's first bytes are binary rather than text (NUL bytes, not UTF-16/32)."""
    codec, _ = sniff_encoding(head)
    if codec is not None and codec != "utf-8":
        return False
    sample = head[:4096]
    if b"\0" in sample:
        return True
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return bool(sample) and controls / len(sample) > 0.1


# -- Markdown ------------------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def squeeze_blank_lines(text: str) -> str:
    """``text`` with runs of blank lines made one blank line."""
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def markdown_sections(text: str) -> list[DocumentSection]:
    """Markdown split at its ``#`` headings (not inside code fences), each ``§ Heading``."""
    sections: list[DocumentSection] = []
    locator = ""
    lines: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        fence_match = _FENCE.match(line)
        if fence_match:
            mark = fence_match.group(1)
            if fence is None:
                fence = mark[0]
            elif mark[0] == fence:
                fence = None
        heading = _ATX.match(line) if fence is None else None
        if heading:
            _flush(sections, lines, locator)
            lines = []
            locator = f"§ {heading.group(2)}"
        lines.append(line)
    _flush(sections, lines, locator)
    return sections


def _flush(sections: list[DocumentSection], lines: list[str], locator: str) -> None:
    text = "\n".join(lines).strip("\n")
    if text.strip():
        sections.append(DocumentSection(text=text, locator=locator))


# -- tables (CSV here, XLSX in doc_office) ------------------------------------------------------


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return text.replace("|", "\\|").strip()


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown (GFM) table; ``|`` in cells escaped, line breaks made spaces, ragged rows padded."""
    head = [_cell(v) for v in header]
    body = [[_cell(v) for v in row] for row in rows]
    width = max([len(head), *(len(r) for r in body)]) if head or body else 0
    head += [""] * (width - len(head))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r + [""] * (width - len(r))) + " |" for r in body]
    return "\n".join(lines)


def table_sections(rows: Iterable[Sequence[object]], job: ConvertJob, *, where: str,
                   total_rows: int | None = None) -> list[DocumentSection]:
    """Rows (the first is the header) as Markdown tables of :data:`TABLE_ROWS_PER_SECTION` rows,
    the header repeated in each; located ``where`` (plus ``rows a-b`` past one section; only
    ``rows a-b`` when ``where`` is empty). At most
    :data:`MAX_TABLE_ROWS` rows and :data:`MAX_TABLE_COLUMNS` columns, with a warning past them."""
    header: list[object] | None = None
    batch: list[list[object]] = []
    batches: list[tuple[int, list[list[object]]]] = []
    kept = 0
    cut_columns = False
    more = False
    first = 1
    for raw in rows:
        row = list(raw)
        while row and (row[-1] is None or row[-1] == ""):
            row.pop()
        if not row:
            continue
        if len(row) > MAX_TABLE_COLUMNS:
            row, cut_columns = row[:MAX_TABLE_COLUMNS], True
        if header is None:
            header = row
            continue
        if kept >= MAX_TABLE_ROWS:
            more = True
            break
        batch.append(row)
        kept += 1
        if len(batch) == TABLE_ROWS_PER_SECTION:
            batches.append((first, batch))
            first, batch = first + len(batch), []
            job.check()
    if batch or (header is not None and not batches):
        batches.append((first, batch))
    place = f", {where}" if where else ""
    if more:
        of = f" of {total_rows}" if total_rows else ""
        job.warnings.append(f"{job.name}{place}: only the first {MAX_TABLE_ROWS} rows{of} were kept.")
    if cut_columns:
        job.warnings.append(f"{job.name}{place}: only the first {MAX_TABLE_COLUMNS} columns were kept.")
    sections = []
    for start, group in batches:
        end = start + max(len(group), 1) - 1
        span = f"row {start}" if end == start else f"rows {start}-{end}"
        if not where:
            locator = span
        else:
            locator = where if len(batches) == 1 else f"{where}, {span}"
        sections.append(DocumentSection(text=job.add_text(markdown_table(header or [], group)),
                                        locator=locator))
    return sections


def csv_sections(text: str, job: ConvertJob) -> list[DocumentSection]:
    """A CSV (or TSV) text as Markdown tables; the delimiter sniffed from its start."""
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    csv.field_size_limit(1024 * 1024)
    try:
        return table_sections(csv.reader(io.StringIO(text), dialect), job, where="")
    except csv.Error as exc:
        raise job.error(f"{job.name} is not a readable CSV file ({exc}).", "broken") from exc


# -- HTML -------------------------------------------------------------------------------------

_DROP = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object", "head"})
_BLOCK = frozenset({"p", "div", "br", "li", "tr", "section", "article", "header", "footer", "pre",
                    "table", "ul", "ol", "blockquote", "hr", "dt", "dd", "main", "nav", "aside",
                    "figure", "figcaption", "form", "title", "h1", "h2", "h3", "h4", "h5", "h6"})
_LINE_ONLY = frozenset({"li", "tr", "br", "dt", "dd", "figcaption", "title"})  # no blank line after
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


class _HtmlText(HTMLParser):
    """The visible text of an HTML page in sections at its headings (script/style/head dropped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[DocumentSection] = []
        self._locator = ""
        self._lines: list[str] = []
        self._line: list[str] = []
        self._drop = 0
        self._pre = 0
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            self._drop += 1
            return
        if tag == "pre":
            self._pre += 1
        if tag in _HEADINGS:
            self._end_line()
            _flush(self.sections, self._lines, self._locator)
            self._lines = []
            self._heading = []
        elif tag in _BLOCK:
            self._end_line(blank=tag not in _LINE_ONLY)
        if tag == "li":
            self._line.append("- ")
        elif tag in ("td", "th") and self._line:
            self._line.append(" | ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self._end_line(blank=tag not in _LINE_ONLY)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self._drop = max(0, self._drop - 1)
            return
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _HEADINGS and self._heading is not None:
            title = " ".join("".join(self._heading).split())
            self._heading = None
            self._locator = f"§ {title}" if title else self._locator
            if title:
                self._lines.append("#" * int(tag[1]) + " " + title)
            self._line = []
        elif tag in _BLOCK:
            self._end_line(blank=tag not in _LINE_ONLY)

    def handle_data(self, data: str) -> None:
        if self._drop:
            return
        if self._heading is not None:
            self._heading.append(data)
            return
        if self._pre:
            parts = data.split("\n")
            self._line.append(parts[0])
            for part in parts[1:]:
                self._end_line(keep=True)
                self._line.append(part)
        else:
            self._line.append(re.sub(r"\s+", " ", data))

    def _end_line(self, keep: bool = False, blank: bool = False) -> None:
        """End the line being built; ``blank`` adds a blank line after it (a paragraph's end)."""
        line = "".join(self._line)
        self._line = []
        line = line.rstrip() if (keep or self._pre) else line.strip()
        if line or keep:
            self._lines.append(line)
        if blank and self._lines and self._lines[-1] != "":
            self._lines.append("")

    def finish(self) -> list[DocumentSection]:
        self.close()
        self._end_line()
        _flush(self.sections, self._lines, self._locator)
        return [DocumentSection(text=squeeze_blank_lines(s.text), locator=s.locator) for s in self.sections]


def html_sections(text: str, job: ConvertJob) -> list[DocumentSection]:
    """An HTML page's visible text, in sections at its ``h1``-``h6`` headings (``§ Heading``)."""
    parser = _HtmlText()
    step = BLOCK_BYTES
    for start in range(0, len(text), step):
        job.step(start, len(text))
        parser.feed(text[start:start + step])
    return parser.finish()
