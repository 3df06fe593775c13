"""Render one streaming :class:`~victor_gui.services.generation.Generation` into a message view
at frame rate. Shared by the chat pane and the compare panes.

The generation's listener only appends deltas to a buffer; a ~16 ms frame timer moves the buffer
into the view (one cursor insert per frame, not per token), re-renders short replies as Markdown
a few times a second and refreshes the live stats. When the reply ends it is rendered once as
Markdown (parsed in a worker thread) and :attr:`ReplyStreamer.finished` fires with the final
:class:`~victor_gui.services.generation.ReplyState`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

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


def format_stats(state: ReplyState) -> str:
    """``model · TTFT 120 ms · 42.0 tok/s · 256 tokens`` (parts left out when unknown)."""
    from victor_gui.services.generation import ReplyStatus

    bits = [state.model]
    if state.ttft_ms is not None:
        bits.append(f"TTFT {state.ttft_ms:.0f} ms")
    if (tps := state.tokens_per_second) is not None:
        bits.append(f"{tps:.1f} tok/s")
    bits.append(f"{state.completion_tokens} tokens")
    if state.status is ReplyStatus.INTERRUPTED:
        bits.append("stopped")
    return " · ".join(bits)


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
        self._pending_content: list[str] = []
        self._pending_reasoning: list[str] = []
        self._tools_dirty = False
        self._content_dirty = False
        self._frames = 0
        self._done = False
        # Who runs the final Markdown render (the owner's task set, so its aclose waits for it).
        self._spawn = spawn or (lambda coro: asyncio.get_event_loop().create_task(coro))
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
        if delta.content:
            self._pending_content.append(delta.content)
        if delta.reasoning:
            self._pending_reasoning.append(delta.reasoning)
        if delta.tool_calls_changed:
            self._tools_dirty = True
        if delta.status_changed and state.status.finished:
            self._finish(state)

    def flush(self) -> None:
        """Move what arrived since the last frame into the view."""
        view = self.view
        if self._pending_reasoning:
            view.append_reasoning("".join(self._pending_reasoning))
            self._pending_reasoning.clear()
        if self._pending_content:
            view.append_content("".join(self._pending_content))
            self._pending_content.clear()
            self._content_dirty = True
        if self._tools_dirty:
            self._tools_dirty = False
            state = self.generation.state
            if state.tool_calls:
                lines = [f"{c.name}({c.arguments})" for c in state.tool_calls]
            else:
                lines = [f"{p.name}({p.arguments})" for p in state.partial_tool_calls.values()]
            view.set_tool_calls(lines)
        self._frames += 1
        if self._content_dirty and self._frames % LIVE_MARKDOWN_EVERY_FRAMES == 0:
            self._content_dirty = False
            view.render_markdown()
        if self._frames % STATS_EVERY_FRAMES == 0:
            view.set_stats(self._stats(self.generation.state))

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
