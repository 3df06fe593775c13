"""A word-wrapping label that also wraps inside long words (model names, URLs, paths).

QLabel's word wrap breaks only at word boundaries, so one long word (``hf.co/org/Model-32B-
Instruct-GGUF:Q4_K_M``) sets the label's minimum width, and in a scroll area that forces the
whole column wider than the view: text clipped at the right edge. :class:`WrapLabel` shows the
text with zero-width spaces inserted inside long words (after separators, else every
:data:`BREAK_RUN` characters) while :meth:`WrapLabel.text` still returns the text as given, so
callers and tests see no difference.
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

ZWSP = "\u200b"
# A run of visible characters longer than this gets break opportunities.
BREAK_RUN = 16
_SEPARATOR = re.compile(r"[/\\:_.\-@=,&?]")
_LONG_WORD = re.compile(rf"\S{{{BREAK_RUN + 1},}}")


def _break_word(match: re.Match[str]) -> str:
    word = _SEPARATOR.sub(lambda s: s.group(0) + ZWSP, match.group(0))
    # A piece between separators that is still too long is cut every BREAK_RUN characters.
    return ZWSP.join(piece[i:i + BREAK_RUN] for piece in word.split(ZWSP)
                     for i in range(0, len(piece), BREAK_RUN))


def breakable(text: str) -> str:
    """``text`` with zero-width spaces where a long word may wrap (short words untouched)."""
    return _LONG_WORD.sub(_break_word, text)


class WrapLabel(QLabel):
    """A plain-text, word-wrapping QLabel whose long words wrap too (see the module doc)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)  # model output is never markup here
        self._plain = ""
        self.setText(text)

    def setText(self, text: str) -> None:
        """Show ``text``, wrappable anywhere in long words."""
        self._plain = text
        super().setText(breakable(text))

    def text(self) -> str:
        """The text as given to :meth:`setText` (without the inserted break opportunities)."""
        return self._plain
