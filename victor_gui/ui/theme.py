"""The look, light and dark, from one place: colour tokens, spacing, a type scale, and the one
palette + style sheet built from them; Pygments colours for code blocks; icons; following the
desktop's colour scheme live.

Every colour the app draws text with comes from :class:`Tokens` (or, for the tool-call blocks,
from ``tool_views.COLOURS``), and every text/background pair is ≥ 4.5:1 (WCAG AA for body text,
tests/ui/test_theme_contrast.py renders each widget kind in both themes and measures it).

``system`` follows the desktop (``QStyleHints.colorScheme``, and its ``colorSchemeChanged``
signal while the app runs); ``light`` and ``dark`` hold whatever the desktop says.

Why an application-wide style sheet: dialogs and the servers' windows are separate top-level
windows; one sheet on the application reaches them all, and a theme change is one call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import shiboken6
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

THEMES = (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark"))

# Spacing (px): every margin and padding in the sheet is one of these.
SPACE_XS, SPACE_S, SPACE_M, SPACE_L = 2, 4, 8, 12
# Corner radii (px): message surfaces, controls.
RADIUS_SURFACE, RADIUS_CONTROL = 10, 6
# Type scale (px): captions and stats, body, titles.
TYPE_SMALL, TYPE_BODY, TYPE_TITLE = 11, 13, 15


class Tokens(NamedTuple):
    """The colours of one theme. ``*_text`` colours are checked against the background they are
    drawn on (see the module docstring).

    A NamedTuple, not a frozen dataclass: this module is imported before the first paint, and
    the dataclass (its module and its generated methods for ~35 fields) cost 3 % of the
    instructions to the first paint."""

    name: str
    window: str  # window chrome, dialogs
    window_text: str
    sidebar: str  # the conversation list's column
    sidebar_text: str
    sidebar_selected: str  # the current conversation's row
    sidebar_selected_text: str
    transcript: str  # behind the messages
    base: str  # inputs, lists
    text: str
    muted_text: str  # stats, captions (on transcript, window and both bubbles)
    border: str
    accent: str  # primary button, focus ring, selection
    accent_text: str
    link: str  # links in messages, the Copy link
    user_bubble: str
    user_border: str
    assistant_bubble: str
    assistant_border: str
    code_background: str
    code_text: str
    pygments_style: str
    reasoning_background: str
    reasoning_text: str
    note_background: str
    note_text: str
    note_border: str
    error_text: str
    tool_text: str  # the tool-call line of a streaming reply
    card: str  # dashboard cards, compare panes
    button: str
    button_text: str
    button_hover: str
    disabled_text: str

    @property
    def dark(self) -> bool:
        return QColor(self.window).lightness() < 128


LIGHT = Tokens(
    name="light",
    window="#f4f5f7", window_text="#1f2328",
    sidebar="#eceef2", sidebar_text="#1f2328", sidebar_selected="#d7e3fa", sidebar_selected_text="#102a5c",
    transcript="#f7f8fa", base="#ffffff", text="#1f2328", muted_text="#59616b", border="#d3d8e0",
    accent="#2160c4", accent_text="#ffffff", link="#1a5fc8",
    user_bubble="#e7effc", user_border="#c9d9f5", assistant_bubble="#ffffff", assistant_border="#e0e3e9",
    code_background="#f3f5f8", code_text="#1f2328", pygments_style="default",
    reasoning_background="#f1f3f6", reasoning_text="#4a525c",
    note_background="#fff6d1", note_text="#5c4a00", note_border="#e6d48a",
    error_text="#b3261e", tool_text="#5a4a00",
    card="#ffffff", button="#ffffff", button_text="#1f2328", button_hover="#eef1f5", disabled_text="#6e757e",
)

DARK = Tokens(
    name="dark",
    window="#202328", window_text="#e6e8eb",
    sidebar="#1a1d21", sidebar_text="#dfe2e6", sidebar_selected="#2d3f5e", sidebar_selected_text="#ffffff",
    transcript="#16181c", base="#24282e", text="#e6e8eb", muted_text="#a4abb5", border="#3a4048",
    accent="#3d7be0", accent_text="#ffffff", link="#8ab4f8",
    user_bubble="#1f2f4b", user_border="#2f456d", assistant_bubble="#22262c", assistant_border="#343a42",
    code_background="#121418", code_text="#e6e8eb", pygments_style="github-dark",
    reasoning_background="#1c1f24", reasoning_text="#aeb5bf",
    note_background="#3a3320", note_text="#f2dc8a", note_border="#5e5128",
    error_text="#ff8a80", tool_text="#f0c060",
    card="#24282e", button="#2c3138", button_text="#e6e8eb", button_hover="#353b43", disabled_text="#8a919b",
)


# Called with the application after every theme change (after restyle_all). A module whose
# drawings hold theme colours adds its repaint here when imported (ui/icons.py: retint), so the
# theme needs no import of it (and pays nothing while nobody drew one).
THEME_HOOKS: list[Callable[[QApplication], object]] = []


def tokens_for(dark: bool) -> Tokens:
    """The dark or the light tokens."""
    return DARK if dark else LIGHT


def palette(t: Tokens) -> QPalette:
    """The application palette for ``t``: what widgets without a style sheet rule draw with."""
    p = QPalette()
    c = QColor
    roles = QPalette.ColorRole
    for role, colour in (
        (roles.Window, t.window), (roles.WindowText, t.window_text), (roles.Base, t.base),
        (roles.AlternateBase, t.window), (roles.Text, t.text), (roles.Button, t.button),
        (roles.ButtonText, t.button_text), (roles.ToolTipBase, t.base), (roles.ToolTipText, t.text),
        (roles.PlaceholderText, t.disabled_text), (roles.Highlight, t.accent),
        (roles.HighlightedText, t.accent_text), (roles.Link, t.link), (roles.LinkVisited, t.link),
        (roles.BrightText, t.accent_text), (roles.Light, t.button_hover), (roles.Midlight, t.border),
        (roles.Mid, t.border), (roles.Dark, t.border), (roles.Shadow, t.border),
    ):
        p.setColor(role, c(colour))
    for role in (roles.Text, roles.ButtonText, roles.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, c(t.disabled_text))
    return p


def stylesheet(t: Tokens) -> str:
    """The one application style sheet for ``t``."""
    return f"""
QMainWindow, QDialog {{ background: {t.window}; color: {t.window_text}; }}
QWidget#sidebar {{ background: {t.sidebar}; }}
QWidget#sidebar QListWidget {{ background: {t.sidebar}; color: {t.sidebar_text}; border: none;
    outline: none; }}
QWidget#sidebar QListWidget::item {{ padding: {SPACE_M}px {SPACE_M}px; margin: 1px {SPACE_S}px;
    border-radius: {RADIUS_CONTROL}px; }}
QWidget#sidebar QListWidget::item:hover {{ background: {t.button_hover}; }}
QWidget#sidebar QListWidget::item:selected {{ background: {t.sidebar_selected};
    color: {t.sidebar_selected_text}; }}
QWidget#sidebar QLabel {{ color: {t.sidebar_text}; }}
QLineEdit, QPlainTextEdit, QComboBox, QSpinBox, QDoubleSpinBox {{
    background: {t.base}; color: {t.text}; border: 1px solid {t.border};
    border-radius: {RADIUS_CONTROL}px; padding: {SPACE_S}px {SPACE_M}px;
    selection-background-color: {t.accent}; selection-color: {t.accent_text}; }}
QLineEdit:focus, QPlainTextEdit:focus, QComboBox:focus {{ border: 1px solid {t.accent}; }}
QComboBox::drop-down {{ border: none; width: 20px; background: transparent; }}
QComboBox::down-arrow {{ image: url("{_icon(f"chevron-down-{t.name}.svg")}"); width: 12px; height: 12px; }}
QComboBox QAbstractItemView {{ background: {t.base}; color: {t.text};
    selection-background-color: {t.accent}; selection-color: {t.accent_text}; }}
QPushButton {{ background: {t.button}; color: {t.button_text}; border: 1px solid {t.border};
    border-radius: {RADIUS_CONTROL}px; padding: {SPACE_S}px {SPACE_L}px; }}
QPushButton:hover {{ background: {t.button_hover}; }}
QPushButton:disabled {{ color: {t.disabled_text}; }}
QPushButton#primary {{ background: {t.accent}; color: {t.accent_text};
    border: 1px solid {t.accent}; }}
QFrame#userMessage {{ background: {t.user_bubble}; border: 1px solid {t.user_border};
    border-radius: {RADIUS_SURFACE}px; }}
QFrame#assistantMessage {{ background: {t.assistant_bubble}; border: 1px solid {t.assistant_border};
    border-radius: {RADIUS_SURFACE}px; }}
QFrame#userMessage[searchHit="true"], QFrame#assistantMessage[searchHit="true"] {{
    border: 2px solid {t.accent}; }}
QFrame#userMessage QTextBrowser {{ background: {t.user_bubble}; color: {t.text}; }}
QFrame#assistantMessage QTextBrowser {{ background: {t.assistant_bubble}; color: {t.text}; }}
QFrame#userMessage QToolButton, QFrame#assistantMessage QToolButton {{ color: {t.link};
    border: none; padding: {SPACE_XS}px {SPACE_S}px; }}
QLabel#messageHeader {{ color: {t.muted_text}; font-weight: bold; }}
QLabel#messageStats {{ color: {t.muted_text}; font-size: {TYPE_SMALL}px; }}
QLabel#messageError {{ color: {t.error_text}; }}
QLabel#statusLine {{ color: {t.muted_text}; padding: {SPACE_XS}px; }}
QLabel#toolCalls {{ color: {t.tool_text}; font-family: monospace; }}
QTextBrowser#reasoning {{ background: {t.reasoning_background}; color: {t.reasoning_text};
    font-style: italic; border: 1px solid {t.assistant_border}; border-radius: {RADIUS_CONTROL}px; }}
QFrame#userMessage QTextBrowser#reasoning, QFrame#assistantMessage QTextBrowser#reasoning {{
    background: {t.reasoning_background}; color: {t.reasoning_text}; }}
QLabel#emptyState {{ color: {t.muted_text}; font-size: {TYPE_TITLE - 1}px; }}
QWidget#transcriptInner {{ background: {t.transcript}; }}
QLabel#transcriptNote {{ color: {t.note_text}; background: {t.note_background};
    border: 1px solid {t.note_border}; border-radius: {RADIUS_CONTROL}px; padding: 3px {SPACE_M}px;
    font-size: 12px; }}
QFrame#endpointCard, QFrame#comparePane {{ background: {t.card}; border: 1px solid {t.border};
    border-radius: {RADIUS_CONTROL + 2}px; }}
QLabel#cardTitle {{ font-weight: bold; font-size: {TYPE_BODY}px; color: {t.text}; }}
QLabel#cardUrl, QLabel#dashNotice {{ color: {t.muted_text}; }}
QLabel#cardDiagnosis, QLabel#cardModels {{ color: {t.text}; }}
QLabel#sectionTitle {{ font-weight: bold; color: {t.window_text}; font-size: {TYPE_TITLE}px; }}
QLabel#compareResult {{ color: {t.text}; font-weight: bold; font-size: {TYPE_SMALL}px;
    padding: {SPACE_XS}px; }}
QLabel#versionLabel {{ color: {t.muted_text}; font-size: 10px; }}
"""


def _icon(name: str) -> str:
    """The file path of a bundled SVG icon (resources/, shipped as victor_gui.resources).

    Why bundled SVGs and not qtawesome: importing qtawesome took 250-390 ms here and its first
    icons ~18 ms each, against ~300 ms for a bare window's whole launch (bench_launch); an SVG
    drawn by Qt's own svg plugin costs a few ms, when it is first shown."""
    return (resources_folder() / name).as_posix()


@cache
def resources_folder() -> Path:
    """The folder of the ``victor_gui.resources`` package (the top-level resources/ of a source
    checkout, the package's folder in a wheel or a frozen bundle).

    Found from the package itself, not through ``importlib.resources``: importing that and its
    first ``files()`` cost 30-50 ms of the first paint (this sheet and the icons need the folder
    before it), for a package that is always a plain folder on disk."""
    import victor_gui.resources as package

    folder = Path(package.__file__ or "").parent
    if not (folder / "icons").is_dir():  # a source checkout whose editable install points elsewhere
        folder = Path(__file__).resolve().parents[2] / "resources"
    return folder


def is_dark(mode: str) -> bool:
    """Whether ``mode`` ends up dark (``system`` asks Qt for the desktop's scheme)."""
    if mode == "dark":
        return True
    if mode == "light":
        return False
    hints = QGuiApplication.styleHints()
    return bool(hints is not None and hints.colorScheme() == Qt.ColorScheme.Dark)


class _ThemeState(QObject):
    """The one owner of the theme in force: the chosen mode, the tokens applied, and the
    connection to the desktop's colour-scheme signal."""

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self.mode = "system"
        self.tokens: Tokens | None = None
        hints = QGuiApplication.styleHints()
        if hints is not None:
            hints.colorSchemeChanged.connect(self._scheme_changed)

    def _scheme_changed(self, scheme: Any) -> None:
        # The signal's argument, not colorScheme(): on some platforms the hint lags the signal.
        if self.mode == "system":
            _apply(self, tokens_for(scheme == Qt.ColorScheme.Dark))


# The application's one _ThemeState (a child of it), remembered here rather than looked up:
# ``app.findChild(_ThemeState)`` cost 25-45 ms on its first call and ~4 ms on each later one,
# and every icon asks for the tokens in force (dozens of calls before the first paint, several
# per message view built).
_current: tuple[QApplication, _ThemeState] | None = None


def _state() -> _ThemeState | None:
    global _current
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return None
    if _current is not None and _current[0] is app and shiboken6.isValid(_current[1]):
        return _current[1]
    state = _ThemeState(app)
    _current = (app, state)
    return state


def current_tokens() -> Tokens:
    """The tokens in force (light before any theme was applied)."""
    state = _state()
    return state.tokens if state is not None and state.tokens is not None else LIGHT


def apply_theme(mode: str, window: QWidget | None = None, base_style: str = "") -> None:
    """Apply ``mode`` (``system``/``light``/``dark``): the palette and the style sheet to the
    whole application, the matching code colours to Markdown renders, and a re-render of the
    Markdown already on screen. ``window``/``base_style``: an extra sheet for one window (kept
    for callers that add their own rules). Applying the tokens already in force does nothing."""
    state = _state()
    if state is None:
        return
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    state.mode = mode
    if window is not None and base_style:
        window.setStyleSheet(base_style)
    _apply(state, tokens_for(is_dark(mode)))


def _apply(state: _ThemeState, tokens: Tokens) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    if tokens is state.tokens:
        return
    first = state.tokens is None
    state.tokens = tokens
    app.setPalette(palette(tokens))
    app.setStyleSheet(stylesheet(tokens))
    _set_code_colours(tokens)
    if not first:
        restyle_all(app)
    for hook in THEME_HOOKS:  # the icons (ui/icons.py), drawn in the old theme's colours
        hook(app)


def _set_code_colours(t: Tokens) -> None:
    # Imported here: markdown_render (markdown-it, Pygments) costs first paint when the app starts
    # light, the only case that does not need it yet. Its defaults are the light colours.
    if t is LIGHT and "victor_gui.services.markdown_render" not in sys.modules:
        return
    from victor_gui.services.markdown_render import set_code_colours

    set_code_colours(code_colours(t))


def code_colours(t: Tokens) -> Any:
    """The Markdown renderer's colours (services.markdown_render.CodeColours) for ``t``."""
    from victor_gui.services.markdown_render import CodeColours

    return CodeColours(code_background=t.code_background, code_text=t.code_text,
                       pygments_style=t.pygments_style, table_border=t.border, link=t.link)


def restyle_all(app: QApplication) -> None:
    """Ask every widget with a ``restyle()`` hook (views holding rendered HTML, whose colours are
    inline) to redraw with the tokens now in force."""
    for widget in app.allWidgets():
        hook = getattr(widget, "restyle", None)
        if callable(hook):
            hook()


__all__ = ["DARK", "LIGHT", "THEMES", "THEME_HOOKS", "Tokens", "apply_theme", "code_colours",
           "current_tokens", "is_dark", "palette", "restyle_all", "stylesheet", "tokens_for"]
