"""Keyboard and screen-reader checks on the real window: every interactive control has an
accessible name, Tab moves through the compare view in reading order, and the compare keys work."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QScrollBar,
    QTextEdit,
    QWidget,
)

from tests.servers.base import Script
from tests.ui.conftest import wait_until

INTERACTIVE = (QAbstractButton, QComboBox, QLineEdit, QPlainTextEdit, QTextEdit, QAbstractItemView,
               QAbstractSlider)


def unnamed_controls(root: QWidget) -> list[str]:
    """Interactive widgets under ``root`` without an accessible name (Qt's own parts skipped:
    scroll bars, a combo box's popup list, a line edit's clear button)."""
    missing = []
    for widget in [root, *root.findChildren(QWidget)]:
        if not isinstance(widget, INTERACTIVE) or isinstance(widget, QScrollBar):
            continue
        if widget.objectName().startswith("qt_"):  # Qt's own parts (the menu bar's » button)
            continue
        parent = widget.parentWidget()
        part_of: QWidget | None = None
        while parent is not None:
            if isinstance(parent, (QComboBox, QLineEdit)):
                part_of = parent
                break
            parent = parent.parentWidget()
        if isinstance(part_of, QLineEdit) or (part_of is not None and not isinstance(widget, QLineEdit)):
            continue  # a combo's popup list, a line edit's clear button: parts of a named control
        if not widget.accessibleName().strip():
            label = getattr(widget, "text", lambda: "")()
            missing.append(f"{type(widget).__name__}({widget.objectName() or label!r})")
    return missing


async def test_every_control_in_the_compare_view_is_named(sim, window, qtbot) -> None:
    sim.script(Script(text="Named **reply**.", reasoning="thinking"))
    await window.chat.start()
    window.compare.split_action.trigger()
    compare = window.compare.view
    qtbot.keyClick(compare.input, Qt.Key.Key_Backslash, Qt.KeyboardModifier.ControlModifier)
    await wait_until(lambda: all(p.picker.current_model() for p in compare.panes))
    compare.input.setPlainText("hi")
    compare.send()
    await wait_until(lambda: not compare.running)
    assert len(compare.panes) == 3 and compare.panes[0].transcript.messages
    assert unnamed_controls(compare) == []
    names = [p.picker.model_combo.accessibleName() for p in compare.panes]
    assert len(set(names)) == 3  # each pane's controls say which pane they belong to
    assert compare.panes[0].picker.model_combo.accessibleDescription()


async def test_tab_walks_the_compare_view_in_reading_order(sim, window, qtbot) -> None:
    await window.chat.start()
    window.compare.split_action.trigger()
    compare = window.compare.view
    left, right = compare.panes
    expected = [left.picker.provider_combo, left.picker.model_combo, left.close_button,
                left.continue_button, right.picker.provider_combo, right.picker.model_combo,
                right.close_button, right.continue_button, compare.input, compare.send_button]
    left.continue_button.setEnabled(True)  # (enabled once a reply is there; Tab skips it before)
    right.continue_button.setEnabled(True)
    left.picker.provider_combo.setFocus()
    seen = [QApplication.focusWidget()]
    for _ in expected[1:]:
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())

    def owner(widget: QWidget) -> QWidget:
        # An editable combo's line edit takes the focus for it.
        parent = widget.parentWidget()
        return parent if isinstance(parent, QComboBox) else widget

    assert [owner(w) for w in seen] == expected


async def test_tab_walks_the_chat_pane_provider_model_message_send(sim, window, qtbot) -> None:
    chat = window.chat
    await chat.start()
    # The tools switch (issue 12) sits right of the model picker and is reached after it; the
    # paper clip (issue 13) sits left of the message and is reached just before it.
    expected = [chat.provider_combo, chat.model_combo, chat.tools_button, chat.attach_button, chat.input,
                chat.send_button]
    chat.provider_combo.setFocus()
    seen = [QApplication.focusWidget()]
    for _ in expected[1:]:
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
    owners = [w.parentWidget() if isinstance(w.parentWidget(), QComboBox) else w for w in seen]
    assert owners == expected
    assert chat.input.toPlainText() == ""  # Tab moved on; it typed nothing


async def test_every_control_in_the_chat_pane_is_named(sim, window) -> None:
    sim.script(Script(text="A reply.", reasoning="thinking"))
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("hi")
    chat.send()
    await wait_until(lambda: not chat.running)
    assert unnamed_controls(chat) == []
    assert unnamed_controls(window) == []
