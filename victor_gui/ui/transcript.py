"""The conversation as a column of message views.

Each :class:`~victor_gui.ui.message_view.MessageView` owns its own text document, so streaming
appends touch only the last message: ``append_content`` inserts at the end with a QTextCursor
(never a ``setText`` of the whole reply). When a reply ends it is rendered once as Markdown.
Reasoning lives in its own collapsible box and never mixes into the answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from victor_gui.ui.message_view import MessageView


# How long a search hit is kept in view while the messages above it finish rendering.
ANCHOR_SETTLE_S = 1.5


class Transcript(QScrollArea):
    """The scrolling column of messages. Keeps the view pinned to the bottom while it is there.

    A stored chat is shown a page at a time: ``earlier_requested`` asks the chat pane for the
    page before the first one shown (the "Show earlier messages" button at the top).
    """

    earlier_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setAccessibleName("Conversation")
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._inner = QWidget()
        self._inner.setObjectName("transcriptInner")
        self._layout = QVBoxLayout(self._inner)
        self._layout.setContentsMargins(8, 8, 8, 8)
        self._layout.setSpacing(8)
        self.empty_state = QLabel("")
        self.empty_state.setObjectName("emptyState")
        self.empty_state.setWordWrap(True)
        self.empty_state.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_state.setContentsMargins(40, 140, 40, 20)
        self.earlier_button = QPushButton("Show earlier messages")
        self.earlier_button.setAccessibleName("Show earlier messages")
        self.earlier_button.clicked.connect(self.earlier_requested)
        self.earlier_button.hide()
        # [earlier button, empty state, items..., stretch]: messages start at the top.
        self._layout.addWidget(self.earlier_button)
        self._layout.addWidget(self.empty_state)
        self._layout.addStretch(1)
        self.setWidget(self._inner)
        self.messages: list[MessageView] = []
        self.notes: list[QLabel] = []
        self.items: list[QWidget] = []  # other widgets in the column: tool-call blocks, approval prompts
        self._pinned = True
        self._anchor: QWidget | None = None  # a search hit kept in view while the column settles
        self._anchor_until = 0.0
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._remember_pin)
        bar.rangeChanged.connect(self._follow)

    def add_message(self, role: str, title: str, text: str = "",
                    on_retry: Callable[[], None] | None = None) -> MessageView:
        # Imported on the first message: its widget classes are not needed for the first paint.
        from victor_gui.ui.message_view import MessageView

        view = MessageView(role, title)
        if on_retry is not None:
            view.retry_requested.connect(on_retry)
        view.append_content(text)
        self.empty_state.hide()
        self._layout.insertWidget(self._layout.count() - 1, view)
        self.messages.append(view)
        self._pinned = True
        QTimer.singleShot(0, self, self._scroll_to_end)  # context: dropped if we are deleted
        return view

    def make_message(self, role: str, title: str, text: str = "") -> MessageView:
        """A message view not yet placed (see :meth:`insert_items`)."""
        from victor_gui.ui.message_view import MessageView

        view = MessageView(role, title)
        view.append_content(text)
        return view

    def make_note(self, text: str) -> QLabel:
        """A one-line note (a switch of model, a trimmed history) not yet placed."""
        from victor_gui.ui.widgets.wrap_label import WrapLabel

        note = WrapLabel(text)  # names a model: long ones wrap rather than widen the column
        note.setObjectName("transcriptNote")
        note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        note.setAccessibleName("Note")
        return note

    def add_note(self, text: str, before: QWidget | None = None) -> QLabel:
        """Show a note at the end, or just before ``before`` (the reply now streaming)."""
        note = self.make_note(text)
        index = self._layout.indexOf(before) if before is not None else -1
        self._layout.insertWidget(index if index >= 0 else self._layout.count() - 1, note)
        self.notes.append(note)
        self.empty_state.hide()
        return note

    def add_item(self, widget: QWidget) -> None:
        """Place another kind of widget (a tool-call block, an approval prompt) at the end."""
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self.items.append(widget)
        self.empty_state.hide()
        self._pinned = True

    def remove_item(self, widget: QWidget) -> None:
        """Take out a widget placed by :meth:`add_item` (an answered or cancelled prompt)."""
        if widget in self.items:
            self.items.remove(widget)
            self._layout.removeWidget(widget)
            widget.deleteLater()

    def insert_items(self, items: list[QWidget], *, at_top: bool) -> None:
        """Place message views, notes and tool-call blocks in order, at the top (an earlier
        page) or the end."""
        from victor_gui.ui.message_view import MessageView

        index = 2 if at_top else self._layout.count() - 1
        views = [w for w in items if isinstance(w, MessageView)]
        for offset, item in enumerate(items):
            self._layout.insertWidget(index + offset, item)
            if isinstance(item, QLabel):
                self.notes.append(item)
            elif not isinstance(item, MessageView):
                self.items.append(item)
        self.messages = [*views, *self.messages] if at_top else [*self.messages, *views]
        if items:
            self.empty_state.hide()

    def scroll_to(self, widget: QWidget) -> None:
        """Bring ``widget`` near the top of the view and keep it there while the column is
        still settling (replies render their Markdown after a chat opens, which grows the
        messages above it: one scroll at open left the view far from the hit)."""
        self._pinned = False
        self._anchor = widget
        self._anchor_until = time.monotonic() + ANCHOR_SETTLE_S
        QTimer.singleShot(0, self, self._to_anchor)

    def highlight(self, widget: QWidget | None) -> None:
        """Mark ``widget`` as the search hit (one at a time; ``None`` clears)."""
        for view in [*self.messages, *self.items]:
            if view.property("searchHit") and view is not widget:
                view.setProperty("searchHit", False)
                view.style().unpolish(view)
                view.style().polish(view)
        if widget is not None:
            widget.setProperty("searchHit", True)
            widget.style().unpolish(widget)
            widget.style().polish(widget)

    def _to_anchor(self) -> None:
        anchor = self._anchor
        placed = anchor is not None and self._layout.indexOf(anchor) >= 0
        if anchor is None or not placed or time.monotonic() > self._anchor_until:
            self._anchor = None
            return
        y = anchor.mapTo(self._inner, QPoint(0, 0)).y()
        self.verticalScrollBar().setValue(max(0, y - 40))

    def remove_after(self, widget: QWidget) -> None:
        """Remove every message and note below ``widget`` (regenerate, edit and resend)."""
        index = self._layout.indexOf(widget)
        if index < 0:
            return
        below = [self._layout.itemAt(i) for i in range(index + 1, self._layout.count())]
        for item in [b.widget() for b in below if b is not None]:
            if item in self.messages:
                self.remove_message(item)
            elif item in self.notes:
                self.notes.remove(item)
                self._layout.removeWidget(item)
                item.deleteLater()
            elif item in self.items:
                self.remove_item(item)

    def remove_message(self, view: MessageView) -> None:
        if view in self.messages:
            self.messages.remove(view)
            self._layout.removeWidget(view)
            view.deleteLater()
        self.empty_state.setVisible(not self.messages)

    def set_empty_text(self, text: str) -> None:
        """What the empty transcript says (a greeting, or what to do when nothing answers)."""
        self.empty_state.setText(text)

    def clear(self) -> None:
        self._anchor = None
        for view in list(self.messages):
            self.remove_message(view)
        for note in self.notes:
            self._layout.removeWidget(note)
            note.deleteLater()
        self.notes.clear()
        for item in list(self.items):
            self.remove_item(item)
        self.earlier_button.hide()

    def _remember_pin(self, value: int) -> None:
        self._pinned = value >= self.verticalScrollBar().maximum() - 4

    def _follow(self, _min: int, _max: int) -> None:
        if self._anchor is not None:
            self._to_anchor()
        elif self._pinned:
            self._scroll_to_end()

    def _scroll_to_end(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())
