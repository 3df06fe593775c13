"""Render one streaming :class:`~victor_gui.services.generation.Generation` into a message view
at frame rate. Shared by the chat pane and the compare panes.

The generation's listener only appends deltas to a buffer; a ~16 ms frame timer moves the buffer
into the view (one cursor insert per frame, not per token), re-renders short replies as Markdown
a few times a second and refreshes the live stats. When the reply ends it is rendered once as
Markdown (parsed in a worker thread) and :attr:`ReplyStreamer.finished` fires with the final
:class:`~victor_gui.services.generation.ReplyState`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from victor_gui.core.tasks import TaskSet

if TYPE_CHECKING:
    from victor_gui.services.generation import Generation, ReplyDelta, ReplyState
    from victor_gui.ui.message_view import MessageView

FRAME_MS = 16
# Live stats (tokens/s while streaming) are refreshed every this many frames (~4 per second).
STATS_EVERY_FRAMES = 15
# A streaming reply is re-rendered as Markdown every few frames (~10 per second), so bold, lists
# and code look right as they arrive; text in between is appended plain. Only the reply's last
# piece is re-rendered (MessageView.render_markdown), so the cost stays flat as it grows.
LIVE_MARKDOWN_EVERY_FRAMES = 6
# ... or less often when a render is slow (a slow machine, a burst): live Markdown takes at most
# about this share of the frames, so the text itself keeps arriving smoothly.
LIVE_MARKDOWN_SHARE = 1 / 8
# ... but while the renders are behind (a burst: each render finishes at most
# message_body.LIVE_TAIL_CHARS and left the rest plain), every few frames and up to this share:
# at the calmer pace a 10,000 tok/s stream outran them, and the plain rest grew until appending
# to it cost 10-16 ms a frame.
LIVE_MARKDOWN_BEHIND_FRAMES = 2
LIVE_MARKDOWN_BEHIND_SHARE = 1 / 4
# After this long with nothing new, the reply's stats line says it is waiting, and for how long:
# a stalled stream (the server stopped sending) must not look like a live one.
STALL_AFTER_S = 4.0


def waiting_text(seconds: int, anything_yet: bool) -> str:
    """What the stats line says while nothing arrives."""
    what = "waiting for the server…" if anything_yet else "waiting for the first token…"
    return f"{what} ({seconds} s)"


def format_stats(state: ReplyState) -> str:
    """``model · TTFT 120 ms · 42.0 tok/s · 256 tokens`` for a compare pane (its header names the
    provider): :func:`~victor_gui.ui.stored_render.live_stats` with the model alone."""
    from victor_gui.ui.stored_render import live_stats

    return live_stats(state, who=state.model)


def tool_call_lines(state: ReplyState) -> list[str]:
    """``name(arguments)`` per tool call: the finished calls, else those still streaming."""
    if state.tool_calls:
        return [f"{c.name}({c.arguments})" for c in state.tool_calls]
    return [f"{p.name}({p.arguments})" for p in state.partial_tool_calls.values()]


class FrameBuffer:
    """What arrived since the last frame, for one streaming reply.

    Chunks come many per frame, so they are only buffered here; :meth:`flush`, run by a frame
    timer, moves them into the view in one append, re-renders the Markdown every
    :data:`LIVE_MARKDOWN_EVERY_FRAMES` frames (fewer if renders are slow, see
    :data:`LIVE_MARKDOWN_SHARE`) and the stats every :data:`STATS_EVERY_FRAMES`.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new reply starts)."""
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tools_dirty = False
        self._content_dirty = False
        self._frames = 0
        self._next_render = LIVE_MARKDOWN_EVERY_FRAMES
        self.last_arrival = time.monotonic()
        self._anything = False
        self._waiting_shown = -1  # the seconds the "waiting" text shows, -1 when it is not shown

    def add(self, content: str | None, reasoning: str | None, tools_changed: bool) -> None:
        if content:
            self.content.append(content)
        if reasoning:
            self.reasoning.append(reasoning)
        if tools_changed:
            self.tools_dirty = True
        self.last_arrival = time.monotonic()
        self._anything = self._anything or bool(content or reasoning or tools_changed)

    def flush(self, view: MessageView, state: ReplyState | None,
              stats: Callable[[ReplyState], str]) -> None:
        """Move the buffered text into ``view``; ``state`` (when known) gives tool calls and stats."""
        if self.reasoning:
            view.append_reasoning("".join(self.reasoning))
            self.reasoning.clear()
        if self.content:
            view.append_content("".join(self.content))
            self.content.clear()
            self._content_dirty = True
        if self.tools_dirty and state is not None:
            self.tools_dirty = False
            view.set_tool_calls(tool_call_lines(state))
        self._frames += 1
        if self._content_dirty and self._frames >= self._next_render:
            self._content_dirty = False
            # Spread over the next loop turns; the view reports the on-loop cost of the last one.
            view.render_markdown_live()
            spent_ms = view.live_render_ms
            every, share = ((LIVE_MARKDOWN_BEHIND_FRAMES, LIVE_MARKDOWN_BEHIND_SHARE) if view.live_behind
                            else (LIVE_MARKDOWN_EVERY_FRAMES, LIVE_MARKDOWN_SHARE))
            wait = max(every, math.ceil(spent_ms / share / FRAME_MS))
            self._next_render = self._frames + wait
        if state is None:
            return
        waited = time.monotonic() - self.last_arrival
        if waited >= STALL_AFTER_S and not state.status.finished:
            if int(waited) != self._waiting_shown:
                self._waiting_shown = int(waited)
                live = stats(state)
                suffix = waiting_text(self._waiting_shown, self._anything)
                view.set_stats(f"{live} · {suffix}" if live else suffix)
        elif self._waiting_shown >= 0 or self._frames % STATS_EVERY_FRAMES == 0:
            self._waiting_shown = -1  # text came again: the plain stats replace "waiting"
            view.set_stats(stats(state))


class ReplyStreamer(QObject):
    """Streams ``generation`` into ``view``; call :meth:`start` once the generation started."""

    finished = Signal(object)  # the final ReplyState

    def __init__(self, view: MessageView, generation: Generation, parent: QObject | None = None, *,
                 stats: Callable[[ReplyState], str] = format_stats,
                 spawn: Callable[[Coroutine[Any, Any, Any]], object] | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.generation = generation
        self._stats = stats
        self._buffer = FrameBuffer()
        self._done = False
        # Who runs the final Markdown render (the owner's task set, so its aclose waits for it).
        self._own_tasks = TaskSet("reply stream")
        self._spawn = spawn or self._own_tasks.spawn
        self._frame = QTimer(self)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self.flush)
        self._remove = generation.add_listener(self._on_delta)

    def start(self) -> None:
        """Begin rendering frames (the generation may already be streaming)."""
        self._frame.start()
        if self.generation.state.status.finished:  # ended before we listened (stopped early)
            self._finish(self.generation.state)

    def _on_delta(self, state: ReplyState, delta: ReplyDelta) -> None:
        # Runs once per chunk: only buffer here; the frame timer renders.
        self._buffer.add(delta.content, delta.reasoning, delta.tool_calls_changed)
        if delta.status_changed and state.status.finished:
            self._finish(state)

    def flush(self) -> None:
        """Move what arrived since the last frame into the view."""
        self._buffer.flush(self.view, self.generation.state, self._stats)

    def _finish(self, state: ReplyState) -> None:
        from victor_gui.ui.error_text import describe_error

        if self._done:
            return
        self._done = True
        self._remove()
        self.flush()
        self._frame.stop()
        view = self.view
        self._spawn(view.render_markdown_async())
        view.set_stats(self._stats(state))
        if state.error is not None:
            view.set_error(describe_error(state.error))
        self.finished.emit(state)
