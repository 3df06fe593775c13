"""One message of the transcript: header, collapsible reasoning, tool calls, body, stats, error.

The body's pieces and their Markdown rendering, live while a reply streams and final once it
ended, are :mod:`victor_gui.ui.message_body`'s (a mixin of this view); here are the message's
other parts, its content (appended, stored in steps, replaced) and its menu.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QHBoxLayout,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from victor_gui.ui.icons import NAME_PROPERTY, set_icon
from victor_gui.ui.message_body import PIECE_CHARS, BodyPieces, cut_at_block, markdown_worthy
from victor_gui.ui.widgets.auto_height_text import AutoHeightText
from victor_gui.ui.widgets.wrap_label import WrapLabel

if TYPE_CHECKING:
    import asyncio

    from victor_gui.services.markdown_render import RenderedPart
    from victor_gui.ui.message_body import BodyPiece
    from victor_gui.ui.version_switcher import VersionSwitcher

# A stored message opens with at most this much of its body shown, and a "Show more" button
# adds the next MORE_STEP_CHARS per click. Showing a 10 MB message whole froze the window 4-9 s
# and took 0.7-1.4 GB (one plain document laid out whole, then ~3,500 rendered pieces); a
# bounded step keeps each click's cost bounded too (one step is rendered in ~33 pieces, one per
# event-loop turn), where "show all the rest" would bring the freeze back on click.
STORED_HEAD_CHARS = 64_000
MORE_STEP_CHARS = 100_000
# Such a head or step is not put in the body as plain text first (100 K characters of plain text
# take ~0.3 s to insert and ~0.4 s to lay out, on the loop): it waits for
# render_markdown_async, which parses it in a thread and builds its pieces one per loop turn.
# Text that will not be rendered (markdown_worthy: a very long line) is shown plain, at most this
# much per step.
PLAIN_STEP_CHARS = 20_000


def megabytes(chars: int) -> str:
    """A size for people: ``0.4 MB``, ``9.6 MB`` (characters counted as bytes: close enough)."""
    return f"{chars / 1_000_000:.1f} MB"



def _slot(layout: QVBoxLayout, slot: QBoxLayout | None = None) -> QBoxLayout:
    """An empty box in ``layout`` where a widget made later goes (it takes no room till then)."""
    slot = slot if slot is not None else QVBoxLayout()
    slot.setContentsMargins(0, 0, 0, 0)
    layout.addLayout(slot)
    return slot


def _hidden_label(slot: QBoxLayout, name: str, stretch: int = 0) -> WrapLabel:
    """A hidden label named ``name`` (the theme styles it by that name), put in ``slot``."""
    label = WrapLabel()
    label.setObjectName(name)
    label.hide()
    slot.addWidget(label, stretch)
    return label


class MessageView(BodyPieces, QFrame):
    """One message: a header, reasoning (collapsible), tool calls, the body, stats, an error row."""

    retry_requested = Signal()
    # More of a long stored body was shown (see set_stored_content): its owner renders it.
    more_shown = Signal()
    edit_requested = Signal()  # a user message: put it back in the input to edit and resend
    regenerate_requested = Signal()  # the last reply: answer the last user message again
    version_requested = Signal(int)  # issue 14: show this version (a message id) instead
    branch_requested = Signal()  # issue 14: a new chat with the history up to this message
    delete_requested = Signal()  # issue 14: the message menu's Delete (the pane offers Undo)

    def __init__(self, role: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.message_id: int | None = None  # the store row shown here, once known
        self.setObjectName("userMessage" if role == "user" else "assistantMessage")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(3)

        # Header, tool calls, stats and error wrap, long words included (WrapLabel): in a narrow
        # window a long model name must not widen the transcript past its view.
        self.header = WrapLabel(title)
        self.header.setObjectName("messageHeader")
        header_row = QHBoxLayout()
        header_row.setContentsMargins(0, 0, 0, 0)
        header_row.addWidget(self.header, 1)
        # Small message actions: icon-only (drawn when first shown, see set_actions), flat, with
        # the words as tooltip and accessible name (the text is kept for code that reads it).
        self.edit_button = QToolButton()
        self.edit_button.setText("Edit")
        self.edit_button.setAccessibleName("Edit and resend this message")
        self.edit_button.setToolTip("Edit and resend")
        self.edit_button.clicked.connect(self.edit_requested)
        self.edit_button.hide()
        self.regenerate_button = QToolButton()
        self.regenerate_button.setText("Regenerate")
        self.regenerate_button.setAccessibleName("Regenerate this reply")
        self.regenerate_button.setToolTip("Regenerate (Ctrl+R)")
        self.regenerate_button.clicked.connect(self.regenerate_requested)
        self.regenerate_button.hide()
        for button in (self.edit_button, self.regenerate_button):
            button.setAutoRaise(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
            header_row.addWidget(button)
        self._header_row = header_row
        self.versions: VersionSwitcher | None = None  # made when the message has other versions
        self.branch_button: QToolButton | None = None  # made once the message is stored
        layout.addLayout(header_row)

        # The reasoning toggle and box are made when the first reasoning arrives (see
        # _reasoning_widgets), between the header and the tool calls.
        self._reasoning: tuple[QToolButton, AutoHeightText] | None = None

        # The tool-call line, "Show more", the stats line and the error row are made when first
        # needed, in these slots (empty layouts take no room): most messages show few of them,
        # and each hidden widget held ~15 KB in every message view built.
        self._tools_label: WrapLabel | None = None
        self._tools_slot = _slot(layout)

        # The body: finished pieces, then ``self.body``, the last piece, where text is appended.
        self._body_box = QVBoxLayout()
        self._body_box.setContentsMargins(0, 0, 0, 0)
        self._body_box.setSpacing(4)  # what a block margin would give inside one document
        layout.addLayout(self._body_box)
        self._pieces: list[BodyPiece] = []  # finished pieces, before self.body
        self._frozen_chars = 0  # source characters shown by self._pieces
        self._frozen_code = 0  # code blocks in them (Copy links are numbered across the message)
        self._live_task: asyncio.Task[None] | None = None  # render_markdown_live's steps
        # Finished blocks the body shows, rendered by the live renders, after the finished
        # pieces (see _plan_live): kept, so a live render parses only the text after them.
        self._done: list[RenderedPart] = []
        # Whether the body shows its text plain (no render yet, or the rest of a burst): a live
        # render that cuts pieces off it then only takes their text out of it (see _render_live).
        self._body_plain = True
        self._render_epoch = 0  # bumped by every render that replaces the body (live ones check it)
        # On-loop milliseconds of the last live render (the frame buffer spaces renders by it).
        self.live_render_ms = 0.0
        # Whether the last live render left part of the tail plain (a burst): the frame buffer
        # then asks for the next one sooner, so the plain rest does not keep growing.
        self.live_behind = False
        self.body = self._new_piece()
        self._body_box.addWidget(self.body)
        # Of a long stored body, what is not shown yet (set_stored_content), and its button.
        self._rest = ""
        self._more_button: QPushButton | None = None
        self._more_slot = _slot(layout)
        self._stats_label: WrapLabel | None = None
        self.stats_slot = _slot(layout)  # also where a reply's sources go (chat_attach)
        self._error_row: tuple[WrapLabel, QPushButton] | None = None
        self._error_slot = _slot(layout, QHBoxLayout())
        self._parts: list[str] = []
        self._length = 0
        self._reasoning_chars = 0
        self._install_menu(self)
        self._install_menu(self.body)

    # -- content --------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The body text as received (before Markdown rendering), shown or not yet."""
        return self.shown_text + self._rest if self._rest else self.shown_text

    @property
    def shown_text(self) -> str:
        """The part of the body on screen (all of it unless a long stored one is cut)."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def text_length(self) -> int:
        return self._length

    @property
    def hidden_chars(self) -> int:
        """Characters of a long stored body not shown yet."""
        return len(self._rest)

    def set_stored_content(self, text: str) -> None:
        """Show a stored body: at most :data:`STORED_HEAD_CHARS` of it, the rest a step per click
        of "Show more" (see :data:`STORED_HEAD_CHARS` for why). A long head appears once
        :meth:`render_markdown_async` (which the owner runs for every stored message) built it."""
        self._add_step(text, STORED_HEAD_CHARS)

    def show_more(self) -> None:
        """Show the next step of a long stored body; :attr:`more_shown` asks for its rendering."""
        if self._rest:
            self._add_step(self._rest, MORE_STEP_CHARS)
            self.more_shown.emit()

    def _add_step(self, text: str, limit: int) -> None:
        step, rest = cut_at_block(text, limit)
        if len(step) <= 2 * PIECE_CHARS:
            self.append_content(step)  # short: shown at once, rendered as any stored message
        elif markdown_worthy(step):
            self._parts.append(step)  # the rendering builds its pieces (see PLAIN_STEP_CHARS)
            self._length += len(step)
        else:
            step, rest = cut_at_block(text, PLAIN_STEP_CHARS)
            self.append_content(step)
        self._rest = rest
        self._update_more()

    @property
    def more_button(self) -> QPushButton:
        """"Show more (…)" under a long stored body (made on first use)."""
        if self._more_button is None:
            button = QPushButton()
            button.setObjectName("showMore")
            button.setAccessibleName("Show more of this message")
            button.clicked.connect(self.show_more)
            button.hide()
            self._more_slot.addWidget(button, 0, Qt.AlignmentFlag.AlignLeft)
            self._more_button = button
        return self._more_button

    def _update_more(self) -> None:
        left = len(self._rest)
        if not left and self._more_button is None:
            return
        self.more_button.setVisible(left > 0)
        if left:
            step = min(left, MORE_STEP_CHARS)
            self.more_button.setText(f"Show more ({megabytes(step)} of {megabytes(left)} not shown)")
            self.more_button.setAccessibleName(f"Show more of this message: {megabytes(left)} not shown")

    def append_content(self, text: str) -> None:
        if text:
            self._parts.append(text)
            self._length += len(text)
            self.body.append_plain(text)

    def replace_content(self, text: str) -> None:
        """Show ``text`` instead of the body so far (an edited message)."""
        for piece in self._pieces:
            piece.view.deleteLater()
        self._pieces.clear()
        self._frozen_chars = self._frozen_code = 0
        self._done = []
        self._body_plain = True
        self._render_epoch += 1
        self.body.clear()
        self.body._block_len = 0
        self._parts.clear()
        self._length = 0
        self._rest = ""
        self._update_more()
        self.append_content(text)

    @property
    def reasoning_toggle(self) -> QToolButton:
        """The "Reasoning (N chars)" button that shows or hides the reasoning box."""
        return self._reasoning_widgets()[0]

    @property
    def reasoning_view(self) -> AutoHeightText:
        """The reasoning box (hidden until the toggle shows it)."""
        return self._reasoning_widgets()[1]

    def _reasoning_widgets(self) -> tuple[QToolButton, AutoHeightText]:
        # Made on first use: most messages have no reasoning, and the box (a text browser and
        # its document) was a third of the cost of every message view built (~70 KB and ~3 ms
        # each: opening a chat, scrolling back through a long one, every new exchange).
        if self._reasoning is None:
            toggle = QToolButton()
            toggle.setCheckable(True)
            toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            toggle.setArrowType(Qt.ArrowType.RightArrow)
            toggle.setText("Reasoning")
            toggle.setAccessibleName("Show or hide the model's reasoning")
            toggle.toggled.connect(self._toggle_reasoning)
            toggle.hide()
            view = AutoHeightText(max_height=160)
            view.setObjectName("reasoning")
            view.setAccessibleName("Model reasoning")
            view.hide()
            layout = self.layout()
            assert isinstance(layout, QVBoxLayout)
            at = layout.indexOf(self._tools_slot)
            layout.insertWidget(at, toggle)
            layout.insertWidget(at + 1, view)
            self._reasoning = (toggle, view)
        return self._reasoning

    def append_reasoning(self, text: str) -> None:
        if not text:
            return
        toggle, view = self._reasoning_widgets()
        if toggle.isHidden():
            toggle.show()
        view.append_plain(text)
        self._reasoning_chars += len(text)
        toggle.setText(f"Reasoning ({self._reasoning_chars} chars)")

    @property
    def reasoning_text(self) -> str:
        return self._reasoning[1].toPlainText() if self._reasoning is not None else ""

    def _toggle_reasoning(self, shown: bool) -> None:
        self.reasoning_view.setVisible(shown)
        self.reasoning_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    @property
    def tools_label(self) -> WrapLabel:
        """The tool calls of the reply, a line each (made on first use)."""
        if self._tools_label is None:
            self._tools_label = _hidden_label(self._tools_slot, "toolCalls")
            self._tools_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return self._tools_label

    def set_tool_calls(self, lines: list[str]) -> None:
        if not lines and self._tools_label is None:
            return
        self.tools_label.setText("\n".join(f"🔧 {line}" for line in lines))
        self.tools_label.setVisible(bool(lines))

    def set_actions(self, *, edit: bool = False, regenerate: bool = False) -> None:
        """Show the Edit (user message) and Regenerate (last reply) buttons."""
        # Icons drawn on first show: most messages never show them (cached: a look-up each).
        if edit and not self.edit_button.property(NAME_PROPERTY):
            set_icon(self.edit_button, "edit", "muted")
        if regenerate and not self.regenerate_button.property(NAME_PROPERTY):
            set_icon(self.regenerate_button, "regenerate", "muted")
        self.edit_button.setVisible(edit)
        self.regenerate_button.setVisible(regenerate)

    def set_versions(self, ids: tuple[int, ...] | None) -> None:
        """Show the "‹ 2/3 ›" switcher for this message's versions (None or one: hidden)."""
        if not ids or len(ids) < 2 or self.message_id is None:
            if self.versions is not None:
                self.versions.hide()
            return
        if self.versions is None:
            from victor_gui.ui.version_switcher import VersionSwitcher

            self.versions = VersionSwitcher()
            self.versions.chosen.connect(self.version_requested)
            self._header_row.insertWidget(1, self.versions)
        self.versions.set_versions(ids, self.message_id)
        self.versions.show()

    def set_branchable(self, shown: bool) -> None:
        """Offer "Branch" (a new chat with the history up to this message)."""
        if self.branch_button is None:
            if not shown:
                return
            words = "Branch from here: a new chat with the history up to this message"
            self.branch_button = QToolButton()
            self.branch_button.setText("Branch")
            self.branch_button.setAutoRaise(True)  # flat: it is on every message, it must not shout
            self.branch_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
            set_icon(self.branch_button, "branch", "muted")
            self.branch_button.setAccessibleName(words)
            self.branch_button.setToolTip(words)
            self.branch_button.clicked.connect(self.branch_requested)
            self._header_row.addWidget(self.branch_button)
        self.branch_button.setVisible(shown)

    @property
    def stats_label(self) -> WrapLabel:
        """The reply's figures (tokens, speed; made on first use)."""
        if self._stats_label is None:
            self._stats_label = _hidden_label(self.stats_slot, "messageStats")
        return self._stats_label

    def set_stats(self, text: str) -> None:
        if not text and self._stats_label is None:
            return
        self.stats_label.setText(text)
        self.stats_label.setVisible(bool(text))

    def _error_widgets(self) -> tuple[WrapLabel, QPushButton]:
        if self._error_row is None:
            label = _hidden_label(self._error_slot, "messageError", stretch=1)
            retry = QPushButton("Retry")
            retry.setAccessibleName("Retry this reply")
            set_icon(retry, "regenerate")
            retry.clicked.connect(self.retry_requested)
            retry.hide()
            self._error_slot.addWidget(retry)
            self._error_row = (label, retry)
        return self._error_row

    @property
    def error_label(self) -> WrapLabel:
        """Why the reply failed (made on first use, with :attr:`retry_button`)."""
        return self._error_widgets()[0]

    @property
    def retry_button(self) -> QPushButton:
        """Retry, beside :attr:`error_label`."""
        return self._error_widgets()[1]

    def set_error(self, text: str | None, *, retry: bool = True) -> None:
        if not text and self._error_row is None:
            return
        self.error_label.setText(text or "")
        self.error_label.setVisible(bool(text))
        self.retry_button.setVisible(bool(text) and retry)

    # -- the message menu (right-click) -------------------------------------------------------------

    def _install_menu(self, widget: QWidget) -> None:
        widget.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        widget.customContextMenuRequested.connect(
            lambda pos, w=widget: self.message_menu(w).popup(w.mapToGlobal(pos)))

    def message_menu(self, source: QWidget | None = None) -> QMenu:
        """The right-click menu: Copy (the selection, else the message as shown), Copy as
        Markdown, Copy code, Branch from here, Delete. Qt's own text menu offered only a
        greyed-out Copy."""
        from victor_gui.services.markdown_render import code_blocks

        menu = QMenu(self)
        selected = source.textCursor().selectedText() if isinstance(source, AutoHeightText) else ""
        copy = menu.addAction("Copy selection" if selected else "Copy")
        set_icon(copy, "copy")
        copy.triggered.connect(lambda: self._to_clipboard(
            selected.replace("\u2029", "\n") if selected else self.plain_text()))
        menu.addAction("Copy as Markdown").triggered.connect(lambda: self._to_clipboard(self.text))
        blocks = code_blocks(self.shown_text)
        if len(blocks) == 1:
            code = menu.addAction("Copy code")
            code.triggered.connect(lambda: self._to_clipboard(blocks[0]))
            set_icon(code, "code")
        elif blocks:
            sub = menu.addMenu("Copy code")
            set_icon(sub.menuAction(), "code")
            for i, block in enumerate(blocks):
                first = block.strip().splitlines()[0][:40] if block.strip() else ""
                sub.addAction(f"Block {i + 1}: {first}").triggered.connect(
                    lambda _=False, b=block: self._to_clipboard(b))
        stored = self.message_id is not None
        menu.addSeparator()
        branch = menu.addAction("Branch from here")
        set_icon(branch, "branch")
        branch.setEnabled(stored and self.branch_button is not None and self.branch_button.isVisibleTo(self))
        branch.triggered.connect(self.branch_requested)
        delete = menu.addAction("Delete")
        set_icon(delete, "trash")
        delete.setEnabled(stored)
        delete.triggered.connect(self.delete_requested)
        return menu

    def plain_text(self) -> str:
        """The message as shown (rendered Markdown as plain text)."""
        return "\n".join(p.toPlainText() for p in self.pieces).strip() or self.text

    @staticmethod
    def _to_clipboard(text: str) -> None:
        QGuiApplication.clipboard().setText(text)

    def copy_code_block(self, index: int) -> None:
        """Put code block ``index`` of this message on the clipboard (the Copy link above it)."""
        from victor_gui.services.markdown_render import code_blocks

        blocks = code_blocks(self.shown_text)  # links number the shown blocks, in order
        if 0 <= index < len(blocks):
            QGuiApplication.clipboard().setText(blocks[index])
