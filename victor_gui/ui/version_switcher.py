"""The "‹ 2/3 ›" switcher a message shows when it has other versions (Regenerate, Edit).

It only says which version is shown and asks for another (:attr:`VersionSwitcher.chosen` with
that version's message id); the chat pane stores the choice and redraws the chat from there
(see :mod:`victor_gui.ui.chat_versions`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from victor_gui.ui.icons import set_icon


class VersionSwitcher(QWidget):
    """``‹ n/m ›``: the previous and next version of a message, and which one is shown."""

    chosen = Signal(int)  # the message id of the version asked for

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("versionSwitcher")
        self._ids: tuple[int, ...] = ()
        self._index = 0
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        self.previous_button = QToolButton()
        self.previous_button.setText("‹")  # read by nothing on screen: the icon is drawn
        set_icon(self.previous_button, "chevron-left", "muted")
        self.previous_button.setAutoRaise(True)
        self.previous_button.setAccessibleName("Previous version")
        self.previous_button.setToolTip("Previous version")
        self.previous_button.clicked.connect(lambda: self._step(-1))
        self.label = QLabel()
        self.label.setObjectName("versionLabel")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.next_button = QToolButton()
        self.next_button.setText("›")
        set_icon(self.next_button, "chevron-right", "muted")
        self.next_button.setAutoRaise(True)
        self.next_button.setAccessibleName("Next version")
        self.next_button.setToolTip("Next version")
        self.next_button.clicked.connect(lambda: self._step(1))
        for button in (self.previous_button, self.next_button):
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        row.addWidget(self.previous_button)
        row.addWidget(self.label)
        row.addWidget(self.next_button)

    @property
    def text(self) -> str:
        """What the switcher reads, e.g. ``2/3``."""
        return self.label.text()

    def set_versions(self, ids: tuple[int, ...], current: int) -> None:
        """Show version ``current`` (a message id) of ``ids`` (oldest first)."""
        self._ids = ids
        self._index = ids.index(current) if current in ids else len(ids) - 1
        self.label.setText(f"{self._index + 1}/{len(ids)}")
        self.setAccessibleName(f"Version {self._index + 1} of {len(ids)}")
        self.previous_button.setEnabled(self._index > 0)
        self.next_button.setEnabled(self._index < len(ids) - 1)

    def _step(self, delta: int) -> None:
        index = self._index + delta
        if 0 <= index < len(self._ids):
            self.chosen.emit(self._ids[index])
