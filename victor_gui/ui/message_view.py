"""One message of the transcript: header, collapsible reasoning, tool calls, body, stats, error.

The body is a column of :class:`AutoHeightText` pieces, each with its own document. Streaming
appends to the last piece with a QTextCursor, so a long reply is never re-laid-out from the top
per token. Markdown is rendered per piece of a few thousand characters (see
:func:`~victor_gui.services.markdown_render.render_parts`): Qt parses and lays out a document
whole on the UI thread, so one 50 kB document with code would stall the window ~100 ms, while
pieces are built one per event-loop turn and a streaming reply only re-renders its last piece.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import (
    QGuiApplication,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from victor_gui.ui.icons import NAME_PROPERTY, set_icon
from victor_gui.ui.widgets.auto_height_text import AutoHeightText
from victor_gui.ui.widgets.wrap_label import WrapLabel

if TYPE_CHECKING:
    import asyncio

    from victor_gui.services.markdown_render import RenderedPart
    from victor_gui.ui.version_switcher import VersionSwitcher

# Markdown source per rendered piece: parsing, highlighting and laying out this much rich text
# (code, lists) costs ~5-10 ms on a slow machine, well inside a frame budget.
PIECE_CHARS = 3000
# While a reply streams, finished blocks are cut off into pieces of about this much source
# (smaller than PIECE_CHARS): the last piece is re-rendered every few frames, and that render,
# parse and Qt layout, grows with it (~15 ms for 3,000 characters with code on a slow machine,
# the longest loop gap while streaming).
LIVE_PIECE_CHARS = 1200
# While a reply streams, a live render parses at most this much of the text after the finished
# blocks (cut at a block break; finished blocks are kept rendered and never parsed again, see
# _plan_live): its complete blocks are rendered, and the rest stays plain until a later render.
# A parse's cost grows with the text it reads (~2 ms per 1,000 characters of rich Markdown on a
# slow machine, all on the loop); after a burst (a fast local server) the whole tail was parsed,
# up to 24,000 characters and 30-40 ms a render, the stream's longest loop gaps. Bounded, each
# render moves the finished blocks forward by up to this much, and what a burst left plain is
# rendered when the reply ends.
LIVE_TAIL_CHARS = 3000
# A theme change re-renders a streaming tail up to this long at once (MessageView.restyle).
LIVE_PARSE_CHARS = 24_000
# A reply with a line longer than this (minified JSON, a runaway repetition) stays plain text:
# rendered as Markdown it would become one paragraph that Qt lays out whole, a visible stall,
# and Markdown adds nothing to such a line anyway.
MARKDOWN_MAX_LINE = 8000
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
# Between two steps of a render (each a Qt document to build) the render waits this long, not
# ``sleep(0)``: on qasync a zero sleep is a zero Qt timer that often ran in the same timer pass
# as the step before, so two documents were built back to back with nothing in between, and a
# 1 ms wait lets the loop's other timers, and the frame's input and paint, run first. Measured
# replaying a 10,000 tok/s rich stream (main-thread CPU between ticks of a 1 ms ticker, the
# median of 3): p99 13.1-13.4 ms against 18.1-22.0 ms. qasync rounds a delay down to whole
# milliseconds, so 2 ms here is a 1 ms timer.
YIELD_S = 0.002


def cut_at_block(text: str, limit: int) -> tuple[str, str]:
    """``text`` split at most ``limit`` characters in, at a paragraph (else a line) break in the
    last fifth when there is one, so a Markdown block is rarely cut in two."""
    if len(text) <= limit:
        return text, ""
    floor = limit - limit // 5
    at = text.rfind("\n\n", floor, limit)
    at = at + 2 if at >= 0 else text.rfind("\n", floor, limit) + 1
    at = at if at > 0 else limit
    return text[:at], text[at:]


def megabytes(chars: int) -> str:
    """A size for people: ``0.4 MB``, ``9.6 MB`` (characters counted as bytes: close enough)."""
    return f"{chars / 1_000_000:.1f} MB"


@dataclass(frozen=True, slots=True)
class _LivePlan:
    """What one live render shows (see :func:`_plan_live`)."""

    freeze: list[RenderedPart]  # finished blocks, grouped: each group becomes a finished piece
    done: list[RenderedPart]  # finished blocks that stay in the body (fewer than a piece's worth)
    open: RenderedPart  # the last block, or after a burst the rest of the text, plain (no html;
    # then ``done`` is empty)


def _joined(parts: list[RenderedPart]) -> RenderedPart:
    from victor_gui.services.markdown_render import RenderedPart  # after first paint

    return RenderedPart("".join(p.source for p in parts), "".join(p.html for p in parts),
                        sum(p.code_blocks for p in parts))


def _plan_live(done: list[RenderedPart], fresh: str, first_code: int) -> _LivePlan | None:
    """A live render of a streaming body that shows the finished blocks ``done`` (rendered by
    earlier live renders) followed by ``fresh``, the text from the last block on; None when
    nothing changes for now.

    Only ``fresh`` is parsed, at most :data:`LIVE_TAIL_CHARS` of it: a block followed by another
    one is finished (a CommonMark block never reopens), so its HTML is kept and never parsed,
    highlighted or built again; only the last block is, until a later one starts. Finished
    blocks reaching :data:`LIVE_PIECE_CHARS` are cut off into a piece of their own."""
    from victor_gui.services.markdown_render import RenderedPart, render_parts  # after first paint

    head, rest = cut_at_block(fresh, LIVE_TAIL_CHARS)
    if not markdown_worthy(head):
        return None  # stays plain until the final render
    *finished, last = render_parts(head, 1, first_code_block=first_code)  # one part per block
    freeze: list[RenderedPart] = []
    group: list[RenderedPart] = []
    size = 0
    for block in [*done, *finished]:
        group.append(block)
        size += len(block.source)
        if size >= LIVE_PIECE_CHARS:
            freeze.append(_joined(group))
            group, size = [], 0
    if not rest:
        return _LivePlan(freeze, group, last)
    # A burst: the head's last block may go on in the rest (a list, a fence with blank lines),
    # so it is not finished and stays plain with the rest, and so do the finished blocks not
    # cut off (plain text appended after rendered HTML costs several times more to lay out,
    # ~12 ms for 3,000 characters on a slow machine, than in a plain document).
    if not freeze:
        return None  # nothing complete to cut off yet
    return _LivePlan(freeze, [], RenderedPart("".join(b.source for b in group) + last.source + rest, "", 0))


# Rendered once after the first paint, so the first reply does not pay for markdown-it, the
# Pygments lexers and Qt's rich-text start-up (~30 + 25 + 30 ms measured) on the loop mid-stream.
_WARM_MARKDOWN = ("**a** `b`\n\n- c\n\n| d | e |\n|---|---|\n| 1 | 2 |\n\n"
                  + "".join(f"```{lang}\nx = 1\n```\n\n" for lang in ("python", "json", "bash", "js")))


async def warm_up_rendering() -> None:
    """Parse a sample in a worker thread (imports, lexers), then lay it out once in Qt."""
    import asyncio

    from victor_gui.services.markdown_render import markdown_to_html

    html = await asyncio.to_thread(markdown_to_html, _WARM_MARKDOWN)
    doc = QTextDocument()
    doc.setHtml(html)
    doc.size()  # lays it out: fonts, the monospace fallback, tables


def markdown_worthy(text: str) -> bool:
    """Whether ``text`` should be shown as Markdown (see :data:`MARKDOWN_MAX_LINE`)."""
    return bool(text.strip()) and max(map(len, text.split("\n"))) <= MARKDOWN_MAX_LINE


@dataclass(slots=True)
class _Piece:
    """A finished piece of a message body and the Markdown source it shows."""

    view: AutoHeightText
    source: str
    first_code: int  # index of its first code block in the whole message
    rendered: bool  # False: cut off plain during a burst, rendered when the reply ends


class MessageView(QFrame):
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

        self.tools_label = WrapLabel()
        self.tools_label.setObjectName("toolCalls")
        self.tools_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tools_label.hide()
        layout.addWidget(self.tools_label)

        # The body: finished pieces, then ``self.body``, the last piece, where text is appended.
        self._body_box = QVBoxLayout()
        self._body_box.setContentsMargins(0, 0, 0, 0)
        self._body_box.setSpacing(4)  # what a block margin would give inside one document
        layout.addLayout(self._body_box)
        self._pieces: list[_Piece] = []  # finished pieces, before self.body
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
        self.more_button = QPushButton()
        self.more_button.setObjectName("showMore")
        self.more_button.setAccessibleName("Show more of this message")
        self.more_button.clicked.connect(self.show_more)
        self.more_button.hide()
        layout.addWidget(self.more_button, 0, Qt.AlignmentFlag.AlignLeft)

        self.stats_label = WrapLabel()
        self.stats_label.setObjectName("messageStats")
        self.stats_label.hide()
        layout.addWidget(self.stats_label)

        error_row = QHBoxLayout()
        self.error_label = WrapLabel()
        self.error_label.setObjectName("messageError")
        self.retry_button = QPushButton("Retry")
        self.retry_button.setAccessibleName("Retry this reply")
        set_icon(self.retry_button, "regenerate")
        self.retry_button.clicked.connect(self.retry_requested)
        error_row.addWidget(self.error_label, 1)
        error_row.addWidget(self.retry_button)
        self.error_label.hide()
        self.retry_button.hide()
        layout.addLayout(error_row)
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

    def _update_more(self) -> None:
        left = len(self._rest)
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
            at = layout.indexOf(self.tools_label)
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

    def set_tool_calls(self, lines: list[str]) -> None:
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

    def set_stats(self, text: str) -> None:
        self.stats_label.setText(text)
        self.stats_label.setVisible(bool(text))

    def set_error(self, text: str | None, *, retry: bool = True) -> None:
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

    def restyle(self) -> None:
        """Styling hook (ui/theme.py calls it on a theme change): rendered Markdown carries its
        code, table and link colours inline, so it is rendered again with the new ones."""
        from victor_gui.services.markdown_render import markdown_to_html

        for piece in self._pieces:
            if piece.rendered:
                self._show_part(piece.view, piece.source,
                                markdown_to_html(piece.source, first_code_block=piece.first_code))
        tail = self.shown_text[self._frozen_chars:]
        self._done = []  # rendered in the old colours: the next live render parses them again
        if len(tail) <= LIVE_PARSE_CHARS and markdown_worthy(tail):  # what the last render showed
            self._show_part(self.body, tail, markdown_to_html(tail, first_code_block=self._frozen_code))
            self._body_plain = False

    @property
    def pieces(self) -> list[AutoHeightText]:
        """The body's text views, in order (the last is :attr:`body`)."""
        return [p.view for p in self._pieces] + [self.body]

    def _new_piece(self) -> AutoHeightText:
        piece = AutoHeightText(self)
        piece.copy_requested = self.copy_code_block
        if hasattr(self, "_parts"):  # the first piece is hooked once the view is built
            self._install_menu(piece)
        name = "Assistant reply" if self.role == "assistant" else "Your message"
        piece.setAccessibleName(name if not self._pieces else f"{name} (continued)")
        return piece

    def render_markdown(self) -> None:
        """Render what streamed so far as Markdown, on the spot (called every few frames).

        Only the text after the finished blocks is parsed (see :func:`_plan_live`), and
        finished blocks past :data:`LIVE_PIECE_CHARS` become finished pieces, so a call costs
        about what arrived since the last one, however long the reply grows. After a burst (a
        fast local server) only the first :data:`LIVE_TAIL_CHARS` of the new text are parsed;
        the rest stays plain for a later render, or the final one (:meth:`render_markdown_async`).
        The one thing a finished block cannot see is a link reference definition that arrives
        after it: ``[text][ref]`` there stays as written.
        """
        plan = self._plan()
        if plan is None:
            return
        for part in plan.freeze:
            self._freeze_part(part, "")
        self._done = plan.done
        self._show_body(plan, "")

    def _plan(self) -> _LivePlan | None:
        fresh = self.shown_text[self._frozen_chars + sum(len(d.source) for d in self._done):]
        return _plan_live(self._done, fresh, self._frozen_code + sum(d.code_blocks for d in self._done))

    def _show_body(self, plan: _LivePlan, after: str) -> None:
        """Show the body of a live render: its finished blocks and its last block (or, after a
        burst, the rest plain), then ``after`` (arrived since the parse), plain."""
        shown = _joined([*plan.done, plan.open])  # no html when the open part is plain
        self._show_part(self.body, shown.source, shown.html if plan.open.html else "")
        self._body_plain = not plan.open.html
        if after:
            self.body.append_plain(after)

    def render_markdown_live(self) -> None:
        """:meth:`render_markdown` for a streaming reply, spread over event-loop turns: the parse
        in one, then each new piece's Qt document in its own, then the body's (one document
        costs 5-15 ms; a render that cut three parts cost 30-50 ms in one go, the stream's
        longest loop gaps). Text appended meanwhile stays on screen, plain, after the rendered
        parts. One render at a time: a call while one runs is skipped (the next frame asks
        again). Without a running loop (a test driving the view directly) it renders on the
        spot."""
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.render_markdown()
            return
        if self._live_task is not None and not self._live_task.done():
            return
        self._live_task = loop.create_task(self._render_live())

    async def _render_live(self) -> None:
        import asyncio

        import shiboken6

        started = time.perf_counter()
        text, frozen, epoch = self.shown_text, self._frozen_chars, self._render_epoch
        plan = self._plan()
        self.live_behind = plan is not None and not plan.open.html  # a plain rest is left
        spent = time.perf_counter() - started
        if plan is None:
            self.live_render_ms = spent * 1000
            return

        def current() -> bool:  # the same body: no final render, edit or re-cut since, only appends
            return (shiboken6.isValid(self) and self._render_epoch == epoch
                    and self._frozen_chars == frozen and self.shown_text.startswith(text, 0))

        # New pieces are built hidden, at the body's width, one per loop turn, then shown with
        # the body's new content in one layout pass and one paint: built in place, each cost a
        # layout and a paint of its own, and the body showed the rest plain in between (up to
        # LIVE_TAIL_CHARS laid out as plain text, only to be replaced a turn later).
        built: list[AutoHeightText] = []
        for part in plan.freeze:
            await asyncio.sleep(YIELD_S)  # one Qt document per loop turn: the window keeps its frames
            if not current():
                self._discard(built)
                return
            step = time.perf_counter()
            built.append(self._built_piece(part))
            spent += time.perf_counter() - step
        await asyncio.sleep(YIELD_S)
        if not current():
            self._discard(built)
            return
        step = time.perf_counter()
        self.setUpdatesEnabled(False)
        try:
            at = self._body_box.indexOf(self.body)
            for i, (part, view) in enumerate(zip(plan.freeze, built, strict=True)):
                self._body_box.insertWidget(at + i, view)
                view.show()
                self._pieces.append(_Piece(view, part.source, self._frozen_code, True))
                self._frozen_chars += len(part.source)
                self._frozen_code += part.code_blocks
            self._done = plan.done
            cut = "".join(part.source for part in plan.freeze)
            # After a burst the body already shows the rest plain: only the text of the new
            # pieces is taken out of it. Laid out again, the rest (which grows while the
            # renders are behind: 10,000 characters and more) cost 80-110 ms a render.
            if not (self._body_plain and not plan.open.html and cut and self.body.drop_plain_prefix(cut)):
                self._show_body(plan, self.shown_text[len(text):])
        finally:
            self.setUpdatesEnabled(True)
        self.live_render_ms = (spent + time.perf_counter() - step) * 1000

    def _built_piece(self, part: RenderedPart) -> AutoHeightText:
        """A piece showing ``part``, hidden, laid out at the body's width (placed by the caller)."""
        view = self._new_piece()
        view.hide()
        view.resize(self.body.width(), view.height())
        self._show_part(view, part.source, part.html)
        return view

    @staticmethod
    def _discard(views: list[AutoHeightText]) -> None:
        import shiboken6

        for view in views:
            if shiboken6.isValid(view):
                view.deleteLater()

    def _freeze_part(self, part: RenderedPart, rest: str) -> None:
        """Show ``part`` in the body and make it a finished piece; a new body follows, showing
        ``rest`` (the text after it) plain until it is rendered."""
        self._show_part(self.body, part.source, part.html)
        self._pieces.append(_Piece(self.body, part.source, self._frozen_code, bool(part.html)))
        self._frozen_chars += len(part.source)
        self._frozen_code += part.code_blocks
        self.body = self._new_piece()
        self._body_box.addWidget(self.body)
        self._body_plain = True
        if rest:
            self.body.append_plain(rest)

    async def render_markdown_async(self) -> None:
        """Render what is still plain as Markdown (a finished reply, a stored message).

        Parsed in a worker thread. Pieces left plain while streaming are rendered in place, one
        per event-loop turn; a long tail is cut into new pieces built off screen at the body's
        width, one per turn, and swapped in together. The window keeps painting throughout and
        the plain text stays readable until its rendering replaces it.
        """
        import asyncio

        import shiboken6

        from victor_gui.services.markdown_render import markdown_to_html, render_parts

        self._render_epoch += 1  # a live render still under way stops: this one replaces it
        self._done = []  # the tail is parsed whole below
        text, frozen = self.shown_text, self._frozen_chars
        tail = text[frozen:]
        plain = [p for p in self._pieces if not p.rendered]
        render_tail = markdown_worthy(tail)  # else nothing to render, or a line too long: plain
        if not plain and not render_tail:
            return

        def work() -> tuple[list[str], list[RenderedPart]]:
            htmls = [markdown_to_html(p.source, first_code_block=p.first_code) for p in plain]
            parts = (render_parts(tail, PIECE_CHARS, first_code_block=self._frozen_code)
                     if render_tail else [])
            return htmls, parts

        htmls, parts = await asyncio.to_thread(work)

        def current() -> bool:  # still shown; nothing appended, edited or re-cut since
            return shiboken6.isValid(self) and self.shown_text == text and self._frozen_chars == frozen

        for piece, html in zip(plain, htmls, strict=True):
            if not current():
                return
            self._show_part(piece.view, piece.source, html)
            piece.rendered = True
            await asyncio.sleep(YIELD_S)  # one piece per loop turn: the window keeps painting
        if not parts or not current():
            return
        if len(parts) == 1:
            self._show_part(self.body, parts[0].source, parts[0].html)
            self._body_plain = False
            return
        built: list[AutoHeightText] = []
        for part in parts:
            built.append(self._built_piece(part))  # laid out at the width it will be shown at
            await asyncio.sleep(YIELD_S)
            if not current():
                self._discard(built)
                return
        self._body_box.removeWidget(self.body)
        self.body.deleteLater()
        for part, view in zip(parts[:-1], built[:-1], strict=True):
            self._pieces.append(_Piece(view, part.source, self._frozen_code, True))
            self._frozen_chars += len(part.source)
            self._frozen_code += part.code_blocks
        self.body = built[-1]
        self._body_plain = False
        # One layout pass and one paint for all the new pieces, not one per piece (a 64 K-char
        # stored head is ~21 pieces).
        self.setUpdatesEnabled(False)
        try:
            for view in built:
                self._body_box.addWidget(view)
                view.show()
        finally:
            self.setUpdatesEnabled(True)

    @staticmethod
    def _show_part(piece: AutoHeightText, source: str, html: str) -> None:
        """Show ``source`` in ``piece``: as ``html``, or as plain text when ``html`` is empty
        (a part cut off during a burst, see :meth:`render_markdown`)."""
        if not html:
            piece.clear()
            piece._block_len = 0
            piece.append_plain(source)
            return
        piece.set_html_document(html)
        if source[-1:].isspace():
            # Markdown drops the trailing space or newline; streamed text appended after a live
            # render would otherwise be glued to the last word.
            piece.append_plain(" ")
