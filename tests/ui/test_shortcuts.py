"""The six chat keys on the whole window, pressed as a user would: Ctrl+Enter sends, Esc stops,
Ctrl+N starts a new chat, Ctrl+K opens the model list, Ctrl+F goes to search, Ctrl+\\ splits into
compare (and Ctrl+K, Ctrl+Enter and Esc work there too)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.servers.base import Script
from tests.ui.conftest import wait_until
from tests.ui.test_accessibility import unnamed_controls

CTRL = Qt.KeyboardModifier.ControlModifier


def focus_in(widget) -> bool:  # type: ignore[no-untyped-def]
    focus = QApplication.focusWidget()
    return focus is not None and (focus is widget or widget.isAncestorOf(focus))


def close_list(combo, window) -> None:  # type: ignore[no-untyped-def]
    """Close the list; the offscreen platform does not hand activation back to the window."""
    combo.hidePopup()
    window.activateWindow()


def list_open(combo) -> bool:  # type: ignore[no-untyped-def]
    """The combo's list is open and has the keyboard (the popup is its own window)."""
    view = combo.view()
    return view.isVisible() and (view.hasFocus() or focus_in(combo))


async def test_the_six_keys_work_on_the_window(sim, window, qtbot) -> None:
    sim.script(Script(text="z" * 600, pieces=600, delay_s=0.005), Script(text="short"))
    chat = window.chat
    await chat.start()
    await wait_until(lambda: chat.model_combo.count() > 0)
    # Ctrl+Enter sends.
    chat.input.setPlainText("Write a lot")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return, CTRL)
    await wait_until(lambda: chat.running and len(chat.transcript.messages) == 2)
    # Esc stops.
    await wait_until(lambda: len(chat.transcript.messages[-1].text) > 5)
    qtbot.keyClick(chat.input, Qt.Key.Key_Escape)
    await wait_until(lambda: not chat.running)
    assert 5 < len(chat.transcript.messages[-1].text) < 600
    # Ctrl+N: a new, empty chat.
    qtbot.keyClick(chat.input, Qt.Key.Key_N, CTRL)
    await wait_until(lambda: chat.transcript.messages == [])
    # Ctrl+K: the model list opens, with the focus on it.
    qtbot.keyClick(chat.input, Qt.Key.Key_K, CTRL)
    assert list_open(chat.model_combo)
    close_list(chat.model_combo, window)
    # Ctrl+F: the focus goes to the conversation search.
    qtbot.keyClick(chat.input, Qt.Key.Key_F, CTRL)
    assert focus_in(window.conversations.search)
    # Ctrl+\: compare, two panes; Ctrl+K there opens the focused pane's model list.
    qtbot.keyClick(window.conversations.search, Qt.Key.Key_Backslash, CTRL)
    compare = window.compare.view
    assert compare.isVisible() and len(compare.panes) == 2
    await wait_until(lambda: all(p.picker.current_model() for p in compare.panes))
    right = compare.panes[1].picker
    right.provider_combo.setFocus()
    qtbot.keyClick(right.provider_combo, Qt.Key.Key_K, CTRL)
    assert list_open(right.model_combo)
    close_list(right.model_combo, window)
    # Ctrl+Enter and Esc in compare.
    sim.script(Script(text="q" * 600, pieces=600, delay_s=0.005))
    compare.input.setPlainText("again")
    qtbot.keyClick(compare.input, Qt.Key.Key_Return, CTRL)
    assert compare.running
    qtbot.keyClick(compare.input, Qt.Key.Key_Escape)
    await wait_until(lambda: not compare.running)
    assert unnamed_controls(window) == []
