"""The chat at the window's minimum width: long model names, stats, tool calls and errors wrap
inside the transcript's view; nothing is clipped at the right edge, no horizontal scrolling.

Drives the real window against the llama-server simulator (a model with a very long name), then
checks widget geometry.
"""

from __future__ import annotations

import asyncio

from PySide6.QtWidgets import QLabel, QWidget

from tests.servers.base import Fault, Script, ScriptedToolCall
from tests.ui.conftest import wait_until
from victor_gui.ui.main_window import MIN_HEIGHT, MIN_WIDTH
from victor_gui.ui.widgets.wrap_label import ZWSP, breakable

LONG_MODEL = "hf.co/bartowski/Qwen2.5-Coder-32B-Instruct-abliterated-GGUF:Q4_K_M-imatrix-v2"


def _outside(viewport: QWidget, widget: QWidget) -> str | None:
    """Why ``widget`` does not fit the viewport horizontally (None when it does)."""
    left = widget.mapTo(viewport, widget.rect().topLeft()).x()
    right = left + widget.width()
    if left < 0 or right > viewport.width():
        return f"{widget.objectName() or type(widget).__name__}: x {left}..{right} of {viewport.width()}"
    return None


def _clipped_label(label: QLabel) -> str | None:
    """Why a word-wrapped label is too short for its text at its width (None when it is not)."""
    if label.wordWrap() and label.height() < label.heightForWidth(label.width()):
        return f"{label.objectName()}: height {label.height()} < {label.heightForWidth(label.width())}"
    return None


async def test_minimum_width_wraps_everything_inside_the_view(sim, window) -> None:
    sim.model = LONG_MODEL  # the name the server reports in its replies (the stats line)
    sim.models = [LONG_MODEL]
    sim.script(
        Script(text="A reply long enough to wrap over several lines in a narrow window. " * 4,
               reasoning="thinking", completion_tokens=123456,
               tool_calls=[ScriptedToolCall("read_file", {"path": "/srv/data/" + "x" * 80})]),
        Script(fault=Fault.UNAUTHORIZED),
    )
    chat = window.chat
    await chat.start()
    assert chat.model_combo.currentText() == LONG_MODEL
    for prompt in ("First question", "Second question"):
        chat.input.setPlainText(prompt)
        chat.send()
        await wait_until(lambda: not chat.running)
    ok, failed = chat.transcript.messages[1], chat.transcript.messages[3]
    assert LONG_MODEL in ok.stats_label.text() and "123456 tokens" in ok.stats_label.text()
    assert failed.error_label.isVisibleTo(window) and failed.retry_button.isVisibleTo(window)

    assert window.minimumWidth() == MIN_WIDTH and window.minimumHeight() == MIN_HEIGHT
    window.resize(100, 100)  # clamped to the minimum size
    await asyncio.sleep(0.2)  # layouts settle (height-for-width needs a pass or two)
    assert window.width() == MIN_WIDTH

    transcript = chat.transcript
    viewport = transcript.viewport()
    assert transcript.widget().width() <= viewport.width()
    assert transcript.horizontalScrollBar().maximum() == 0
    problems = []
    for view in transcript.messages:
        problems.append(_outside(viewport, view))
        for child in view.findChildren(QWidget):
            if child.isVisibleTo(view):
                problems.append(_outside(viewport, child))
                if isinstance(child, QLabel):
                    problems.append(_clipped_label(child))
    assert [p for p in problems if p] == []
    # The long title and stats line did wrap (more than one line), rather than being cut.
    line = ok.stats_label.fontMetrics().lineSpacing()
    assert ok.stats_label.height() >= 2 * line and ok.header.height() >= 2 * line
    assert ok.header.text() == f"{chat.current_choice().display_name} · {LONG_MODEL}"

    # The input row and the drop-downs fit the chat pane too.
    for widget in (chat.provider_combo, chat.model_combo, chat.refresh_button, chat.input,
                   chat.send_button, chat.stop_button, chat.status_label):
        assert _outside(chat, widget) is None, _outside(chat, widget)


def test_breakable_only_touches_long_words() -> None:
    assert breakable("short words stay as they are") == "short words stay as they are"
    broken = breakable(LONG_MODEL)
    assert broken.replace(ZWSP, "") == LONG_MODEL
    assert max(len(piece) for piece in broken.split(ZWSP)) <= 16
    assert breakable("a" * 40).split(ZWSP) == ["a" * 16, "a" * 16, "a" * 8]
