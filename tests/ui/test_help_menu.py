"""Help → About and Help → Keyboard shortcuts (issue 14: the menus had no Help)."""

from __future__ import annotations

from victor_gui import __version__
from victor_gui.core import app_dirs


def _help_actions(window):  # type: ignore[no-untyped-def]
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    return {a.text(): a for a in menu.actions() if a.text()}


async def test_about_names_version_folders_log_and_licences(clean_env, window, store) -> None:
    actions = _help_actions(window)
    actions["About Victor GUI"].trigger()
    dialog = window.dialogs["about"]
    assert dialog.isVisible()
    text = dialog.text.toPlainText()
    assert f"Victor GUI {__version__}" in text and "Apache License 2.0" in text
    assert str(store.path.parent) in text  # the data folder really in use
    assert str(app_dirs.config_dir()) in text and str(app_dirs.log_dir() / "victor_gui.log") in text
    assert "httpx" in text and "BSD" in text  # licences read from the installed packages
    assert "PySide6-Essentials" in text and "LGPL" in text
    dialog.close()


async def test_shortcuts_lists_the_keys_that_work(clean_env, window) -> None:
    _help_actions(window)["Keyboard shortcuts"].trigger()
    dialog = window.dialogs["shortcuts"]
    table = dialog.table
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["Ctrl+N"] == "New chat" and rows["Ctrl+K"] == "Choose model"
    assert rows["Ctrl+/"] == "Keyboard shortcuts" and rows["Esc"].startswith("Stop")
    assert rows["Ctrl+Enter"] == "Send the message"
    dialog.close()
