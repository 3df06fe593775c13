"""Compare mode in the main window: Ctrl+\\ toggles it, and a pane's conversation can become the
main chat ("Continue with this one").

:func:`install_compare` is the one call the main window makes; everything else about compare
lives in :mod:`victor_gui.ui.compare_view` (widgets) and :mod:`victor_gui.services.compare`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QSplitter

from victor_gui.ui.icons import set_icon
from victor_gui.ui.shortcut_keys import SPLIT_KEY

if TYPE_CHECKING:
    from victor_gui.services.compare import CompareSlot
    from victor_gui.storage.store import ConversationStore
    from victor_gui.ui.chat_pane import ChatPane
    from victor_gui.ui.compare_view import CompareView


def hand_over(chat: ChatPane, slot: CompareSlot) -> None:
    """Make ``slot``'s conversation the main chat: saved as a new stored conversation
    (:func:`~victor_gui.services.compare.save_slot`, each reply with its provider, model, usage,
    timings and cost) and opened, so the chat goes on with that pane's provider and model."""
    chat.stop()
    if chat.store is None:
        chat.status_label.setText("Your conversations are still opening; try again in a moment.")
        return
    chat.tasks.spawn(_open_saved(chat, chat.store, slot))
    chat.input.setFocus()


async def _open_saved(chat: ChatPane, store: ConversationStore, slot: CompareSlot) -> None:
    from victor_gui.errors import StorageError
    from victor_gui.services.compare import save_slot

    try:
        conversation_id = await save_slot(store, slot)
    except StorageError as exc:
        chat.status_label.setText(f"Could not save the compared conversation: {exc}")
        return
    await chat.open_conversation(conversation_id)
    chat.conversation_changed.emit(conversation_id)  # the list shows it, selected



class CompareMode(QObject):
    """Compare mode of one main window: the Ctrl+\\ action and, built on first use, the
    :class:`~victor_gui.ui.compare_view.CompareView` (not at start-up: it costs first paint).

    Ctrl+\\ (or View ▸ Compare side by side) from the chat opens compare with two panes, the
    first on the chat's provider and model; in compare it adds a pane (up to four). "Continue
    with this one" hands that pane's conversation to the chat and goes back to it. Attributes
    not found here are the view's (``window.compare.panes``, ``.input``, ``.send()``...).
    """

    def __init__(self, window: QMainWindow, host: QSplitter, chat: ChatPane) -> None:
        super().__init__(window)
        self._host = host
        self._chat = chat
        self._view: CompareView | None = None
        # The conversation list: hidden while comparing, the panes need the width.
        self._side = host.widget(0) if host.indexOf(chat) != 0 else None
        self.split_action = QAction("Compare side by side", window)
        set_icon(self.split_action, "columns", later=True)  # drawn when the View menu opens
        self.split_action.setShortcut(QKeySequence(SPLIT_KEY))
        self.split_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.split_action.setToolTip(f"Compare models side by side ({SPLIT_KEY}); again adds a pane")
        self.split_action.triggered.connect(self.split)
        window.addAction(self.split_action)
        window.menuBar().addMenu("&View").addAction(self.split_action)

    @property
    def view(self) -> CompareView:
        """The compare view, built (hidden, next to the chat) on first use."""
        if self._view is None:
            from victor_gui.ui.compare_view import CompareView

            chat = self._chat
            view = CompareView(lambda: chat.pool, store=lambda: chat.store,  # attachments: the chat's store
                               attachment_settings=chat._attachment_settings)
            view.hide()
            self._host.addWidget(view)
            self._host.setStretchFactor(self._host.indexOf(view), 1)
            view.leave_requested.connect(self.leave)
            view.continue_with.connect(self._take_over)
            self._view = view
        return self._view

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.view, name)

    def isVisible(self) -> bool:
        return self._view is not None and self._view.isVisible()

    def enter(self) -> None:
        """Show compare instead of the chat, with at least two panes."""
        from victor_gui.services.provider_choices import provider_choices

        view, chat = self.view, self._chat
        # With the registry, the chat's list (targets with their states, then clouds).
        choices = chat.registry_choices() if chat.registry is not None else provider_choices()
        view.set_choices(choices, view.models_cache)
        view.models_source = chat.picker.models_source
        chat.hide()
        if self._side is not None:
            self._side.hide()
        view.show()
        choice, model = chat.current_choice(), chat.model_combo.currentText().strip()
        # Panes start on distinct working targets when there are several (the chat's first).
        working = [c.name for c in choices if c.target is not None and c.target.working]
        starts = ([choice.name] if choice else []) + [n for n in working if not choice or n != choice.name]
        while len(view.panes) < 2:
            index = len(view.panes)
            name = starts[index] if index < len(starts) else (choice.name if choice else None)
            view.add_pane(name, (model or None) if choice is not None and name == choice.name else None)
        view.input.setPlainText(chat.input.toPlainText())
        view.input.setFocus()

    def leave(self) -> None:
        """Back to the chat (the panes stay as they are for next time)."""
        if self._view is not None:
            self._view.hide()
        if self._side is not None:
            self._side.show()
        self._chat.show()
        self._chat.input.setFocus()

    def split(self) -> None:
        """Ctrl+\\: open compare, or add a pane when it is open."""
        if not self.isVisible():
            self.enter()
        else:
            self.view.add_pane()

    def open_model_list(self) -> None:
        """Ctrl+K in compare: the focused pane's model list."""
        self.view.open_model_list()

    def _take_over(self, slot: CompareSlot) -> None:
        hand_over(self._chat, slot)
        self.leave()

    async def aclose(self) -> None:
        """Stop every reply (at shutdown); nothing to do when compare was never opened."""
        if self._view is not None:
            await self._view.aclose()


def install_compare(window: QMainWindow, host: QSplitter, chat: ChatPane) -> CompareMode:
    """Add compare mode to ``window`` (``host`` is the splitter that holds ``chat``)."""
    return CompareMode(window, host, chat)
