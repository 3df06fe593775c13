"""The line icons (ui/icons.py, resources/icons/): every bundled icon draws in both themes with
ink at ≥ 3:1 (WCAG non-text contrast) on each surface its role sits on; a theme switch repaints
the icons already on screen (buttons and menu entries); and the controls a user looks for carry
one, in the real window, driven through the llama-server simulator over real HTTP.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QIcon, QImage, QPainter
from PySide6.QtWidgets import QAbstractButton, QApplication, QMenu, QPushButton

from tests.servers import llamacpp
from tests.servers.base import Script
from tests.ui.conftest import wait_until
from victor_gui.core.colour import contrast_ratio
from victor_gui.sizing.hardware import GpuReport, RamInfo
from victor_gui.ui import icons
from victor_gui.ui.theme import DARK, LIGHT, Tokens, apply_theme, current_tokens

pytestmark = pytest.mark.usefixtures("keep_running_when_closed")

NON_TEXT_RATIO = 3.0  # WCAG 2.x, 1.4.11 non-text contrast


def _rgb(colour: str | QColor) -> tuple[int, int, int]:
    c = QColor(colour)
    return c.red(), c.green(), c.blue()


def _rgba(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_ARGB32)
    rows = np.frombuffer(img.constBits(), dtype=np.uint8).reshape(img.height(), img.bytesPerLine())
    # A copy: the converted image (and the memory the view points into) goes with this frame.
    return rows[:, : img.width() * 4].reshape(img.height(), img.width(), 4).copy()  # BGRA


def ink_on(pixmap_image: QImage, surface: str) -> tuple[tuple[int, int, int], int]:
    """Draw the icon on ``surface`` and return the pixel of most contrast with it (the ink), and
    how many pixels differ from the surface at all."""
    canvas = QImage(pixmap_image.size(), QImage.Format.Format_RGB32)
    canvas.fill(QColor(surface))
    painter = QPainter(canvas)
    painter.drawImage(0, 0, pixmap_image)
    painter.end()
    px = _rgba(canvas)[:, :, [2, 1, 0]].reshape(-1, 3).astype(np.int16)
    back = np.array(_rgb(surface), dtype=np.int16)
    differs = np.abs(px - back).sum(axis=1) > 0
    if not differs.any():
        return _rgb(surface), 0
    candidates = np.unique(px[differs], axis=0)
    best = max((tuple(int(v) for v in c) for c in candidates),
               key=lambda c: contrast_ratio(c, _rgb(surface)))
    return best, int(differs.sum())  # type: ignore[return-value]


def icon_ink(qicon: QIcon, size: int = 16, mode: QIcon.Mode = QIcon.Mode.Normal) -> tuple[int, int, int]:
    """The colour an icon is drawn in: the median colour of its most opaque pixels (16 px strokes
    are 1.33 px wide, so few pixels are fully opaque; un-premultiplied, their colour is the ink)."""
    argb = _rgba(qicon.pixmap(QSize(size, size), mode).toImage())
    alpha = argb[:, :, 3]
    assert alpha.max() > 0, "the icon draws nothing"
    solid = argb[alpha >= max(160, int(alpha.max()) - 40)][:, [2, 1, 0]]
    return tuple(int(v) for v in np.median(solid, axis=0))  # type: ignore[return-value]


def same(a: tuple[int, int, int], b: tuple[int, int, int], tolerance: int = 8) -> bool:
    """Colours equal up to the rounding of anti-aliased, premultiplied pixels."""
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("tokens", [LIGHT, DARK], ids=["light", "dark"])
def test_every_icon_draws_with_contrast_on_its_surfaces(qapp: QApplication, tokens: Tokens) -> None:
    names = icons.icon_names()
    assert len(names) >= 25 and {"send", "stop", "paperclip", "settings", "search", "edit", "regenerate",
                                  "branch", "copy", "chevron-left", "chevron-right", "tools", "refresh",
                                  "download", "new-chat", "help", "info", "keyboard"} <= set(names)
    problems = []
    for name in names:
        for role, (_token, surfaces) in icons.ROLES.items():
            colour = icons.colour_for(role, tokens)
            for size in (16, 24):
                image = icons.pixmap(name, size, colour).toImage()
                assert image.width() == size and image.height() == size, name
                for surface_token in surfaces:
                    surface = getattr(tokens, surface_token)
                    ink, inked = ink_on(image, surface)
                    # A line icon covers a fair part of its box (the thinnest, a chevron, ~8 %).
                    if inked < size * size * 0.05:
                        problems.append(f"{name} {size}px: only {inked} pixels drawn")
                    ratio = contrast_ratio(ink, _rgb(surface))
                    if ratio < NON_TEXT_RATIO:
                        problems.append(f"{name} ({role}) on {surface_token}: {ratio:.2f}:1")
                    # At 24 px the 2 px strokes cover whole pixels: the ink is the token itself (at
                    # 16 px a stroke is 1.33 px, anti-aliased; its contrast is what counts).
                    if size == 24 and ink != _rgb(colour):
                        problems.append(f"{name} ({role}) {size}px: ink {ink} is not {colour}")
    assert not problems, f"{tokens.name}:\n" + "\n".join(problems)


def test_every_source_is_a_24px_current_colour_line_icon() -> None:
    for name in icons.icon_names():
        source = icons.svg_source(name)  # raises for a file of another form
        assert 'viewBox="0 0 24 24"' in source and 'stroke-width="2"' in source, name
        assert 'stroke-linecap="round"' in source and 'fill="none"' in source, name
    assert (icons.icons_folder() / "LICENSE-feather.txt").is_file()


def test_a_disabled_icon_is_drawn_in_the_disabled_colour(qapp: QApplication) -> None:
    for tokens in (LIGHT, DARK):
        qicon = icons.icon("stop", "button", tokens)
        assert same(icon_ink(qicon), _rgb(tokens.button_text))
        assert same(icon_ink(qicon, mode=QIcon.Mode.Disabled), _rgb(tokens.disabled_text))


def test_icons_are_cached(qapp: QApplication) -> None:
    assert icons.icon("send", "button", LIGHT) is icons.icon("send", "button", LIGHT)
    assert icons.icon("send", "button", LIGHT) is not icons.icon("send", "button", DARK)


async def _reply_with_versions(sim, window):  # type: ignore[no-untyped-def]
    """A chat with a question and a regenerated reply (so Edit, Regenerate, Branch and the
    version arrows are all on screen)."""
    sim.script(Script(text="one"), Script(text="two"))
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("question")
    chat.send()
    await wait_until(lambda: chat.conversation_id is not None and not chat.running)
    await wait_until(lambda: chat.session is not None and not chat.session.busy)
    reply = chat.transcript.messages[-1]
    await wait_until(lambda: reply.regenerate_button.isVisibleTo(window))
    reply.regenerate_button.click()
    await wait_until(lambda: chat.transcript.messages[-1].text == "two" and not chat.running)
    await wait_until(lambda: chat.session is not None and not chat.session.busy)
    reply = chat.transcript.messages[-1]
    await wait_until(lambda: reply.versions is not None and reply.versions.isVisibleTo(window))
    return chat.transcript.messages[0], reply


def _menu_entries(window, title: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The menu bar's ``title`` menu as it opens (its icons are drawn on ``aboutToShow``, the
    signal Qt sends before showing it; a popup() here, inside the test's coroutine, would need
    processEvents(), which hangs a qasync loop) and its entries."""
    for entry in window.menuBar().actions():
        menu = entry.menu()
        if isinstance(menu, QMenu) and entry.text().replace("&", "") == title:
            assert all(a.icon().isNull() for a in menu.actions()), "menu icons are drawn on opening"
            menu.aboutToShow.emit()
            return {a.text(): a for a in menu.actions() if a.text()}
    raise AssertionError(f"no {title} menu")


async def test_the_controls_a_user_looks_for_have_icons(sim, window, qtbot) -> None:
    user, reply = await _reply_with_versions(sim, window)
    chat, conv = window.chat, window.conversations
    buttons: dict[str, QAbstractButton] = {
        "New chat": conv.new_button, "Send": chat.send_button, "Stop": chat.stop_button,
        "Attach": chat.attach_button, "Tools": chat.tools_button, "Reload models": chat.refresh_button,
        "Edit": user.edit_button, "Regenerate": reply.regenerate_button, "Branch": reply.branch_button,
        "Previous version": reply.versions.previous_button, "Next version": reply.versions.next_button,
    }
    for what, button in buttons.items():
        assert not button.icon().isNull(), f"{what} has no icon"
        assert button.accessibleName().strip(), f"{what} lost its accessible name"
    # Primary actions keep their words beside the icon; small message actions show the icon
    # only, with the words as a tooltip.
    assert chat.send_button.text() == "Send" and conv.new_button.text() == "New chat"
    for small in (user.edit_button, reply.regenerate_button, reply.branch_button):
        assert small.toolButtonStyle().name == "ToolButtonIconOnly" and small.toolTip()
    assert [a for a in conv.search.actions() if not a.icon().isNull()], "the search field has no icon"
    menu = reply.message_menu()
    entries = {a.text(): a for a in menu.actions() if a.text()}
    for text in ("Copy", "Branch from here", "Delete"):
        assert not entries[text].icon().isNull(), f"message menu {text} has no icon"
    for title, texts in (("Chat", ("New chat", "Search chats", "Settings…", "Regenerate reply")),
                         ("Help", ("Keyboard shortcuts", "About Victor GUI"))):
        found = _menu_entries(window, title)
        for text in texts:
            assert not found[text].icon().isNull(), f"{title} → {text} has no icon"  # type: ignore[attr-defined]


async def test_a_theme_switch_repaints_the_icons_on_screen(sim, window, qtbot) -> None:
    _user, reply = await _reply_with_versions(sim, window)
    send, arrow = window.chat.send_button, reply.versions.previous_button
    settings_entry = _menu_entries(window, "Chat")["Settings…"]
    seen = {}
    for mode in ("light", "dark", "light"):
        apply_theme(mode)
        t = current_tokens()
        assert t.name == mode
        assert same(icon_ink(send.icon()), _rgb(t.button_text)), mode
        assert same(icon_ink(arrow.icon()), _rgb(t.muted_text)), mode
        assert same(icon_ink(settings_entry.icon()), _rgb(t.button_text)), mode  # type: ignore[attr-defined]
        seen[mode] = icon_ink(send.icon())
    assert seen["light"] != seen["dark"]


async def test_dashboard_and_model_manager_refresh_and_pull_have_icons(qtbot, window, pool, tmp_path) -> None:
    views = window.server_windows

    async def detect() -> GpuReport:
        return GpuReport(ram=RamInfo(8 << 30, 4 << 30))

    with llamacpp.make_server() as server:
        base = f"http://127.0.0.1:{server.port}"
        (tmp_path / "settings.yaml").write_text(
            f"config_version: 2\nendpoints:\n  - name: Desk\n    kind: llamacpp\n    url: {base}\n")
        await views.start(pool.http_client, settings_path=tmp_path / "settings.yaml", discover_fn=None,
                          gpu_detector=detect)
        servers_menu = _menu_entries(window, "Servers")
        assert not servers_menu["Endpoints…"].icon().isNull()  # type: ignore[attr-defined]
        views.endpoints_action.trigger()
        views.models_action.trigger()
        dash, manager = views.views["endpoints"], views.views["models"]
        await wait_until(lambda: base in dash.cards and dash.cards[base].state_text == "up")
        await wait_until(lambda: manager.table.rowCount() == 1)  # settled: nothing left in flight
        for button in (dash.refresh_button, dash.add_button, manager.refresh_button, manager.pull_button):
            assert isinstance(button, QPushButton) and not button.icon().isNull(), button.accessibleName()
            assert button.text(), "a labelled button keeps its words beside the icon"
        apply_theme("dark")
        try:
            assert same(icon_ink(dash.refresh_button.icon()), _rgb(DARK.button_text))
        finally:
            apply_theme("light")
        for name, view in (("endpoints", dash), ("models", manager)):
            view.close()
            await wait_until(lambda n=name: n not in views.views)
        await views.aclose()
