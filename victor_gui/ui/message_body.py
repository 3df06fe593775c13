# mypy: disable-error-code="attr-defined"
"""A message's body as a column of rendered pieces: how it is cut, rendered and re-rendered.

The body is a column of :class:`AutoHeightText` pieces, each with its own document. Streaming
appends to the last piece with a QTextCursor, so a long reply is never re-laid-out from the top
per token. Markdown is rendered per piece of a few thousand characters (see
:func:`~victor_gui.services.markdown_render.render_parts`): Qt parses and lays out a document
whole on the UI thread, so one 50 kB document with code would stall the window ~100 ms, while
pieces are built one per event-loop turn and a streaming reply only re-renders its last piece.

:class:`BodyPieces` is a mixin of :class:`~victor_gui.ui.message_view.MessageView` (same
object, whose ``__init__`` makes the body's state and whose content methods append to it);
kept apart from the message's header, reasoning, actions and menu so each file reads whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from PySide6.QtGui import QTextDocument

from victor_gui.ui.widgets.auto_height_text import AutoHeightText

if TYPE_CHECKING:
    import asyncio

    from PySide6.QtWidgets import QWidget

    from victor_gui.services.markdown_render import RenderedPart


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
class BodyPiece:
    """A finished piece of a message body and the Markdown source it shows."""

    view: AutoHeightText
    source: str
    first_code: int  # index of its first code block in the whole message
    rendered: bool  # False: cut off plain during a burst, rendered when the reply ends



class BodyPieces:
    """The body's pieces and their rendering; see the module doc."""

    # The body's state, made by MessageView.__init__ (annotations only).
    body: AutoHeightText  # the last piece, where streamed text is appended
    _pieces: list[BodyPiece]
    _done: list[RenderedPart]
    _live_task: asyncio.Task[None] | None

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
        piece = AutoHeightText(cast("QWidget", self))  # the MessageView it is mixed into
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
                self._pieces.append(BodyPiece(view, part.source, self._frozen_code, True))
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
        self._pieces.append(BodyPiece(self.body, part.source, self._frozen_code, bool(part.html)))
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
            self._pieces.append(BodyPiece(view, part.source, self._frozen_code, True))
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

