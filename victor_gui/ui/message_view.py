"""One message of the transcript: header, collapsible reasoning, tool calls, body, stats, error.

The body is an :class:`AutoHeightText` with its own document; streaming appends insert at the
end with a QTextCursor, so a long reply is never re-laid-out from the top per token.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QDesktopServices,
    QGuiApplication,
    QResizeEvent,
    QTextCursor,
    QTextDocument,
    QTextOption,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QPushButton,
    QSizePolicy,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from victor_gui.ui.widgets.wrap_label import WrapLabel

# Longest run of streamed text kept in one displayed paragraph (see AutoHeightText.append_plain).
SOFT_BLOCK_CHARS = 600
# A reply with a line longer than this (minified JSON, a runaway repetition) stays plain text:
# rendered as Markdown it would become one paragraph that Qt lays out whole, a visible stall,
# and Markdown adds nothing to such a line anyway.
MARKDOWN_MAX_LINE = 8000


def markdown_worthy(text: str) -> bool:
    """Whether ``text`` should be shown as Markdown (see :data:`MARKDOWN_MAX_LINE`)."""
    return bool(text.strip()) and max(map(len, text.split("\n"))) <= MARKDOWN_MAX_LINE


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
        doc.setDocumentMargin(2)
        doc.documentLayout().documentSizeChanged.connect(self._fit)
        self._cursor = QTextCursor(doc)
        self._cursor.movePosition(QTextCursor.MoveOperation.End)
        self._block_len = self._cursor.block().length()
        self._fit()

    def set_html_document(self, html: str) -> None:
        """Show ``html``: parsed into a detached document (cheap), then swapped in, so the only
        work on screen is one layout pass."""
        doc = QTextDocument(self)
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

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self.height())


class MessageView(QFrame):
    """One message: a header, reasoning (collapsible), tool calls, the body, stats, an error row."""

    retry_requested = Signal()
    edit_requested = Signal()  # a user message: put it back in the input to edit and resend
    regenerate_requested = Signal()  # the last reply: answer the last user message again

    def __init__(self, role: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.message_id: int | None = None  # the store row shown here, once known
        self.setObjectName("userMessage" if role == "user" else "assistantMessage")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(3)

        # Header, tool calls, stats and error wrap, long words included (WrapLabel): in a narrow
        # window a long model name must not widen the transcript past its view.
        self.header = WrapLabel(title)
        self.header.setObjectName("messageHeader")
        header_row = QHBoxLayout()
        header_row.setContentsMargins(0, 0, 0, 0)
        header_row.addWidget(self.header, 1)
        self.edit_button = QToolButton()
        self.edit_button.setText("Edit")
        self.edit_button.setAccessibleName("Edit and resend this message")
        self.edit_button.clicked.connect(self.edit_requested)
        self.edit_button.hide()
        self.regenerate_button = QToolButton()
        self.regenerate_button.setText("Regenerate")
        self.regenerate_button.setAccessibleName("Regenerate this reply")
        self.regenerate_button.clicked.connect(self.regenerate_requested)
        self.regenerate_button.hide()
        header_row.addWidget(self.edit_button)
        header_row.addWidget(self.regenerate_button)
        layout.addLayout(header_row)

        self.reasoning_toggle = QToolButton()
        self.reasoning_toggle.setCheckable(True)
        self.reasoning_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.reasoning_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.reasoning_toggle.setText("Reasoning")
        self.reasoning_toggle.setAccessibleName("Show or hide the model's reasoning")
        self.reasoning_toggle.toggled.connect(self._toggle_reasoning)
        self.reasoning_toggle.hide()
        layout.addWidget(self.reasoning_toggle)
        self.reasoning_view = AutoHeightText(max_height=160)
        self.reasoning_view.setObjectName("reasoning")
        self.reasoning_view.setAccessibleName("Model reasoning")
        self.reasoning_view.hide()
        layout.addWidget(self.reasoning_view)

        self.tools_label = WrapLabel()
        self.tools_label.setObjectName("toolCalls")
        self.tools_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tools_label.hide()
        layout.addWidget(self.tools_label)

        self.body = AutoHeightText()
        self.body.copy_requested = self.copy_code_block
        self.body.setAccessibleName("Assistant reply" if role == "assistant" else "Your message")
        layout.addWidget(self.body)

        self.stats_label = WrapLabel()
        self.stats_label.setObjectName("messageStats")
        self.stats_label.hide()
        layout.addWidget(self.stats_label)

        error_row = QHBoxLayout()
        self.error_label = WrapLabel()
        self.error_label.setObjectName("messageError")
        self.retry_button = QPushButton("Retry")
        self.retry_button.setAccessibleName("Retry this reply")
        self.retry_button.clicked.connect(self.retry_requested)
        error_row.addWidget(self.error_label, 1)
        error_row.addWidget(self.retry_button)
        self.error_label.hide()
        self.retry_button.hide()
        layout.addLayout(error_row)
        self._parts: list[str] = []
        self._length = 0
        self._reasoning_chars = 0

    # -- content --------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The body text as received (before Markdown rendering)."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def text_length(self) -> int:
        return self._length

    def append_content(self, text: str) -> None:
        if text:
            self._parts.append(text)
            self._length += len(text)
            self.body.append_plain(text)

    def replace_content(self, text: str) -> None:
        """Show ``text`` instead of the body so far (an edited message)."""
        self.body.clear()
        self.body._block_len = 0
        self._parts.clear()
        self._length = 0
        self.append_content(text)

    def append_reasoning(self, text: str) -> None:
        if not text:
            return
        if self.reasoning_toggle.isHidden():
            self.reasoning_toggle.show()
        self.reasoning_view.append_plain(text)
        self._reasoning_chars += len(text)
        self.reasoning_toggle.setText(f"Reasoning ({self._reasoning_chars} chars)")

    @property
    def reasoning_text(self) -> str:
        return self.reasoning_view.toPlainText()

    def _toggle_reasoning(self, shown: bool) -> None:
        self.reasoning_view.setVisible(shown)
        self.reasoning_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def set_tool_calls(self, lines: list[str]) -> None:
        self.tools_label.setText("\n".join(f"🔧 {line}" for line in lines))
        self.tools_label.setVisible(bool(lines))

    def set_actions(self, *, edit: bool = False, regenerate: bool = False) -> None:
        """Show the Edit (user message) and Regenerate (last reply) buttons."""
        self.edit_button.setVisible(edit)
        self.regenerate_button.setVisible(regenerate)

    def set_stats(self, text: str) -> None:
        self.stats_label.setText(text)
        self.stats_label.setVisible(bool(text))

    def set_error(self, text: str | None, *, retry: bool = True) -> None:
        self.error_label.setText(text or "")
        self.error_label.setVisible(bool(text))
        self.retry_button.setVisible(bool(text) and retry)

    def copy_code_block(self, index: int) -> None:
        """Put code block ``index`` of this message on the clipboard (the Copy link above it)."""
        from victor_gui.services.markdown_render import code_blocks

        blocks = code_blocks(self.text)
        if 0 <= index < len(blocks):
            QGuiApplication.clipboard().setText(blocks[index])

    def render_markdown(self) -> None:
        """Replace the streamed plain text by its Markdown rendering (once, at the end)."""
        from victor_gui.services.markdown_render import markdown_to_html  # imported after first paint

        text = self.text
        if markdown_worthy(text):
            self._show_html(text, markdown_to_html(text))

    async def render_markdown_async(self) -> None:
        """:meth:`render_markdown` with the Markdown parsed in a worker thread (long replies take
        milliseconds to parse; the window keeps painting meanwhile)."""
        import asyncio

        import shiboken6

        from victor_gui.services.markdown_render import markdown_to_html

        text = self.text
        if not markdown_worthy(text):
            return
        html = await asyncio.to_thread(markdown_to_html, text)
        if shiboken6.isValid(self) and self.text == text:  # still shown, nothing appended since
            self._show_html(text, html)

    def _show_html(self, text: str, html: str) -> None:
        self.body.set_html_document(html)
        if text[-1:].isspace():
            # Markdown drops the trailing space or newline; streamed text appended after a live
            # render would otherwise be glued to the last word.
            self.body.append_plain(" ")
