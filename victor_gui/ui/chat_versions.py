# mypy: disable-error-code="attr-defined,no-any-return"
"""The part of the chat pane for versions, branches and editing (issue 14).

* Every stored message on screen that has other versions shows a "‹ 2/3 ›" switcher; choosing
  another version stores the choice and redraws the chat from the store, so the messages after
  it follow that branch (and the next request sends it).
* "Branch" on a message opens a new chat holding the history up to and including it.
* Editing is explicit: Edit puts a message in the input with Cancel beside Send; Cancel, Esc,
  sending, a new chat or opening another one end it and clear the "Editing: …" status line;
  emptying the input ends it too, so a new question typed there is sent as a new message.
* A stopped reply gets its Edit and Regenerate back and its stored stats (the stop cancels the
  reply's task, so no result comes back the usual way).

A mixin of :class:`~victor_gui.ui.chat_pane.ChatPane` (same object), like
:mod:`~victor_gui.ui.chat_stored`. The tree itself is the store's
(:mod:`victor_gui.storage.tree`); this part only renders it and forwards the person's intents.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from victor_gui.ui.message_view import MessageView

log = logging.getLogger(__name__)

EDITING_TEXT = ("Editing: Ctrl+Enter sends it as a new version (the current one is kept); "
                "Esc or Cancel stops editing.")


class VersionsMixin:
    """Versions, branches and the edit state; see the module doc. Mixed into ChatPane, whose
    widgets and methods it uses (mypy is told not to look for them here: see the first line)."""

    _editing: MessageView | None
    _view: MessageView | None
    _draft_before_edit: str = ""

    # -- versions and branches ---------------------------------------------------------------------

    def refresh_versions(self) -> asyncio.Task[None]:
        """Show the switchers and Branch buttons of the messages on screen (after a page is
        shown or a reply ended)."""
        return self.tasks.spawn(self._show_versions())

    async def _show_versions(self) -> None:
        if self.store is None or self.conversation_id is None:
            return
        versions = await self.controller.versions()
        for view in self.transcript.messages:
            if view.message_id is None:
                continue
            if not view.property("versionsHooked"):
                view.setProperty("versionsHooked", True)
                view.version_requested.connect(self.choose_version)
                view.branch_requested.connect(lambda v=view: self.branch_from(v))
                view.delete_requested.connect(lambda v=view: self.delete_message(v))
            view.set_versions(versions.get(view.message_id))
            view.set_branchable(not self.running)

    def choose_version(self, message_id: int) -> asyncio.Task[None] | None:
        """Show the version ``message_id`` and the branch below it (stored: the next request
        sends this branch). Not while a reply streams."""
        if self.running or self.controller.busy:
            self.status_label.setText("Stop the reply first to switch versions.")
            return None
        return self.tasks.spawn(self._choose_version(message_id))

    async def _choose_version(self, message_id: int) -> None:
        self.end_edit()
        page = await self.controller.choose_version(message_id)
        self.transcript.clear()
        self._view = None
        target = self._show_page(page, at_top=False)
        await self._show_versions()
        if target is not None:
            self.transcript.scroll_to(target)

    def branch_from(self, view: MessageView) -> asyncio.Task[None] | None:
        """Start a new chat with the history up to and including ``view``'s message."""
        if view.message_id is None or self.running:
            return None
        return self.tasks.spawn(self._branch_from(view.message_id))

    async def _branch_from(self, message_id: int) -> None:
        new_id = await self.controller.branch_from(message_id)
        await self.open_conversation(new_id)
        self.status_label.setText("A new chat branched from that message; the original is unchanged.")

    # -- editing -----------------------------------------------------------------------------------

    def _begin_edit(self, view: MessageView) -> None:
        if self.running or not self.controller.begin_edit(view.message_id):
            return
        if self._editing is None:
            self._draft_before_edit = self.input.toPlainText()
        self._editing = view
        self.input.setPlainText(view.text)
        self.send_button.setText("Resend")
        self.cancel_edit_button.show()
        self.status_label.setText(EDITING_TEXT)
        self.input.setFocus()

    @property
    def editing(self) -> bool:
        """Whether a message is being edited (the input holds it; Send resends it)."""
        return self._editing is not None

    def cancel_edit(self) -> None:
        """Stop editing: the input gets back what was typed before Edit, the status line clears."""
        if self._editing is None:
            return
        draft = self._draft_before_edit
        self.end_edit()
        self.input.setPlainText(draft)

    def end_edit(self) -> MessageView | None:
        """End the edit state (Cancel, Esc, a new chat); returns the view that was edited."""
        editing, self._editing = self._editing, None
        if self._controller is not None:
            self.controller.take_edit()
        self.end_edit_view()
        return editing

    def end_edit_view(self) -> None:
        """The window's side of ending an edit (Send keeps the controller's: it resends)."""
        self._editing = None
        self._draft_before_edit = ""
        self.send_button.setText("Send")
        self.cancel_edit_button.hide()
        if self.status_label.text() == EDITING_TEXT:
            self.status_label.setText("")

    def _input_changed(self) -> None:
        # Emptying the input while editing ends the edit: what is typed next is a new message.
        if self._editing is not None and not self.input.toPlainText().strip():
            self.end_edit()

    def escape(self) -> None:
        """Esc: stop editing if editing, else stop the reply."""
        if self._editing is not None:
            self.cancel_edit()
        else:
            self.stop()

    # -- a stopped reply -----------------------------------------------------------------------------

    async def _after_stop(self, view: MessageView, user_view: MessageView | None) -> None:
        """The reply was stopped: give it its stored stats and the actions back."""
        result = await self.controller.stopped_reply()
        if result is None or result.stored is None:
            return
        await self._finish(view, result, user_view)
