"""Help → About and Help → Keyboard shortcuts.

About names what a user looking for their data needs: the version, the data folder in use, the
config folder, the log file, and the licences of the app and of what it ships with (read from
the installed packages' metadata, so the list is what is really there). The shortcut list is
gathered from the window's own actions and shortcuts, so it cannot drift from the keys that work.
Both open non-modal (``show``): no nested event loop under qasync.
"""

from __future__ import annotations

from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any

from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from victor_gui import __version__
from victor_gui.core import app_dirs
from victor_gui.core.logging_setup import LOG_NAME

# What the app is built on, named in About with each package's licence as installed.
SHIPPED_WITH = ("PySide6-Essentials", "shiboken6", "qasync", "httpx", "httpcore", "pydantic", "PyYAML",
                "keyring", "psutil", "platformdirs", "markdown-it-py", "Pygments", "Pillow", "mcp",
                "pypdf", "python-docx", "python-pptx", "openpyxl", "numpy", "botocore")

# Keys handled inside widgets rather than by actions (named here so the list is complete).
WIDGET_KEYS = (
    ("Ctrl+Enter", "Send the message"),
    ("Esc", "Stop the reply that is streaming"),
    ("Shift+Enter", "New line in the message"),
)


def licence_of(dist: str) -> tuple[str, str] | None:
    """(version, licence) of an installed distribution, None when it is not installed."""
    try:
        meta: Any = metadata.metadata(dist)  # an email.message.Message underneath (has .get)
    except metadata.PackageNotFoundError:
        return None
    licence = meta.get("License-Expression") or ""
    if not licence:  # older metadata: the trove classifiers, else the first line of License
        classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or ()
                       if c.startswith("License ::")]
        first_line = next(iter((meta.get("License") or "").splitlines()), "")
        licence = ", ".join(classifiers) or first_line or "see the package"
    return meta.get("Version") or "?", licence[:80]


def about_html(data_folder: Path | None) -> str:
    """The About text: version, folders, log file and licences."""
    data = data_folder if data_folder is not None else app_dirs.data_dir()
    rows = [("Data folder (chats, attachments)", str(data)),
            ("Config folder (settings, profiles, mcp.json)", str(app_dirs.config_dir())),
            ("Log file", str(app_dirs.log_dir() / LOG_NAME))]
    folders = "".join(f"<tr><td><b>{escape(k)}</b></td><td><code>{escape(v)}</code></td></tr>"
                      for k, v in rows)
    libs = []
    for dist in SHIPPED_WITH:
        found = licence_of(dist)
        if found is not None:
            libs.append(f"<tr><td>{escape(dist)} {escape(found[0])}</td><td>{escape(found[1])}</td></tr>")
    return (f"<h2>Victor GUI {escape(__version__)}</h2>"
            "<p>A local-first chat for your own models and the cloud providers you choose.<br>"
            "Licensed under the Apache License 2.0.</p>"
            f"<table cellspacing='4'>{folders}</table>"
            "<h3>Open-source software it is built on</h3>"
            f"<table cellspacing='2'>{''.join(libs)}</table>")


class AboutDialog(QDialog):
    """Version, folders, log file and licences."""

    def __init__(self, parent: QWidget | None, data_folder: Path | None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Victor GUI")
        self.resize(620, 520)
        layout = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(about_html(data_folder))
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)


def window_shortcuts(window: QWidget) -> list[tuple[str, str]]:
    """(keys, what they do) for every action and shortcut the window and its children hold,
    plus the keys widgets handle themselves; sorted, without duplicates."""
    seen: dict[str, str] = {}
    for action in window.findChildren(QAction):
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        text = action.text().replace("&", "").rstrip("…").strip()
        if keys and text and keys not in seen:
            seen[keys] = text
    for shortcut in window.findChildren(QShortcut):
        keys = shortcut.key().toString(QKeySequence.SequenceFormat.NativeText)
        what = shortcut.whatsThis() or shortcut.objectName()
        if keys and what and keys not in seen:
            seen[keys] = what
    for keys, what in WIDGET_KEYS:
        seen.setdefault(keys, what)
    return sorted(seen.items(), key=lambda kv: kv[1].lower())


class ShortcutsDialog(QDialog):
    """A table of the window's keyboard shortcuts."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(460, 520)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Keys that work in the chat window:"))
        rows = window_shortcuts(window)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Keys", "Action"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for row, (keys, what) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(keys))
            self.table.setItem(row, 1, QTableWidgetItem(what))
        self.table.resizeColumnToContents(0)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
