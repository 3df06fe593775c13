# mypy: disable-error-code="attr-defined,no-any-return,arg-type"
"""Deleting one message, with Undo (issue 14: the message menu's Delete).

A mixin of :class:`~victor_gui.ui.chat_pane.ChatPane` (same object), like
:mod:`~victor_gui.ui.chat_versions`. Delete hides the message at once and offers Undo for
:data:`UNDO_SECONDS`; the store deletes it when that time has passed, or sooner when the chat is
left, a message is sent or another message is deleted. Nothing is removed from the store before
then, so a crash in between keeps the message (nothing a user saw is lost by accident).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

if TYPE_CHECKING:
    from victor_gui.ui.message_view import MessageView

log = logging.getLogger(__name__)

UNDO_SECONDS = 8.0


class UndoBar(QWidget):
    """"Message deleted. [Undo]" above the input."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("Message deleted.")
        self.label.setObjectName("undoText")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setAccessibleName("Undo the delete")
        row.addWidget(self.label, 1)
        row.addWidget(self.undo_button)
        self.hide()


class MessageActionsMixin:
    """Delete with Undo; see the module doc. Mixed into ChatPane, whose widgets it uses."""

    _pending_delete: tuple[MessageView, QTimer] | None = None
    _undo_bar: UndoBar | None = None

    @property
    def undo_bar(self) -> UndoBar:
        """The Undo row above the input, made on first use."""
        if self._undo_bar is None:
            bar = UndoBar(self)
            bar.undo_button.clicked.connect(self.undo_delete)
            layout = self.layout()
            layout.insertWidget(max(0, layout.count() - 1), bar)  # just above the input row
            self._undo_bar = bar
        return self._undo_bar

    def delete_message(self, view: MessageView) -> None:
        """Hide ``view``'s message and offer Undo; the store deletes it after
        :data:`UNDO_SECONDS` (or when the chat moves on)."""
        if view.message_id is None:
            return
        if self.running:
            self.status_label.setText("Stop the reply first to delete a message.")
            return
        self.commit_pending_delete()
        view.hide()
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(int(UNDO_SECONDS * 1000))
        timer.timeout.connect(self.commit_pending_delete)
        timer.start()
        self._pending_delete = (view, timer)
        bar = self.undo_bar
        bar.label.setText(f"Message deleted. Undo within {UNDO_SECONDS:.0f} s.")
        bar.show()

    def undo_delete(self) -> None:
        """Bring the hidden message back; nothing was deleted from the store."""
        pending, self._pending_delete = self._pending_delete, None
        if self._undo_bar is not None:
            self._undo_bar.hide()
        if pending is not None:
            view, timer = pending
            timer.stop()
            view.show()

    def commit_pending_delete(self) -> asyncio.Task[None] | None:
        """Delete the message waiting for its Undo time now (the chat moves on)."""
        pending, self._pending_delete = self._pending_delete, None
        if self._undo_bar is not None:
            self._undo_bar.hide()
        if pending is None:
            return None
        view, timer = pending
        timer.stop()
        message_id = view.message_id
        self.transcript.remove_message(view)
        store = self.store
        if store is None or message_id is None:
            return None
        return self.tasks.spawn(self._delete_stored(store, message_id))

    async def _delete_stored(self, store: object, message_id: int) -> None:
        try:
            await store.delete_message(message_id)
        except Exception as exc:  # shown; the message stays in the store
            log.exception("deleting a message failed")
            self.status_label.setText(f"The message could not be deleted: {exc}")
            return
        self.refresh_versions()
        if self.conversation_id is not None:
            self.conversation_changed.emit(self.conversation_id)
