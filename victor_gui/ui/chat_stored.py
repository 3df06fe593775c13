# mypy: disable-error-code="attr-defined,no-any-return"
"""The part of the chat pane that shows stored chats: open one (its last page, or the page
around a search hit), page back through older messages, and keep a chat's parameters.

A mixin of :class:`~victor_gui.ui.chat_pane.ChatPane` (same object); kept apart so each file
stays readable. The state (which chat, which page, where a search hit is) is the pane's
:class:`~victor_gui.services.chat_controller.ChatController`'s; this part only renders the pages
it hands back. Only the last :data:`~victor_gui.services.chat_controller.PAGE` messages are made
into widgets when a chat opens, so a 5,000-message chat opens as fast as a short one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer

if TYPE_CHECKING:
    import asyncio

    from PySide6.QtWidgets import QWidget

    from victor_gui.services.chat_controller import Page
    from victor_gui.ui.message_view import MessageView


class StoredChatMixin:
    """Opening and paging stored chats; see the module doc. Mixed into ChatPane, whose widgets
    and methods it uses (mypy is told not to look for them here: see the file's first line)."""

    _editing: MessageView | None
    _view: MessageView | None

    def new_chat(self) -> None:
        """Stop any reply and start an empty conversation (stored with its first message)."""
        self.stop()
        selection = dict(self.tools_button.selection)
        self._leave()
        if selection:  # a new chat keeps the tools the person had on
            self._tools_chosen(selection)
        self.input.setFocus()

    def _leave(self) -> None:
        self.commit_pending_delete()  # a message waiting for its Undo time goes now
        self.controller.leave()
        self.end_edit_view()  # issue 14: the "Editing: …" line goes with the chat it was about
        if self._draft is not None:  # the attachments waiting belonged to the chat left
            self._draft.clear()
        self.hide_no_images()
        self.transcript.clear()
        self._view = None

    async def open_conversation(self, conversation_id: int, message_id: int | None = None) -> None:
        """Show a stored chat: its latest page, or the page around ``message_id`` (a search hit),
        scrolled to that message. Older messages load a page at a time on request."""
        if self.store is None:
            return
        if self.controller.busy:
            await self.controller.stop()
        self._leave()
        page = await self.controller.open(conversation_id, message_id)
        if self.controller.profile() is not None:
            self._show_profile_choice()
        elif self.controller.bound is not None:
            self._select_quietly(*self.controller.bound)
        target = self._show_page(page, at_top=False)
        if target is not None:
            self.transcript.scroll_to(target)
            self.transcript.highlight(target if message_id is not None else None)
        self.refresh_versions()  # issue 14: "‹ 2/3 ›" switchers and Branch
        self.tasks.spawn(self.show_tool_choice())  # the menu follows; opening does not wait on it
        self.conversation_opened.emit(conversation_id)

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

    def _show_page(self, page: Page, *, at_top: bool) -> MessageView | None:
        from victor_gui.ui.stored_render import reasoning_head, stats_line, title_of

        items: list[QWidget] = []
        target = None
        in_blocks = {m.tool_call_id for m in page.messages
                     if m.role == "tool" and isinstance((m.meta or {}).get("tool"), dict)}
        for m in page.messages:
            if m.is_note:
                items.append(self.transcript.make_note(m.content))
                continue
            if m.role == "tool" and isinstance((m.meta or {}).get("tool"), dict):
                from victor_gui.ui.tool_views import stored_tool_block

                items.append(stored_tool_block(m.meta, m.content))  # issue 12: a folded call
                continue
            view = self.transcript.make_message(m.role, title_of(m))
            view.set_stored_content(m.content)  # a long one: its head, the rest on request
            view.more_shown.connect(lambda v=view: self.tasks.spawn(v.render_markdown_async()))
            view.message_id = m.id
            if m.reasoning:
                view.append_reasoning(reasoning_head(m.reasoning))
            if m.role == "user":
                self._hook_user_view(view)
                view.set_actions(edit=True)
                self._show_stored_attachments(view, m.attachments)  # issue 13
            elif m.role == "assistant":
                view.set_stats(stats_line(m))
                self._show_sources(view, m.meta)  # issue 13
                view.retry_requested.connect(self.regenerate)
                view.regenerate_requested.connect(self.regenerate)
                if m.status == "error":
                    view.set_error(m.error or "This reply failed.")
                # Calls shown as their own blocks below (issue 12) are not listed twice.
                calls = [c for c in m.tool_calls or () if c.get("id") not in in_blocks]
                if calls:
                    view.set_tool_calls([f"{c.get('name')}({c.get('arguments')})" for c in calls])
                self.tasks.spawn(view.render_markdown_async())
            items.append(view)
            if m.id == page.target_id:
                target = view
        self.transcript.insert_items(items, at_top=at_top)
        if not at_top:
            last = [v for v in self.transcript.messages if v.role == "assistant"]
            if last and not page.around_hit:
                last[-1].set_actions(regenerate=True)
        self.transcript.earlier_button.setVisible(page.has_earlier)
        return target

    def load_earlier(self) -> asyncio.Task[None]:
        """Show the page of messages before the first one shown."""
        return self.tasks.spawn(self._load_earlier())

    async def _load_earlier(self) -> None:
        page = await self.controller.earlier()
        if page is None:
            return
        bar = self.transcript.verticalScrollBar()
        from_bottom = bar.maximum() - bar.value()
        self._show_page(page, at_top=True)
        self.refresh_versions()
        # Keep the reader's place: the new page goes above what they were looking at.
        QTimer.singleShot(0, self.transcript, lambda: bar.setValue(bar.maximum() - from_bottom))

    async def apply_params(self, system_prompt: str | None, params: dict[str, Any]) -> None:
        """Store the chat's system prompt and parameters (temperature, max_tokens,
        context_length) and use them from the next reply on."""
        if self.store is None:
            return
        await self.controller.apply_params(system_prompt, params)
