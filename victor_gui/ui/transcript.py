"""The conversation as a column of message views.

Each :class:`~victor_gui.ui.message_view.MessageView` owns its own text document, so streaming
appends touch only the last message: ``append_content`` inserts at the end with a QTextCursor
(never a ``setText`` of the whole reply). When a reply ends it is rendered once as Markdown.
Reasoning lives in its own collapsible box and never mixes into the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from victor_gui.ui.message_view import MessageView


class Transcript(QScrollArea):
    """The scrolling column of messages. Keeps the view pinned to the bottom while it is there."""

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
        # [empty state, messages..., stretch]: messages start at the top.
        self._layout.addWidget(self.empty_state)
        self._layout.addStretch(1)
        self.setWidget(self._inner)
        self.messages: list[MessageView] = []
        self._pinned = True
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
        for view in list(self.messages):
            self.remove_message(view)

    def _remember_pin(self, value: int) -> None:
        self._pinned = value >= self.verticalScrollBar().maximum() - 4

    def _follow(self, _min: int, _max: int) -> None:
        if self._pinned:
            self._scroll_to_end()

    def _scroll_to_end(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())
