"""Per-chat system prompt and parameters (temperature, max tokens, context length).

Stored with the conversation (:meth:`ConversationStore.update_conversation`), used by the chat's
session from the next reply on. A value of 0 for max tokens or context length means "the
default" (4096 tokens out; the window the server or the model table reports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from victor_gui.ui.chat_pane import ChatPane


class ChatParamsDialog(QDialog):
    """Edit the chat on screen's system prompt and parameters."""

    def __init__(self, chat: ChatPane, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chat = chat
        self.setWindowTitle("Chat parameters")
        layout = QVBoxLayout(self)
        self.note = QLabel("These apply to this chat only and are saved with it.")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        form = QFormLayout()
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setAccessibleName("System prompt")
        self.system_prompt.setPlaceholderText("You are a helpful assistant…")
        self.system_prompt.setTabChangesFocus(True)
        form.addRow("System prompt", self.system_prompt)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.7)
        self.temperature.setAccessibleName("Temperature")
        form.addRow("Temperature", self.temperature)
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(0, 1_000_000)
        self.max_tokens.setSpecialValueText("default (4096)")
        self.max_tokens.setAccessibleName("Maximum tokens in a reply")
        form.addRow("Max tokens", self.max_tokens)
        self.context_length = QSpinBox()
        self.context_length.setRange(0, 10_000_000)
        self.context_length.setSingleStep(1024)
        self.context_length.setSpecialValueText("as the model reports")
        self.context_length.setAccessibleName("Context length")
        form.addRow("Context length", self.context_length)
        layout.addLayout(form)
        ok_cancel = QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        buttons = QDialogButtonBox(ok_cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.accepted.connect(lambda: self.chat.tasks.spawn(self.save()))

    async def load(self) -> None:
        """Fill the fields from the stored conversation (defaults for a new chat)."""
        store, cid = self.chat.store, self.chat.conversation_id
        if store is None or cid is None:
            return
        conv = await store.get_conversation(cid)
        if conv is None:
            return
        self.system_prompt.setPlainText(conv.system_prompt or "")
        params = conv.params or {}
        if params.get("temperature") is not None:
            self.temperature.setValue(float(params["temperature"]))
        self.max_tokens.setValue(int(params.get("max_tokens") or 0))
        self.context_length.setValue(int(params.get("context_length") or 0))

    def values(self) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"temperature": round(self.temperature.value(), 2)}
        if self.max_tokens.value():
            params["max_tokens"] = self.max_tokens.value()
        if self.context_length.value():
            params["context_length"] = self.context_length.value()
        return self.system_prompt.toPlainText().strip(), params

    async def save(self) -> None:
        prompt, params = self.values()
        await self.chat.apply_params(prompt, params)
