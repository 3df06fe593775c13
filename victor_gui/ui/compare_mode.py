"""Compare mode in the main window: Ctrl+\\ toggles it, and a pane's conversation can become the
main chat ("Continue with this one").

:func:`install_compare` is the one call the main window makes; everything else about compare
lives in :mod:`victor_gui.ui.compare_view` (widgets) and :mod:`victor_gui.services.compare`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QSplitter

from victor_gui.ui.chat_pane import ChatPane
from victor_gui.ui.compare_view import SPLIT_KEY, CompareView

if TYPE_CHECKING:
    from victor_gui.services.compare import CompareSlot
    from victor_gui.storage.store import ConversationStore


def hand_over(chat: ChatPane, slot: CompareSlot) -> None:
    """Make ``slot``'s conversation the main chat: saved as a new stored conversation
    (:func:`~victor_gui.services.compare.save_slot`, each reply with its provider, model, usage,
    timings and cost) and opened, so the chat goes on with that pane's provider and model."""
    chat.stop()
    if chat.store is None:
        chat.status_label.setText("Your conversations are still opening; try again in a moment.")
        return
    chat._spawn(_open_saved(chat, chat.store, slot))
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


def install_compare(window: QMainWindow, host: QSplitter, chat: ChatPane) -> CompareView:
    """Put a hidden compare view next to ``chat`` in ``host`` and wire Ctrl+\\ and the menu.

    Ctrl+\\ (or View ▸ Compare side by side) from the chat opens compare with two panes, the
    first on the chat's provider and model; in compare it adds a pane (up to four). "Continue
    with this one" hands that pane's history to ``chat`` and goes back to it.
    """
    view = CompareView(lambda: chat.pool)
    view.hide()
    host.addWidget(view)
    host.setStretchFactor(host.indexOf(view), 1)

    side = host.widget(0) if host.indexOf(chat) != 0 else None  # the conversation list

    def enter() -> None:
        from victor_gui.services.provider_choices import provider_choices

        view.set_choices(provider_choices(), view.models_cache)
        chat.hide()
        if side is not None:
            side.hide()  # the panes need the width
        view.show()
        choice, model = chat.current_choice(), chat.model_combo.currentText().strip()
        while len(view.panes) < 2:
            view.add_pane(choice.name if choice else None, model or None)
        view.input.setPlainText(chat.input.toPlainText())
        view.input.setFocus()

    def leave() -> None:
        view.hide()
        if side is not None:
            side.show()
        chat.show()
        chat.input.setFocus()

    def split() -> None:
        if view.isHidden():
            enter()
        else:
            view.add_pane()

    def take_over(slot: CompareSlot) -> None:
        hand_over(chat, slot)
        leave()

    view.leave_requested.connect(leave)
    view.continue_with.connect(take_over)
    action = QAction("Compare side by side", window)
    action.setShortcut(QKeySequence(SPLIT_KEY))
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.setToolTip(f"Compare models side by side ({SPLIT_KEY}); again adds a pane")
    action.triggered.connect(split)
    window.addAction(action)
    window.menuBar().addMenu("&View").addAction(action)
    view.split_action = action  # type: ignore[attr-defined]
    return view
