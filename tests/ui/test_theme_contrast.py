"""Every kind of text the window shows reads in both themes: text/background contrast ≥ 4.5:1.

Each widget kind is built for real, shown (offscreen) in the light and then the dark theme, and
measured on its pixels: the background is the colour that fills the text's rectangle, the text
colour is the one the widget declares (its palette role after the style sheet polished it, or a
rich-text fragment's own colour), and that colour must really be drawn there, so a colour that
is declared but not used, or a background the sheet forgot, cannot pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QLineEdit, QListWidget, QWidget

from tests.ui.test_dashboard import service, sims  # noqa: F401  (fixtures: real simulators)
from victor_gui.core.colour import BODY_TEXT_RATIO, contrast_ratio
from victor_gui.ui.theme import apply_theme, current_tokens

pytestmark = pytest.mark.usefixtures("keep_running_when_closed")

RICH_REPLY = """Plain words with **bold**, *emphasis*, `inline code` and [a link](https://example.org).

```python
def read_chunks(path: str, size: int = 64 * 1024):
    # a comment in the code
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk  # 42, None, True
```

| chunk size | typical use |
|---|---|
| 4 KiB | small config files |
"""


@pytest.fixture(params=["light", "dark"])
def theme(request: pytest.FixtureRequest, qapp: QApplication) -> Iterator[str]:
    apply_theme(request.param)
    assert current_tokens().name == request.param
    yield request.param
    apply_theme("light")


def _rgb(c: QColor) -> tuple[int, int, int]:
    return c.red(), c.green(), c.blue()


def _pixels(img: QImage, rect: QRect) -> np.ndarray:
    """The (r, g, b) rows of ``rect`` in ``img``."""
    r = rect.intersected(img.rect())
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    rows = np.frombuffer(img.constBits(), dtype=np.uint8).reshape(img.height(), img.bytesPerLine())
    argb = rows[:, : img.width() * 4].reshape(img.height(), img.width(), 4)
    part = argb[r.top(): r.bottom() + 1, r.left(): r.right() + 1]
    return part[:, :, [2, 1, 0]].reshape(-1, 3).astype(np.int16)  # BGRA in memory


def _dominant(img: QImage, rect: QRect) -> QColor:
    colours, counts = np.unique(_pixels(img, rect), axis=0, return_counts=True)
    r, g, b = (int(v) for v in colours[int(counts.argmax())])
    return QColor(r, g, b)


def _drawn(img: QImage, rect: QRect, colour: QColor, tolerance: int = 24) -> bool:
    """Whether ``colour`` (or a pixel within ``tolerance`` per channel of it) is painted in ``rect``."""
    want = np.array(_rgb(colour), dtype=np.int16)
    return bool((np.abs(_pixels(img, rect) - want) <= tolerance).all(axis=1).any())


class Checker:
    """Collects (what, text colour, background, ratio) and fails with every pair below 4.5."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.rows: list[tuple[str, str, str, float]] = []
        self.problems: list[str] = []

    def pair(self, what: str, fg: QColor, img: QImage, rect: QRect, *, glyphs: bool = True) -> None:
        """``glyphs``: the text has letters whose strokes reach the full colour somewhere (a
        lone comma's anti-aliased pixels may not), so the colour must be found drawn."""
        bg = _dominant(img, rect)
        ratio = contrast_ratio(_rgb(fg), _rgb(bg))
        self.rows.append((what, fg.name(), bg.name(), ratio))
        if glyphs and not _drawn(img, rect, fg):
            self.problems.append(f"{what}: text colour {fg.name()} is not what is drawn on {bg.name()}")
        if ratio < BODY_TEXT_RATIO:
            self.problems.append(f"{what}: {fg.name()} on {bg.name()} is {ratio:.2f}:1")

    def widget(self, what: str, w: QWidget, role: QPalette.ColorRole | None = None, *,
               source: QWidget | None = None) -> None:
        """A label, button or line edit: its foreground role on what fills it (``source``: the
        widget whose palette says the colour, when ``w`` is its viewport)."""
        w.ensurePolished()
        # Grabbed from its window, so what shows through (a parent's styled background) counts;
        # only the part on screen (a row scrolled out of its page is not drawn).
        visible = w.visibleRegion().boundingRect()
        if visible.width() < 8 or visible.height() < 8:
            return
        top = w.window()
        img = top.grab(QRect(w.mapTo(top, visible.topLeft()), visible.size())).toImage()
        owner = source if source is not None else w
        fg = owner.palette().color(role if role is not None else
                                   (QPalette.ColorRole.Text if source is not None else w.foregroundRole()))
        inner = img.rect().adjusted(3, 3, -3, -3)
        self.pair(what, fg, img, inner)

    def document(self, what: str, view: QWidget) -> None:
        """Every text fragment of a rich-text view (QTextBrowser): its own colour or the view's
        text colour, on what fills the fragment's line where it is drawn."""
        from PySide6.QtWidgets import QTextEdit

        assert isinstance(view, QTextEdit)
        view.ensurePolished()
        img = view.viewport().grab().toImage()
        doc = view.document()
        default = view.palette().color(QPalette.ColorRole.Text)
        offset_y = view.verticalScrollBar().value()
        block = doc.begin()
        seen = 0
        while block.isValid():
            origin = doc.documentLayout().blockBoundingRect(block).topLeft()
            layout = block.layout()
            it = block.begin()
            while not it.atEnd():
                frag = it.fragment()
                it += 1
                text = frag.text()
                if not text.strip():
                    continue
                fmt = frag.charFormat()
                brush = fmt.foreground()
                fg = brush.color() if brush.style().value != 0 else default
                start = frag.position() - block.position()
                line = layout.lineForTextPosition(start)
                if not line.isValid():
                    continue
                end = min(start + len(text), line.textStart() + line.textLength())
                x1, x2 = line.cursorToX(start)[0], line.cursorToX(end)[0]
                rect = QRect(int(origin.x() + x1), int(origin.y() + line.y()) - offset_y,
                             max(1, int(x2 - x1)), int(line.height()))
                if rect.bottom() < 0 or rect.top() > img.height():
                    continue
                letters = sum(ch.isalnum() for ch in text)
                self.pair(f"{what} «{text.strip()[:24]}»", fg, img, rect, glyphs=letters >= 2)
                seen += 1
            block = block.next()
        assert seen, f"{what}: no text measured"

    def check(self) -> None:
        assert not self.problems, f"{self.mode} theme:\n" + "\n".join(self.problems)


def _show(qtbot, w: QWidget, width: int = 640, height: int = 480) -> QWidget:  # type: ignore[no-untyped-def]
    qtbot.addWidget(w)
    w.resize(width, height)
    w.show()
    QApplication.processEvents()
    return w


def test_message_bubbles_code_tables_links_reasoning_tool_calls(qtbot, theme: str) -> None:
    from victor_gui.services.tool_types import ToolCallRecord, ToolCallState
    from victor_gui.ui.message_view import MessageView
    from victor_gui.ui.tool_views import ToolCallBlock

    c = Checker(theme)
    user = MessageView("user", "You")
    user.append_content("How do I read a **big** file? See [the docs](https://docs.python.org).")
    user.render_markdown()
    _show(qtbot, user, 640, 120)
    c.widget("user header", user.header)
    c.document("user bubble", user.body)

    reply = MessageView("assistant", "Assistant · llama-3")
    reply.append_reasoning("The user wants chunks; a generator fits.")
    reply.reasoning_toggle.setChecked(True)
    reply.set_tool_calls(["get_current_time(timezone='Europe/Paris')"])
    reply.append_content(RICH_REPLY)
    reply.render_markdown()
    reply.set_stats("llama-3 · 1.2 s to first token · 54 tok/s · 312 tokens")
    reply.set_error("The server closed the connection.", retry=True)
    reply.set_actions(regenerate=True)
    _show(qtbot, reply, 700, 700)
    c.widget("assistant header", reply.header)
    c.document("assistant bubble (code, table, links, Copy)", reply.body)
    c.document("reasoning", reply.reasoning_view)
    c.widget("tool call line", reply.tools_label)
    c.widget("stats line", reply.stats_label)
    c.widget("error line", reply.error_label)
    # Regenerate is an icon-only button (ui/icons.py): its ink, non-text, needs 3:1 on the bubble.
    img = reply.grab(reply.regenerate_button.geometry()).toImage()
    ink, bubble = QColor(current_tokens().muted_text), _dominant(img, img.rect())
    assert _drawn(img, img.rect(), ink, tolerance=40), f"{theme}: the Regenerate icon is not drawn"
    assert contrast_ratio(_rgb(ink), _rgb(bubble)) >= 3.0, f"{theme}: Regenerate icon on {bubble.name()}"
    c.widget("Retry button", reply.retry_button, QPalette.ColorRole.ButtonText)
    # The Copy link and a code token are among the fragments measured.
    names = " ".join(r[0] for r in c.rows)
    assert "«Copy»" in names and "«def»" in names and "«chunk size»" in names, names

    block = ToolCallBlock(ToolCallRecord("call-1", "time", "get_current_time", {"timezone": "Europe/Paris"},
                                         ToolCallState.DONE, result='{"ok": true}', duration_s=0.4))
    _show(qtbot, block, 600, 120)
    for label in block.findChildren(QLabel):
        if label.isVisible() and label.text().strip():
            c.widget(f"tool call block: {label.text()[:30]}", label)
    c.check()


async def test_window_sidebar_status_inputs_buttons(qtbot, theme: str, window) -> None:  # type: ignore[no-untyped-def]
    c = Checker(theme)
    window.resize(1100, 720)
    window.show()
    conv = window.conversations
    first = await window.store.create_conversation("A chat about Python generators")
    await window.store.create_conversation("Trip to Lisbon")
    await conv.refresh()
    conv.set_current(first.id)
    window.chat.status_label.setText("llama.cpp · ready")
    window.chat.input.setPlainText("A draft question")
    QApplication.processEvents()
    lst: QListWidget = conv.list
    img = lst.viewport().grab().toImage()
    t = current_tokens()
    assert lst.count() == 2
    for row in range(2):
        selected = lst.item(row).isSelected()
        what = "selected" if selected else "unselected"
        rect = lst.visualItemRect(lst.item(row)).adjusted(6, 3, -6, -3)
        fg = QColor(t.sidebar_selected_text if selected else t.sidebar_text)
        c.pair(f"sidebar item ({what})", fg, img, rect)
    c.widget("status line", window.chat.status_label)
    conv.search.blockSignals(True)  # the text only, not a search
    conv.search.setText("python")
    conv.search.blockSignals(False)
    QApplication.processEvents()
    c.widget("search box", conv.search, QPalette.ColorRole.Text)
    c.widget("chat input", window.chat.input.viewport(), None, source=window.chat.input)
    for b in (conv.new_button, window.chat.send_button):
        b.setEnabled(True)
        c.widget(f"button {b.text()}", b, QPalette.ColorRole.ButtonText)
    empty = window.chat.transcript.empty_state
    if not empty.text():  # what it says depends on the servers found; its colours do not
        empty.setText("No local server found. Start one, or add an API key in Settings.")
        QApplication.processEvents()
    c.widget("empty state", empty)
    c.check()


async def test_dashboard_rows(qtbot, theme: str, sims, service) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The servers' dashboard: state badges (white on green, amber, red, grey), titles, URLs,
    models, diagnoses, the machine's RAM line and the buttons."""
    import asyncio

    from tests.ui.test_dashboard import url
    from victor_gui.ui.dashboard import Dashboard

    c = Checker(theme)
    await service.start()
    service.watch([url(s) for s in sims.values()])
    await service.refresh_now()
    dash = Dashboard(service)
    qtbot.addWidget(dash)
    dash.resize(900, 700)
    dash.show()
    # Not processEvents(): inside a coroutine on the qasync loop it re-enters the loop and the
    # service's close below never resumes.
    await asyncio.sleep(0.3)
    measured = 0
    for label in dash.findChildren(QLabel):
        if label.isVisible() and label.text().strip() and not label.text().startswith("<"):
            c.widget(f"dashboard {label.objectName() or 'label'}: {label.text()[:30]}", label)
            measured += 1
    for b in dash.findChildren(QAbstractButton):
        if b.isVisible() and b.isEnabled() and b.text().strip():
            c.widget(f"dashboard button {b.text()}", b, QPalette.ColorRole.ButtonText)
    await service.close()
    assert measured >= 6
    c.check()


async def test_settings_pages(qtbot, theme: str, window, clean_env, tmp_path) -> None:  # type: ignore[no-untyped-def]

    from tests.config.memory_keyring import MemoryKeyring, use_backend
    from tests.ui.conftest import wait_until
    from victor_gui.config.secrets import KeyringStore
    from victor_gui.services.settings_service import SettingsService

    c = Checker(theme)
    with use_backend(MemoryKeyring()):
        window.keyring_store = KeyringStore()
        service = SettingsService(tmp_path / "settings.yaml")
        await service.load()
        window.use_settings(service)
        settings = window.open_settings()
        try:
            # The whole load, not just the keyring's answer: the key rows say "…" until their
            # sources are read, and processEvents() below must not re-enter a load still running.
            await wait_until(lambda: not settings._tasks)
            assert all(row.status.text() != "…" for row in settings.keys.rows.values())
            _measure_settings(c, settings)
        finally:  # a failed measure must not leave the dialog open for the tests after it
            settings.close()
            settings.deleteLater()
    c.check()


def _measure_settings(c: Checker, settings: QWidget) -> None:
    from PySide6.QtWidgets import QListWidget as Pages
    from PySide6.QtWidgets import QStackedWidget

    settings.resize(820, 600)
    QApplication.processEvents()
    stacks = [s for s in settings.findChildren(QStackedWidget) if s.count() > 1]
    measured = 0
    for stack in stacks or [None]:
        for index in range(stack.count() if stack is not None else 1):
            if stack is not None:
                stack.setCurrentIndex(index)
                QApplication.processEvents()
            for label in settings.findChildren(QLabel):
                if label.isVisible() and label.text().strip() and not label.text().startswith("<"):
                    c.widget(f"settings page {index}: {label.text()[:30]}", label)
                    measured += 1
            for edit in settings.findChildren(QLineEdit):
                if edit.isVisible() and edit.text():
                    c.widget(f"settings field {edit.accessibleName()}", edit, QPalette.ColorRole.Text)
            for b in settings.findChildren(QAbstractButton):
                if b.isVisible() and b.isEnabled() and b.text().strip() and type(b).__name__ == "QPushButton":
                    c.widget(f"settings button {b.text()}", b, QPalette.ColorRole.ButtonText)
    for pages in settings.findChildren(Pages):
        if pages.isVisible() and pages.count():
            img = pages.viewport().grab().toImage()
            for row in range(pages.count()):
                rect = pages.visualItemRect(pages.item(row)).adjusted(4, 2, -4, -2)
                selected = pages.item(row).isSelected()
                role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
                fg = pages.palette().color(role)
                c.pair(f"settings list row {pages.item(row).text()}", fg, img, rect)
    assert measured >= 5, "too little settings text measured"


def test_theme_switch_rerenders_code_blocks_with_the_other_colours(qtbot, qapp) -> None:
    from victor_gui.ui.message_view import MessageView
    from victor_gui.ui.theme import DARK, LIGHT

    apply_theme("light")
    reply = MessageView("assistant", "Assistant")
    reply.append_content(RICH_REPLY)
    reply.render_markdown()
    _show(qtbot, reply, 700, 600)

    def code_background() -> str:
        doc = reply.body.document()
        block = doc.begin()
        while block.isValid():
            if "def read_chunks" in block.text():
                return block.blockFormat().background().color().name()
            block = block.next()
        raise AssertionError("no code block")

    assert code_background() == LIGHT.code_background
    try:
        apply_theme("dark")
        assert code_background() == DARK.code_background
        assert reply.body.palette().color(QPalette.ColorRole.Base).name() == DARK.assistant_bubble
    finally:
        apply_theme("light")
    assert code_background() == LIGHT.code_background


def test_the_window_follows_the_system_scheme_live(qtbot, qapp) -> None:
    """Mode ``system``: the desktop turning dark (QStyleHints' colour scheme changes and says
    so) repaints the open widgets with the dark tokens, and back."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    from victor_gui.ui.message_view import MessageView
    from victor_gui.ui.theme import DARK, LIGHT

    hints = QGuiApplication.styleHints()

    def desktop(scheme: Qt.ColorScheme) -> None:
        """What a desktop switch does: the hint changes and Qt emits colorSchemeChanged (the
        offscreen platform stores the hint but has no desktop to emit it, so it is emitted)."""
        before = hints.colorScheme()
        hints.setColorScheme(scheme)
        QApplication.processEvents()
        if hints.colorScheme() == before:
            hints.colorSchemeChanged.emit(scheme)
        QApplication.processEvents()

    hints.setColorScheme(Qt.ColorScheme.Light)
    apply_theme("system")
    reply = MessageView("assistant", "Assistant")
    reply.append_content(RICH_REPLY)
    reply.render_markdown()
    _show(qtbot, reply, 700, 500)
    c = Checker("system")
    try:
        assert current_tokens() is LIGHT
        desktop(Qt.ColorScheme.Dark)
        assert current_tokens() is DARK
        assert reply.body.palette().color(QPalette.ColorRole.Base).name() == DARK.assistant_bubble
        img = reply.grab().toImage()
        assert _dominant(img, img.rect()).name() == DARK.assistant_bubble  # repainted dark
        c.document("reply after the switch", reply.body)
        c.check()
        desktop(Qt.ColorScheme.Light)
        assert current_tokens() is LIGHT
        img = reply.grab().toImage()
        assert _dominant(img, img.rect()).name() == LIGHT.assistant_bubble
        apply_theme("light")  # an explicit choice holds whatever the desktop says
        desktop(Qt.ColorScheme.Dark)
        assert current_tokens() is LIGHT
    finally:
        hints.unsetColorScheme()
        apply_theme("light")
