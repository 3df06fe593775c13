"""Compare mode in the main window: Ctrl+\\ toggles it, and a pane's conversation can become the
main chat ("Continue with this one").

:func:`install_compare` is the one call the main window makes; everything else about compare
lives in :mod:`victor_gui.ui.compare_view` (widgets) and :mod:`victor_gui.services.compare`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QSplitter

from victor_gui.ui.chat_pane import ChatPane
from victor_gui.ui.compare_view import SPLIT_KEY, CompareView

if TYPE_CHECKING:
    from victor_gui.services.compare import CompareSlot


def hand_over(chat: ChatPane, slot: CompareSlot, provider: str, model: str, title: str) -> None:
    """Make ``slot``'s conversation the chat's, and choose ``provider``/``model`` for what follows.

    With a conversation store (the store-backed chat pane), the pane's conversation is saved as a
    new stored conversation (:func:`~victor_gui.services.compare.save_slot`) and opened; without
    one, the messages become the chat's in-memory history.
    """
    chat.stop()
    store = getattr(chat, "store", None)
    if store is not None and hasattr(chat, "open_conversation"):
        chat._spawn(_open_saved(chat, store, slot, title))
    else:
        chat.history = list(slot.history)
        chat.transcript.clear()
        for message in chat.history:
            if message.role == "user":
                chat.transcript.add_message("user", "You", message.text)
            elif message.role == "assistant":
                reply = chat.transcript.add_message("assistant", title, message.text)
                chat._spawn(reply.render_markdown_async())

    def choose_model(_name: str = "") -> None:
        if _name:
            chat.models_loaded.disconnect(choose_model)
        index = chat.model_combo.findText(model)
        if index < 0:
            chat.model_combo.addItem(model)
            index = chat.model_combo.findText(model)
        chat.model_combo.setCurrentIndex(index)

    current = chat.current_choice()
    if provider and (current is None or current.name != provider):
        chat.models_loaded.connect(choose_model)  # once the new provider's models are listed
        chat.select_provider(provider)
    elif model:
        choose_model()
    chat.input.setFocus()


async def _open_saved(chat: ChatPane, store: Any, slot: CompareSlot, title: str) -> None:
    from victor_gui.errors import StorageError
    from victor_gui.services.compare import save_slot

    try:
        conversation_id = await save_slot(store, slot)
    except StorageError as exc:
        chat.status_label.setText(f"Could not save the compared conversation: {exc}")
        return
    await chat.open_conversation(conversation_id)  # type: ignore[attr-defined]
    chat.conversation_changed.emit(conversation_id)  # type: ignore[attr-defined]


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

    def take_over(slot: CompareSlot, provider: str, model: str, title: str) -> None:
        hand_over(chat, slot, provider, model, title)
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
