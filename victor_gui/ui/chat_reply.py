# mypy: disable-error-code="attr-defined,no-any-return"
"""The part of the chat pane that shows one reply on its way: the reply's view made at once,
chunks buffered and drawn once per frame, notes placed where a reopened chat shows them, the
end (stats from the stored row, actions, the final Markdown render), and Stop.

A mixin of :class:`~victor_gui.ui.chat_pane.ChatPane` (same object), like
:mod:`~victor_gui.ui.chat_stored`; kept apart so each file holds one responsibility. The reply's
state is the session's (through the pane's controller); this part only renders it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from victor_gui.services.chat_session import ReplyEvent, ReplyResult
    from victor_gui.ui.message_view import MessageView

log = logging.getLogger(__name__)


class ReplyViewMixin:
    """Rendering one streaming reply; see the module doc. Mixed into ChatPane, whose widgets
    and methods it uses (mypy is told not to look for them here: see the file's first line)."""

    _view: MessageView | None
    _active: bool

    def _begin_reply(self) -> MessageView:
        """The reply's view, shown at once (before the request goes out), and the busy state."""
        choice = self.current_choice()
        model = self.model_combo.currentText().strip()
        for v in self.transcript.messages:
            v.set_actions(edit=False, regenerate=False)
            v.set_branchable(False)
        title = f"{choice.display_name if choice else '?'} · {model}"
        view = self.transcript.add_message("assistant", title)
        view.retry_requested.connect(self.regenerate)
        view.regenerate_requested.connect(self.regenerate)
        self._view = view
        self._buffer.reset()
        self._active = True
        self._frame.start()
        self.send_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        return view

    def _end_reply(self) -> None:
        gen = self.generation
        if gen is not None and gen.state.tool_calls:
            self._buffer.tools_dirty = True  # the finished calls replace the streamed ones
        self._flush()
        self._frame.stop()
        self._view = None
        self._active = False
        self.send_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _abandon_reply(self, view: MessageView, user: MessageView | None) -> None:
        self._end_reply()
        self.transcript.remove_message(view)
        if user is not None:
            self.transcript.remove_message(user)

    async def _run_reply(self, start: Any, view: MessageView, user_view: MessageView | None = None) -> None:
        from victor_gui.ui.error_text import describe_error

        result: ReplyResult | None = None
        stopped = False
        try:
            result = await start()  # None: there was nothing to answer
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this task itself is cancelled (the pane closes)
            stopped = True  # Stop/Esc cancelled the reply: it is stored as interrupted
        except Exception as exc:  # a store or state error: shown on the reply, never lost
            log.exception("reply failed")
            view.set_error(describe_error(exc) if hasattr(exc, "kind") else str(exc))
        finally:
            if self._view is view:
                self._end_reply()
        if stopped:
            await self._after_stop(view, user_view)  # issue 14: Edit, Regenerate and stats stay
        if result is not None:
            await self._finish(view, result, user_view)
        if self.conversation_id is not None:
            self.conversation_changed.emit(self.conversation_id)

    async def _finish(self, view: MessageView, result: ReplyResult, user_view: MessageView | None) -> None:
        from victor_gui.ui.error_text import describe_error
        from victor_gui.ui.stored_render import stats_line

        view.message_id = result.message_id
        if result.error is not None:
            view.set_error(describe_error(result.error))
        if result.stored is not None:
            view.set_stats(stats_line(result.stored))
            self._show_sources(view, result.stored.meta)  # issue 13: retrieved passages
            if result.fell_back and result.status == "complete":
                from victor_gui.ui.stored_render import title_of

                # Replaces the "trying …" line the fall-back showed while it happened.
                self.status_label.setText(f"Answered by {title_of(result.stored)}; the note below it says "
                                          "what did not answer.")
        if user_view is not None:
            user_view.message_id = result.user_message_id  # the session had it: no store query
        for v in self.transcript.messages:
            if v.role == "user" and v.message_id is not None:
                v.set_actions(edit=True)
        view.set_actions(regenerate=result.status != "error")
        self.tasks.spawn(view.render_markdown_async())
        self.refresh_versions()  # issue 14: a regenerated or edited message shows "‹ n/m ›"
        self.reply_finished.emit(result.status)

    def _on_event(self, event: ReplyEvent) -> None:
        # Runs once per chunk: only buffer here; the frame timer renders.
        if event.kind == "delta":
            gen = self.generation
            calls = gen is not None and bool(gen.state.partial_tool_calls or gen.state.tool_calls)
            self._buffer.add(event.text, event.reasoning, calls)
        elif event.kind == "note":
            # A trim note is stored before the reply's row, a failover note after it (it is written
            # once a target answered): shown where a reopened chat shows them (a save_failed note,
            # services.reply_attempt.SAVE_FAILED, is not stored: it could not be).
            # A failed save is about the reply on screen: shown under it, and in the status line.
            kind = (event.meta or {}).get("kind")
            after_reply = kind in ("failover", "save_failed")
            before = self._view if self.running and not after_reply else None
            self.transcript.add_note(event.text, before=before)
            if kind == "save_failed":
                self.status_label.setText(event.text)
        elif event.kind == "fallback":
            self.status_label.setText(event.text)
        elif event.kind == "tool_call":  # issue 12: a call's block, placed or updated in place
            from victor_gui.ui.tool_views import show_tool_call

            show_tool_call(self.transcript, event.meta, event.text)

    def stop(self) -> None:
        """Stop the reply now; what arrived stays (stored as interrupted)."""
        from victor_gui.ui.stored_render import live_stats

        if self.session is None or not self._active:
            return
        self.controller.cancel()
        view, gen = self._view, self.generation
        self._end_reply()  # what arrived is on screen; nothing more is appended
        if view is not None and gen is not None:
            stats = live_stats(gen.state)
            view.set_stats(stats if stats.endswith("stopped") else stats + " · stopped")

    def _flush(self) -> None:
        from victor_gui.ui.stored_render import live_stats

        if self._view is not None:
            gen = self.generation
            self._buffer.flush(self._view, gen.state if gen is not None else None, live_stats)
