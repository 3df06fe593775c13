"""A read-only rich-text view as tall as its document, with cheap appends at the end.

Used for message bodies (one per piece of a long message) and the reasoning box: the
transcript scrolls, not each text.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QResizeEvent, QTextCursor, QTextDocument, QTextOption
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser, QWidget

# Longest run of streamed text kept in one displayed paragraph (see AutoHeightText.append_plain).
SOFT_BLOCK_CHARS = 600
DOCUMENT_MARGIN = 2


class AutoHeightText(QTextBrowser):
    """A read-only text view as tall as its document (the transcript scrolls, not each message)."""

    def __init__(self, parent: QWidget | None = None, *, max_height: int | None = None) -> None:
        super().__init__(parent)
        self._max_height = max_height  # beyond it the view scrolls (the reasoning box)
        # Links are handled here: copy:N copies code block N, anything else opens outside.
        self.setOpenLinks(False)
        self.copy_requested: Callable[[int], None] | None = None
        self.anchorClicked.connect(self._link)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._adopt(self.document())

    def _link(self, url: QUrl) -> None:
        if url.scheme() == "copy":
            if self.copy_requested is not None and url.path().isdigit():
                self.copy_requested(int(url.path()))
        elif url.scheme() in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)

    def _adopt(self, doc: QTextDocument) -> None:
        doc.setDocumentMargin(DOCUMENT_MARGIN)  # Qt skips it when already set
        doc.documentLayout().documentSizeChanged.connect(self._fit)
        self._cursor = QTextCursor(doc)
        self._cursor.movePosition(QTextCursor.MoveOperation.End)
        self._block_len = self._cursor.block().length()
        self._fit()

    def set_html_document(self, html: str) -> None:
        """Show ``html``: parsed into a detached document (cheap), then swapped in, so the only
        work on screen is one layout pass."""
        doc = QTextDocument(self)
        # The margin is set before the document has a layout: set after (in _adopt) it cost a
        # second full layout pass of every rendered piece.
        doc.setDocumentMargin(DOCUMENT_MARGIN)
        doc.setDefaultFont(self.font())
        doc.setDefaultStyleSheet(self.document().defaultStyleSheet())
        doc.setHtml(html)
        old = self.document()
        ours = old.parent() is self  # a document from an earlier render (else Qt's own, which
        self.setDocument(doc)        # setDocument deletes itself)
        self._adopt(doc)
        if ours:
            old.deleteLater()

    def _fit(self, *_: object) -> None:
        height = int(self.document().size().height()) + 2 * self.frameWidth() + 2
        if self._max_height is not None and height > self._max_height:
            height = self._max_height
            self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        if height != self.height():
            self.setFixedHeight(max(height, 20))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def append_plain(self, text: str) -> None:
        """Append ``text`` at the end without touching what is already laid out.

        Qt lays a paragraph (block) out whole, so appending to one that grows without a newline
        (minified JSON, a model repeating itself) would cost more every frame and end in a
        frozen window. Past :data:`SOFT_BLOCK_CHARS` the display starts a new block at the next
        space; the text itself (``MessageView.text``, the history, copies) is unchanged, and the
        final Markdown render joins the lines again (a line too long for Markdown stays split).
        """
        cursor = self._cursor
        cursor.movePosition(QTextCursor.MoveOperation.End)
        while text:
            room = max(SOFT_BLOCK_CHARS - self._block_len, 0)
            if len(text) <= room:
                head = text
            else:  # fill the block up to the first space past the room (hard cut if none soon)
                cut = text.find(" ", room)
                if cut < 0 or cut > room + SOFT_BLOCK_CHARS:
                    cut = room + SOFT_BLOCK_CHARS
                head = text[: cut + 1]
            cursor.insertText(head)
            text = text[len(head):]
            newline = head.rfind("\n")
            self._block_len = len(head) - newline - 1 if newline >= 0 else self._block_len + len(head)
            if self._block_len >= SOFT_BLOCK_CHARS and (text or head[-1:].isspace()):
                cursor.insertBlock()
                self._block_len = 0

    def drop_plain_prefix(self, text: str) -> bool:
        """Take ``text`` out of the start of a document of plain text appended by
        :meth:`append_plain` (its own line breaks and the soft ones it added); False, and
        nothing changed, when the document does not start with it or holds nothing after it."""
        doc = self.document()
        block, at = doc.begin(), 0
        while at < len(text):
            line = block.text()
            if not block.isValid() or not text.startswith(line, at):
                return False
            at += len(line)
            if at < len(text) and text[at] == "\n":
                at += 1  # a line break of the text, else a soft one (no character of the text)
            block = block.next()
        if at != len(text) or not block.isValid():
            return False
        cursor = QTextCursor(doc)
        cursor.setPosition(block.position(), QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        return True

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self.height())
