"""One conversion in progress: the file's name, the limits, progress and cancel, the warnings.

Every format reader (:mod:`~victor_gui.services.doc_text`, :mod:`~victor_gui.services.doc_office`)
gets a :class:`ConvertJob` and calls :meth:`ConvertJob.step` between pages/blocks, which reports
progress, stops at once when cancelled and enforces the text budget, so the rules live in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from victor_gui.errors import AttachmentError

ProgressFn = Callable[[int, int], None]
CancelledFn = Callable[[], bool]

# Input size past which a file is refused before any byte is parsed.
#
# * Text-like files (text, code, Markdown, CSV, HTML): 32 MiB. That is ~8 million tokens, already
#   8x the largest context windows on offer and hours of embedding on a local server; a 200 MB log
#   is refused at once from its size alone (a stat, no read) rather than converted for nothing.
# * Office files and PDF: 100 MiB. Their parsers hold the whole file and a tree many times its
#   size (python-docx's lxml tree, pypdf's object table); past 100 MiB that is gigabytes.
MAX_TEXT_FILE_BYTES = 32 * 1024 * 1024
MAX_BINARY_FILE_BYTES = 100 * 1024 * 1024
# Extracted text past which conversion stops (a small zip can inflate to a huge text): 32 M chars.
MAX_TEXT_CHARS = 32 * 1024 * 1024
# The parts of an Office (zip) file, uncompressed, together: beyond this is a zip bomb or a
# document far past MAX_TEXT_CHARS anyway.
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
# Rows of a sheet (XLSX) or CSV turned into a Markdown table; the rest is left out with a note.
MAX_TABLE_ROWS = 5000
# Rows per section of a table, so retrieval can point at "sheet Sales, rows 201-400".
TABLE_ROWS_PER_SECTION = 200
# Columns kept per row (a sheet 16384 columns wide is not a table anyone reads).
MAX_TABLE_COLUMNS = 64


def _size_words(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"


@dataclass
class ConvertJob:
    """The state of converting one file (owned by the reader running it, never shared)."""

    name: str
    progress: ProgressFn | None = None
    cancelled: CancelledFn | None = None
    warnings: list[str] = field(default_factory=list)
    chars: int = 0

    def check(self) -> None:
        """Stop at once (``cancelled``) if the user cancelled."""
        if self.cancelled is not None and self.cancelled():
            raise AttachmentError(f"Converting {self.name} was cancelled.", reason="cancelled",
                                  name=self.name)

    def step(self, done: int, total: int) -> None:
        """Between two pages/blocks: stop if cancelled, else report ``done`` of ``total``."""
        self.check()
        if self.progress is not None:
            self.progress(done, total)

    def add_text(self, text: str) -> str:
        """Count ``text`` against :data:`MAX_TEXT_CHARS` (too_large past it) and return it."""
        self.chars += len(text)
        if self.chars > MAX_TEXT_CHARS:
            raise self.error(
                f"{self.name} has more than {MAX_TEXT_CHARS // (1024 * 1024)} million characters of "
                "text, more than any model can read at once; split it or attach the part you need.",
                "too_large")
        return text

    def error(self, sentence: str, reason: str) -> AttachmentError:
        """An :class:`AttachmentError` for this file (``sentence`` already names it)."""
        return AttachmentError(sentence, reason=reason, name=self.name)

    def too_large(self, size: int, limit: int, what: str) -> AttachmentError:
        """The refusal of a file past a size limit, with both figures."""
        return self.error(
            f"{self.name} is {_size_words(size)}, over the {_size_words(limit)} limit for {what}; "
            "split it or attach the part you need.", "too_large")
