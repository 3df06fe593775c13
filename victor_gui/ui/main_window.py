"""The main window: conversations on the left (placeholder until the store is wired), the chat
pane on the right, New chat (Ctrl+N) and Quit (Ctrl+Q)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QPaintEvent
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from victor_gui import __version__
from victor_gui.ui.chat_pane import ChatPane

if TYPE_CHECKING:
    from victor_gui.services.provider_choices import ProviderPool

STYLE = """
QFrame#userMessage { background: #eef3fb; border: 1px solid #d5e0f2; border-radius: 6px; }
QFrame#assistantMessage { background: #ffffff; border: 1px solid #e2e2e6; border-radius: 6px; }
QFrame#userMessage QTextBrowser { background: #eef3fb; }
QLabel#messageHeader { color: #555; font-weight: bold; }
QLabel#messageStats { color: #777; font-size: 11px; }
QLabel#messageError { color: #b00020; }
QLabel#statusLine { color: #444; padding: 2px; }
QLabel#toolCalls { color: #5a4a00; font-family: monospace; }
QTextBrowser#reasoning { background: #f7f7f9; color: #666; font-style: italic;
                        border: 1px solid #e4e4e8; }
QLabel#emptyState { color: #666; font-size: 14px; }
QWidget#transcriptInner { background: #f5f6f8; }
"""


class MainWindow(QMainWindow):
    """The app window. ``first_painted`` fires once, after the first paint reached the screen."""

    first_painted = Signal()

    def __init__(self, pool: ProviderPool | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Victor GUI")
        self.resize(1100, 720)
        self.setStyleSheet(STYLE)
        self._painted = False

        splitter = QSplitter(Qt.Orientation.Horizontal)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(6, 6, 0, 6)
        self.new_chat_button = QPushButton("New chat")
        self.new_chat_button.setAccessibleName("New chat")
        side_layout.addWidget(self.new_chat_button)
        self.conversation_list = QListWidget()
        self.conversation_list.setAccessibleName("Conversations")
        self.conversation_list.setWordWrap(True)
        self.conversation_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        placeholder = QListWidgetItem("Saved conversations will appear here")
        placeholder.setFlags(Qt.ItemFlag.NoItemFlags)
        self.conversation_list.addItem(placeholder)
        side_layout.addWidget(self.conversation_list, 1)
        version = QLabel(f"Victor GUI {__version__}")
        version.setStyleSheet("color: #999; font-size: 10px;")
        side_layout.addWidget(version)
        splitter.addWidget(side)

        self.chat = ChatPane(pool)
        splitter.addWidget(self.chat)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([230, 870])
        self.setCentralWidget(splitter)

        new_chat = QAction("New chat", self)
        new_chat.setShortcut(QKeySequence.StandardKey.New)  # Ctrl+N
        new_chat.triggered.connect(self.chat.new_chat)
        self.new_chat_button.clicked.connect(self.chat.new_chat)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.triggered.connect(self.close)
        menu = self.menuBar().addMenu("&Chat")
        menu.addAction(new_chat)
        menu.addSeparator()
        menu.addAction(quit_action)
        self.addAction(new_chat)
        self.chat.input.setFocus()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()

    def bring_to_front(self) -> None:
        """Show and raise the window (a second launch asks for this)."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()
