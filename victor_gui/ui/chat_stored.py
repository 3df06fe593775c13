# mypy: disable-error-code="attr-defined,no-any-return"
"""The part of the chat pane that shows stored chats: open one (its last page, or the page
around a search hit), page back through older messages, and keep a chat's parameters.

A mixin of :class:`~victor_gui.ui.chat_pane.ChatPane` (same object, same state); kept apart so
each file stays readable. Only the last :data:`~victor_gui.ui.stored_render.PAGE` messages are
made into widgets when a chat opens, so a 5,000-message chat opens as fast as a short one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer

if TYPE_CHECKING:
    import asyncio

    from PySide6.QtWidgets import QWidget

    from victor_gui.services.chat_session import ChatSession
    from victor_gui.services.provider_choices import ProviderChoice
    from victor_gui.storage.models import StoredMessage
    from victor_gui.ui.message_view import MessageView


class StoredChatMixin:
    """Opening and paging stored chats; see the module doc. Mixed into ChatPane, whose widgets
    and methods it uses (mypy is told not to look for them here: see the file's first line)."""

    # The pane's state this part reads and writes (assigned in ChatPane.__init__).
    session: ChatSession | None
    conversation_id: int | None
    _bound: tuple[str, str] | None
    _first_position: int | None
    _around_hit: bool
    _editing: MessageView | None
    _view: MessageView | None

    def _choice_named(self, name: str) -> ProviderChoice | None:
        return next((c for c in self._choices if c.name == name), None)

    def _params(self, conv_params: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if conv_params.get("temperature") is not None:
            out["temperature"] = float(conv_params["temperature"])
        if conv_params.get("max_tokens"):
            out["max_tokens"] = int(conv_params["max_tokens"])
        ctx = conv_params.get("context_length")
        out["context_window"] = int(ctx) if ctx else None
        return out

    def new_chat(self) -> None:
        """Stop any reply and start an empty conversation (stored with its first message)."""
        self.stop()
        self._leave()
        self.input.setFocus()

    def _leave(self) -> None:
        # The pool owns the providers: the old session is dropped, not closed.
        self.session = None
        self.conversation_id = None
        self._bound = None
        self._editing = None
        self._around_hit = False
        self._first_position = None
        self.send_button.setText("Send")
        self.transcript.clear()
        self._view = None

    async def open_conversation(self, conversation_id: int, message_id: int | None = None) -> None:
        """Show a stored chat: its latest page, or the page around ``message_id`` (a search hit),
        scrolled to that message. Older messages load a page at a time on request."""
        from victor_gui.ui.stored_render import PAGE

        if self.store is None:
            return
        if self.session is not None and self.session.busy:
            await self.session.stop()
        self._leave()
        self.conversation_id = conversation_id
        before = None
        if message_id is not None:
            hit = await self.store.get_message(message_id)
            if hit is not None and hit.conversation_id == conversation_id:
                before = hit.position + PAGE // 2
        stored = await self.store.get_messages(conversation_id, limit=PAGE, before_position=before)
        if before is not None:
            later = await self.store.get_messages(conversation_id, limit=1)
            self._around_hit = bool(later) and bool(stored) and later[-1].position > stored[-1].position
        self._bound = _last_used(stored)
        if self._bound is not None:
            self._select_quietly(*self._bound)
        target = self._show_page(stored, at_top=False, target_id=message_id)
        if target is not None:
            self.transcript.scroll_to(target)

    def _select_quietly(self, provider: str, model: str) -> None:
        """Show the chat's provider/model in the drop-downs without counting it as a switch."""
        if self.provider_combo.findData(provider) < 0:
            return
        self.provider_combo.blockSignals(True)
        self.select_provider(provider)
        self.provider_combo.blockSignals(False)
        self.model_combo.blockSignals(True)
        self.model_combo.setEditText(model)
        self.model_combo.blockSignals(False)
        self.refresh_models()
        self._switch_pending = False

    def _show_page(self, stored: list[StoredMessage], *, at_top: bool,
                   target_id: int | None = None) -> MessageView | None:
        from victor_gui.ui.stored_render import PAGE, stats_line, title_of

        items: list[QWidget] = []
        target = None
        for m in stored:
            if m.is_note:
                items.append(self.transcript.make_note(m.content))
                continue
            view = self.transcript.make_message(m.role, title_of(m), m.content)
            view.message_id = m.id
            if m.reasoning:
                view.append_reasoning(m.reasoning)
            if m.role == "user":
                self._hook_user_view(view)
                view.set_actions(edit=True)
            elif m.role == "assistant":
                view.set_stats(stats_line(m))
                view.retry_requested.connect(self.regenerate)
                view.regenerate_requested.connect(self.regenerate)
                if m.status == "error":
                    view.set_error(m.error or "This reply failed.")
                if m.tool_calls:
                    view.set_tool_calls([f"{c.get('name')}({c.get('arguments')})" for c in m.tool_calls])
                self.tasks.spawn(view.render_markdown_async())
            items.append(view)
            if m.id == target_id:
                target = view
        self.transcript.insert_items(items, at_top=at_top)
        if not at_top:
            last = [v for v in self.transcript.messages if v.role == "assistant"]
            if last and not self._around_hit:
                last[-1].set_actions(regenerate=True)
        if stored:
            self._first_position = stored[0].position
        self.transcript.earlier_button.setVisible(len(stored) >= PAGE)
        return target

    def load_earlier(self) -> asyncio.Task[None]:
        """Show the page of messages before the first one shown."""
        return self.tasks.spawn(self._load_earlier())

    async def _load_earlier(self) -> None:
        from victor_gui.ui.stored_render import PAGE

        if self.store is None or self.conversation_id is None or self._first_position is None:
            return
        stored = await self.store.get_messages(self.conversation_id, limit=PAGE,
                                               before_position=self._first_position)
        bar = self.transcript.verticalScrollBar()
        from_bottom = bar.maximum() - bar.value()
        self._show_page(stored, at_top=True)
        # Keep the reader's place: the new page goes above what they were looking at.
        QTimer.singleShot(0, self.transcript, lambda: bar.setValue(bar.maximum() - from_bottom))

    async def apply_params(self, system_prompt: str | None, params: dict[str, Any]) -> None:
        """Store the chat's system prompt and parameters (temperature, max_tokens,
        context_length) and use them from the next reply on."""
        if self.store is None:
            return
        if self.conversation_id is None:
            conv = await self.store.create_conversation("New chat")
            self.conversation_id = conv.id
        await self.store.update_conversation(self.conversation_id, system_prompt=system_prompt or "",
                                             params=params)
        if self.session is not None:
            values = self._params(params)
            self.session.temperature = values.get("temperature", 0.7)
            self.session.max_tokens = values.get("max_tokens", 4096)
            self.session.context_window = values["context_window"]
        self.conversation_changed.emit(self.conversation_id)


def _last_used(stored: list[StoredMessage]) -> tuple[str, str] | None:
    """The provider and model the chat was last using (its last reply or switch note)."""
    for m in reversed(stored):
        if m.is_note and isinstance(m.meta, dict) and m.meta.get("kind") == "switch":
            to = m.meta.get("to") or {}
            if to.get("provider") and to.get("model"):
                return str(to["provider"]), str(to["model"])
        if m.role == "assistant" and m.provider and m.model:
            return m.provider, m.model
    return None
