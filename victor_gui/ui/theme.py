"""Light, dark or follow-the-system: a palette for the app and a few colours for the chat.

``system`` uses the style's own palette (on Linux/Windows/macOS Qt follows the desktop's colour
scheme); ``light`` and ``dark`` set an explicit palette so the choice holds everywhere.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

THEMES = (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark"))

# Chat colours that the window's style sheet sets for light; dark overrides them.
DARK_STYLE = """
QFrame#userMessage { background: #24324a; border: 1px solid #34486b; }
QFrame#assistantMessage { background: #262a30; border: 1px solid #3a3f47; }
QFrame#userMessage QTextBrowser { background: #24324a; }
QFrame#assistantMessage QTextBrowser { background: #262a30; }
QLabel#messageHeader { color: #c8ccd4; }
QLabel#messageStats { color: #9aa0aa; }
QLabel#statusLine { color: #c8ccd4; }
QLabel#emptyState { color: #9aa0aa; }
QWidget#transcriptInner { background: #1d2025; }
QTextBrowser#reasoning { background: #23262b; color: #9aa0aa; border: 1px solid #33373d; }
QLabel#transcriptNote { color: #e8d77a; background: #3a3520; border: 1px solid #5a5128; }
"""


def dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor("#1d2025"), QColor("#2a2d33"), QColor("#e6e6e6")
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, window)
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, window)
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.ToolTipBase, window)
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor("#8a8f98"))
    p.setColor(QPalette.ColorRole.Highlight, QColor("#3d6fb6"))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    p.setColor(QPalette.ColorRole.Link, QColor("#7fb0ff"))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#777b82"))
    return p


def is_dark(mode: str) -> bool:
    """Whether ``mode`` ends up dark (``system`` asks Qt for the desktop's scheme)."""
    if mode == "dark":
        return True
    if mode == "light":
        return False
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    hints = QGuiApplication.styleHints()
    return bool(hints is not None and hints.colorScheme() == Qt.ColorScheme.Dark)


def apply_theme(mode: str, window: QWidget | None = None, base_style: str = "") -> None:
    """Apply ``mode`` (``system``/``light``/``dark``) to the app, and the chat colours to
    ``window`` (whose light style sheet is ``base_style``)."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    dark = is_dark(mode)
    if mode == "dark" or (mode == "system" and dark):
        app.setPalette(dark_palette())
    else:
        app.setPalette(app.style().standardPalette())
    if window is not None:
        window.setStyleSheet(base_style + (DARK_STYLE if dark else ""))
