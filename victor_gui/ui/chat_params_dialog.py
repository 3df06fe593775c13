"""Per-chat system prompt and parameters, one row per entry of :data:`providers.params.PARAMS`.

Stored with the conversation (:meth:`ConversationStore.update_conversation`), used by the chat's
session from the next reply on. A row left at its lowest value reads "default" and is not
stored: the provider's own default applies. Rows the current provider does not take are shown
greyed with a tooltip (they stay editable: the chat may move to a provider that takes them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from victor_gui.providers.catalog import display_name
from victor_gui.providers.params import PARAMS, ParamSpec, accepted_keys, clean_params, dialect_of

if TYPE_CHECKING:
    from victor_gui.ui.chat_pane import ChatPane

DEFAULT_TEXT = "default"
# Values a new chat starts with when nothing is stored (the session's own defaults).
START = {"temperature": 0.7}


# Whole-number rows whose 0 already means "not set" (no step under the range is needed).
ZERO_IS_UNSET = ("max_tokens", "context_length", "thinking_budget")
SPECIAL = {"max_tokens": "default (4096)", "context_length": "as the model reports",
           "thinking_budget": "off", "seed": "random"}


def _spin(spec: ParamSpec) -> QSpinBox | QDoubleSpinBox:
    """A spin box whose lowest value (one step under the range) means "not set"."""
    special = SPECIAL.get(spec.key, DEFAULT_TEXT)
    if spec.kind == "int":
        whole = QSpinBox()
        whole.setRange(int(spec.minimum) - (0 if spec.key in ZERO_IS_UNSET else 1), int(spec.maximum))
        whole.setSingleStep(int(spec.step) or 1)
        whole.setSpecialValueText(special)
        whole.setValue(whole.minimum())
        return whole
    box = QDoubleSpinBox()
    box.setDecimals(2)
    box.setSingleStep(spec.step)
    if spec.key == "temperature":  # always sent: the session's default is 0.7
        box.setRange(spec.minimum, spec.maximum)
        return box
    box.setRange(spec.minimum - spec.step, spec.maximum)
    box.setSpecialValueText(special)
    box.setValue(box.minimum())
    return box


class ChatParamsDialog(QDialog):
    """Edit the chat on screen's system prompt and parameters."""

    def __init__(self, chat: ChatPane, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chat = chat
        self.setWindowTitle("Chat parameters")
        self.setObjectName("chatParams")
        layout = QVBoxLayout(self)
        self.note = QLabel("These apply to this chat only and are saved with it. "
                           "“default” leaves the provider's own value.")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        form = QFormLayout()
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setAccessibleName("System prompt")
        self.system_prompt.setPlaceholderText("You are a helpful assistant…")
        self.system_prompt.setTabChangesFocus(True)
        self.system_prompt.setFixedHeight(90)
        form.addRow("System prompt", self.system_prompt)
        self.fields: dict[str, QWidget] = {}
        self.labels: dict[str, QLabel] = {}
        for spec in PARAMS:
            widget = self._field(spec)
            widget.setAccessibleName(spec.label)
            if spec.hint:
                widget.setToolTip(spec.hint)
            label = QLabel(spec.label)
            label.setBuddy(widget)
            self.fields[spec.key] = widget
            self.labels[spec.key] = label
            form.addRow(label, widget)
        self.temperature: QDoubleSpinBox = self.fields["temperature"]  # type: ignore[assignment]
        self.temperature.setValue(START["temperature"])
        self.max_tokens: QSpinBox = self.fields["max_tokens"]  # type: ignore[assignment]
        self.context_length: QSpinBox = self.fields["context_length"]  # type: ignore[assignment]
        inner = QWidget()
        inner.setLayout(form)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        layout.addWidget(scroll, 1)
        self.accepted_note = QLabel("")
        self.accepted_note.setObjectName("paramsAccepted")
        self.accepted_note.setWordWrap(True)
        layout.addWidget(self.accepted_note)
        ok_cancel = QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        buttons = QDialogButtonBox(ok_cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(460, 640)
        self.accepted.connect(lambda: self.chat.tasks.spawn(self.save()))
        self.mark_accepted()

    @staticmethod
    def _field(spec: ParamSpec) -> QWidget:
        if spec.kind == "choice":
            combo = QComboBox()
            combo.addItem(DEFAULT_TEXT, None)
            for choice in spec.choices:
                combo.addItem(choice, choice)
            return combo
        if spec.kind == "list":
            edit = QPlainTextEdit()
            edit.setPlaceholderText("one stop sequence per line")
            edit.setTabChangesFocus(True)
            edit.setFixedHeight(54)
            return edit
        return _spin(spec)

    def mark_accepted(self) -> None:
        """Grey the labels of parameters the chat's current provider does not take."""
        session = self.chat.session
        provider = session.provider if session is not None else None
        dialect = dialect_of(provider) if provider is not None else None
        taken = set(accepted_keys(dialect))
        for key, label in self.labels.items():
            label.setEnabled(key in taken)
            label.setToolTip("" if key in taken else "Not sent to this chat's provider")
        if provider is not None and dialect is not None:
            skipped = [spec.label for spec in PARAMS if spec.key not in taken]
            who = display_name(provider.name)
            self.accepted_note.setText(f"Not sent to {who}: {', '.join(skipped)}." if skipped
                                       else f"{who} takes every parameter.")

    async def load(self) -> None:
        """Fill the fields from the stored conversation (defaults for a new chat)."""
        store, cid = self.chat.store, self.chat.conversation_id
        if store is None or cid is None:
            return
        conv = await store.get_conversation(cid)
        if conv is None:
            return
        self.system_prompt.setPlainText(conv.system_prompt or "")
        self.set_values(conv.params or {})
        self.mark_accepted()

    def set_values(self, params: dict[str, Any]) -> None:
        """Show ``params`` (neutral names); a parameter not in it shows "default"."""
        values = clean_params(params)
        for spec in PARAMS:
            widget = self.fields[spec.key]
            value = values.get(spec.key)
            if isinstance(widget, QComboBox):
                widget.setCurrentIndex(max(0, widget.findData(value)) if value else 0)
            elif isinstance(widget, QPlainTextEdit):
                widget.setPlainText("\n".join(value or []))
            elif isinstance(widget, QSpinBox | QDoubleSpinBox):
                fallback = START.get(spec.key, widget.minimum())
                widget.setValue(value if value is not None else fallback)  # type: ignore[arg-type]

    def values(self) -> tuple[str, dict[str, Any]]:
        """(system prompt, the parameters set), neutral names, defaults left out."""
        params: dict[str, Any] = {}
        for spec in PARAMS:
            widget = self.fields[spec.key]
            if isinstance(widget, QComboBox):
                if widget.currentData():
                    params[spec.key] = widget.currentData()
            elif isinstance(widget, QPlainTextEdit):
                stops = [line for line in widget.toPlainText().splitlines() if line]
                if stops:
                    params[spec.key] = stops
            elif isinstance(widget, QSpinBox):
                if widget.value() != widget.minimum():
                    params[spec.key] = widget.value()
            elif isinstance(widget, QDoubleSpinBox):
                if spec.key == "temperature" or widget.value() != widget.minimum():
                    params[spec.key] = round(widget.value(), 2)
        return self.system_prompt.toPlainText().strip(), params

    async def save(self) -> None:
        prompt, params = self.values()
        await self.chat.apply_params(prompt, params)
