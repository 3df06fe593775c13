"""The Copy link above a code block puts exactly that block's source on the clipboard."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication

from victor_gui.ui.message_view import MessageView

pytestmark = pytest.mark.gui


def test_copy_link_copies_that_code_block(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = MessageView("assistant", "model")
    qtbot.addWidget(view)
    view.append_content("First:\n\n```sh\nls -la\n```\n\nSecond:\n\n```python\nx = 1\nprint(x)\n```\n")
    view.render_markdown()
    html = view.body.document().toHtml()
    assert "copy:0" in html and "copy:1" in html
    QGuiApplication.clipboard().setText("")
    view.body.anchorClicked.emit(QUrl("copy:1"))
    assert QGuiApplication.clipboard().text() == "x = 1\nprint(x)\n"
    view.body.anchorClicked.emit(QUrl("copy:0"))
    assert QGuiApplication.clipboard().text() == "ls -la\n"
