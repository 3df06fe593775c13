"""The window's side of tools (issue 12): the inline approval prompt, the folded tool-call
block, and the :class:`WindowAsker` that the chat's tool loop asks through (the per-chat tools
switch is :mod:`victor_gui.ui.tools_switch`).

Everything here codes against :mod:`victor_gui.services.tool_types` only, so the views plug in
whatever runs the tools. The approval prompt sits in the transcript under the streaming reply
(no modal dialog per call); several calls of one turn stack one prompt each, answered in any
order. The blocks and prompts choose their colours from the application palette (light or
dark) themselves, so they stay readable whichever theme is on (contrast ≥ 4.5, tested).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QColor, QFont, QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from victor_gui.services.tool_types import (
    ApprovalAnswer,
    ApprovalRequest,
    ToolCallRecord,
    ToolCallState,
)
from victor_gui.ui.stored_render import pretty_arguments, shown_result, tool_summary
from victor_gui.ui.widgets.wrap_label import WrapLabel

if TYPE_CHECKING:
    from victor_gui.ui.transcript import Transcript

# Colours per theme: text and state colours each reach ≥ 4.5:1 on their background (tested).
COLOURS: dict[str, dict[str, str]] = {
    "light": {"block_bg": "#f3f4f7", "block_fg": "#1f2328", "block_border": "#c9ced8",
              "prompt_bg": "#fff6e5", "prompt_fg": "#2e2100", "prompt_border": "#d9a441",
              "code_bg": "#ffffff",
              "waiting": "#7a4f00", "running": "#0b57d0", "done": "#17692e", "error": "#b3261e",
              "denied": "#7a4f00", "cancelled": "#555a61"},
    "dark": {"block_bg": "#262a31", "block_fg": "#e6e6e6", "block_border": "#3f4550",
             "prompt_bg": "#3a2f16", "prompt_fg": "#f7e9c8", "prompt_border": "#7a6126",
             "code_bg": "#1d2025",
             "waiting": "#f0c060", "running": "#8ab4f8", "done": "#7dd38b", "error": "#ff8a80",
             "denied": "#f0c060", "cancelled": "#b4b8bf"},
}
STATE_MARKS = {"waiting": "?", "running": "…", "done": "✓", "error": "✗", "denied": "⊘", "cancelled": "■"}
# The unfolded arguments and result: scroll inside this height rather than grow the transcript.
BODY_MAX_HEIGHT = 260

def theme_name() -> str:
    """``dark`` when the application's palette is dark, else ``light``."""
    app = QApplication.instance()
    window = app.palette().window().color() if isinstance(app, QApplication) else QColor("#ffffff")
    return "dark" if window.lightness() < 128 else "light"


def _mono() -> QFont:
    font = QFont("monospace")
    font.setStyleHint(QFont.StyleHint.Monospace)
    return font


class CodeView(QPlainTextEdit):
    """Read-only monospace text (arguments, a result) as tall as its wrapped lines, up to
    ``max_lines_height``; beyond that it scrolls inside."""

    def __init__(self, max_lines_height: int = BODY_MAX_HEIGHT, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._limit = max_lines_height
        self.setReadOnly(True)
        self.setFont(_mono())
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setTabChangesFocus(True)
        self.setMaximumHeight(max_lines_height)

    def show_text(self, text: str) -> None:
        self.setPlainText(text)
        self.fit()

    def fit(self) -> None:
        """Height from the wrapped lines at the current width (summed until the cap)."""
        total = 0.0
        block = self.document().firstBlock()
        while block.isValid() and total <= self._limit:
            total += self.blockBoundingRect(block).height()
            block = block.next()
        margins = 2 * (self.frameWidth() + self.document().documentMargin()) + 2
        self.setFixedHeight(min(int(total + margins), self._limit))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():  # rewrapped: lines changed
            self.fit()


class _Themed(QFrame):
    """A frame that restyles itself when the application palette flips between light and dark."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._theme = ""

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange):
            self.restyle()
        super().changeEvent(event)

    def restyle(self, *, force: bool = False) -> None:
        theme = theme_name()
        if theme != self._theme or force:  # guarded: a style sheet change sends PaletteChange
            self._theme = theme
            self.setStyleSheet(self.style_sheet(COLOURS[theme]))

    def style_sheet(self, c: dict[str, str]) -> str:
        raise NotImplementedError


class ToolCallBlock(_Themed):
    """One tool call in the transcript: folded to one line (``⚙ server · tool — done in 0.4 s``
    and a state mark in its colour), unfolding to the arguments and the result (monospace,
    scrollable, capped height). Updated in place as the call goes waiting → running → done."""

    def __init__(self, record: ToolCallRecord, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toolCallBlock")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.setSpacing(3)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.state_label = QLabel()
        self.state_label.setObjectName("toolState")
        self.header = QToolButton()
        self.header.setObjectName("toolHeader")
        self.header.setCheckable(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setArrowType(Qt.ArrowType.RightArrow)
        self.header.toggled.connect(self.set_expanded)
        row.addWidget(self.state_label)
        row.addWidget(self.header)
        row.addStretch(1)
        layout.addLayout(row)
        self.body = CodeView()
        self.body.setObjectName("toolBody")
        self.body.setAccessibleName("Tool call arguments and result")
        self.body.hide()
        layout.addWidget(self.body)
        self.record = record
        self.restyle()
        self.update_record(record)

    def style_sheet(self, c: dict[str, str]) -> str:
        return (f"QFrame#toolCallBlock {{ background: {c['block_bg']}; border: 1px solid {c['block_border']};"
                f" border-radius: 5px; }}"
                f" QToolButton#toolHeader {{ color: {c['block_fg']}; background: transparent; border: none;"
                f" text-align: left; }}"
                f" QPlainTextEdit#toolBody {{ color: {c['block_fg']}; background: {c['code_bg']};"
                f" border: 1px solid {c['block_border']}; }}"
                f" QLabel#toolState {{ color: {c[self.record.state.value]}; font-weight: bold; }}")

    @property
    def expanded(self) -> bool:
        return not self.body.isHidden()

    def set_expanded(self, shown: bool) -> None:
        """Unfold (arguments and result) or fold back to the one line."""
        if self.header.isChecked() != shown:
            self.header.setChecked(shown)  # comes back here through ``toggled``
            return
        self.header.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.body.setVisible(shown)
        if shown:
            self.body.show_text(self.body_text())

    def body_text(self) -> str:
        """What the unfolded block shows: arguments (full), then the result (capped)."""
        r = self.record
        parts = [f"Arguments\n{pretty_arguments(r.arguments, fold=False)}"]
        if r.result:
            parts.append(f"Result\n{shown_result(r.result)}")
        if r.approved_by:
            parts.append(f"Approved by: {r.approved_by}")
        return "\n\n".join(parts)

    @property
    def summary(self) -> str:
        r = self.record
        return tool_summary(r.server, r.tool, r.state.value, r.duration_s)

    def update_record(self, record: ToolCallRecord) -> None:
        """Show ``record`` (the same call, a later state)."""
        old_state = self.record.state
        self.record = record
        self.header.setText(self.summary)
        self.header.setAccessibleName(f"Tool call {record.tool} on {record.server}, {record.state.value}; "
                                      "press to show or hide its arguments and result")
        self.state_label.setText(STATE_MARKS.get(record.state.value, "•"))
        self.state_label.setAccessibleName(f"State: {record.state.value}")
        if record.state != old_state:
            self.restyle(force=True)
        if self.expanded:
            self.body.show_text(self.body_text())


class ApprovalPrompt(_Themed):
    """The inline prompt for one call: tool, server, arguments (pretty JSON, long strings cut
    with "Show all"), and Run once / Always allow this tool / Always allow this server / Deny.
    Enter runs once, Esc denies (also while a button or the arguments have the focus)."""

    answered = Signal(object)  # an ApprovalAnswer, once

    def __init__(self, request: ApprovalRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self.answer: ApprovalAnswer | None = None
        self.setObjectName("approvalPrompt")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName(f"Approve tool {request.tool} on {request.server}")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 8)
        layout.setSpacing(4)
        self.title = WrapLabel(f"⚙ Run the tool “{request.tool}” from the server “{request.server}”?")
        self.title.setObjectName("approvalTitle")
        self.title.setAccessibleName("Tool call to approve")
        layout.addWidget(self.title)
        self.arguments_view = CodeView()
        self.arguments_view.setObjectName("approvalArguments")
        self.arguments_view.setAccessibleName("Arguments of the tool call")
        layout.addWidget(self.arguments_view)
        self.show_all_button = QPushButton("Show all")
        self.show_all_button.setAccessibleName("Show the arguments in full")
        self.show_all_button.clicked.connect(self.show_all)
        layout.addWidget(self.show_all_button, 0, Qt.AlignmentFlag.AlignLeft)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.run_once_button = self._button("Run once", "Run this call once (Enter)", ApprovalAnswer.RUN_ONCE)
        self.always_tool_button = self._button("Always allow this tool",
                                               f"Always allow {request.tool} on {request.server}",
                                               ApprovalAnswer.ALWAYS_TOOL)
        self.always_server_button = self._button("Always allow this server",
                                                 f"Always allow every tool of {request.server}",
                                                 ApprovalAnswer.ALWAYS_SERVER)
        self.deny_button = self._button("Deny", "Deny this call (Esc); the model is told",
                                        ApprovalAnswer.DENY)
        for b in (self.run_once_button, self.always_tool_button, self.always_server_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.deny_button)
        layout.addLayout(row)
        self._folded = pretty_arguments(request.arguments)
        self._full = pretty_arguments(request.arguments, fold=False)
        self.arguments_view.show_text(self._folded)
        self.show_all_button.setVisible(self._folded != self._full)
        for w in (self, self.arguments_view, self.show_all_button, self.run_once_button,
                  self.always_tool_button, self.always_server_button, self.deny_button):
            w.installEventFilter(self)
        self.restyle()

    def _button(self, text: str, name: str, answer: ApprovalAnswer) -> QPushButton:
        button = QPushButton(text)
        button.setAccessibleName(name)
        button.setAutoDefault(False)
        button.clicked.connect(lambda: self.give(answer))
        return button

    def style_sheet(self, c: dict[str, str]) -> str:
        return (f"QFrame#approvalPrompt {{ background: {c['prompt_bg']};"
                f" border: 1px solid {c['prompt_border']}; border-radius: 6px; }}"
                f" QLabel#approvalTitle {{ color: {c['prompt_fg']}; font-weight: bold; }}"
                f" QPlainTextEdit#approvalArguments {{ color: {c['block_fg']}; background: {c['code_bg']};"
                f" border: 1px solid {c['prompt_border']}; }}")

    def show_all(self) -> None:
        """Show the arguments with no string cut."""
        self.arguments_view.show_text(self._full)
        self.show_all_button.hide()

    @property
    def folded(self) -> bool:
        """Whether some long argument is shown cut."""
        return self.arguments_view.toPlainText() != self._full

    def focus_default(self) -> None:
        """Put the keyboard focus on Run once (Enter answers from anywhere in the prompt)."""
        self.run_once_button.setFocus(Qt.FocusReason.OtherFocusReason)

    def give(self, answer: ApprovalAnswer) -> None:
        """Answer (once; later clicks are ignored)."""
        if self.answer is not None:
            return
        self.answer = answer
        for b in (self.run_once_button, self.always_tool_button, self.always_server_button, self.deny_button):
            b.setEnabled(False)
        self.answered.emit(answer)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Enter and Esc are the prompt's, wherever its focus is: claimed before the chat pane's
        # Esc (Stop) shortcut sees them, then answered.
        keys = (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress)
        if event.type() in keys and isinstance(event, QKeyEvent):
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape) and not event.modifiers():
                if event.type() == QEvent.Type.KeyPress:
                    self.give(ApprovalAnswer.DENY if key == Qt.Key.Key_Escape else ApprovalAnswer.RUN_ONCE)
                event.accept()
                return True
        return super().eventFilter(watched, event)


class WindowAsker:
    """The window's :data:`~victor_gui.services.tool_types.Asker`: shows an approval prompt at
    the end of ``transcript`` (under the streaming reply) and returns the person's answer. Calls
    of one turn stack one prompt each; when the reply is stopped (the awaiting task cancelled)
    the prompt is removed."""

    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript
        self.prompts: list[ApprovalPrompt] = []  # waiting for an answer, oldest first

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        prompt = ApprovalPrompt(request)
        answer: asyncio.Future[ApprovalAnswer] = asyncio.get_running_loop().create_future()
        def settle(value: ApprovalAnswer) -> None:
            if not answer.done():
                answer.set_result(value)

        prompt.answered.connect(settle)
        self.prompts.append(prompt)
        self.transcript.add_item(prompt)
        if len(self.prompts) == 1:
            prompt.focus_default()
        try:
            return await answer
        finally:
            self.prompts.remove(prompt)
            self.transcript.remove_item(prompt)
            if self.prompts:
                self.prompts[0].focus_default()


def tool_meta(event_meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record part of a ``tool_call`` event's or a stored tool message's meta (the record
    itself, or under ``"tool"``)."""
    if not isinstance(event_meta, dict):
        return None
    inner = event_meta.get("tool")
    return inner if isinstance(inner, dict) else event_meta



def show_tool_call(transcript: Transcript, meta: dict[str, Any] | None,
                   result: str = "") -> ToolCallBlock | None:
    """Show a ``tool_call`` event (or a stored tool message) in ``transcript``: the block of the
    same call updated in place, or a new block at the end. None when ``meta`` holds no call."""
    from victor_gui.ui.stored_render import tool_record_of

    record = tool_record_of(tool_meta(meta), result)
    if record is None:
        return None
    for item in transcript.items:
        if isinstance(item, ToolCallBlock) and record.call_id and item.record.call_id == record.call_id:
            item.update_record(record)
            return item
    block = ToolCallBlock(record)
    transcript.add_item(block)
    return block


def stored_tool_block(meta: dict[str, Any] | None, content: str) -> ToolCallBlock:
    """The folded block of a stored tool-result message (``meta["tool"]``; the result is the
    message's content), not yet placed (a reopened chat places a page at once)."""
    from victor_gui.ui.stored_render import tool_record_of

    record = tool_record_of(tool_meta(meta), content)
    if record is None:  # not a call record after all: shown as a failed call with its text
        record = ToolCallRecord(call_id="", server="?", tool="?", arguments={},
                                state=ToolCallState.ERROR, result=content)
    return ToolCallBlock(record)
