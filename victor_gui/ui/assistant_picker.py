"""The assistant picker (Chat → New chat with assistant…): the assistants of
:mod:`victor_gui.services.assistants`, each picked for a new chat or applied to the chat on
screen; saved from the chat on screen; imported from and exported to YAML files; deleted.

Applying one goes through the chat's own paths: the provider and model as a pick in the
drop-downs (:meth:`~victor_gui.ui.chat_slash.SlashCommands.switch_to`), the system prompt and
parameters as the parameters panel saves them, the tools as the tools menu does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from victor_gui.errors import ConfigError
from victor_gui.providers.params import SPECS_BY_KEY
from victor_gui.services.assistants import Assistant, Assistants, chat_params
from victor_gui.services.tool_loop import ToolChoice
from victor_gui.ui.widgets.wrap_label import WrapLabel


def describe(assistant: Assistant) -> str:
    """The details shown beside the list."""
    lines = [assistant.description] if assistant.description else []
    lines.append(f"Answers with: {assistant.summary()}")
    if assistant.system_prompt:
        prompt = assistant.system_prompt
        lines.append(f"System prompt: {prompt[:300]}{'…' if len(prompt) > 300 else ''}")
    for key, value in assistant.params.items():
        label = SPECS_BY_KEY[key].label if key in SPECS_BY_KEY else key
        shown = ", ".join(map(repr, value)) if isinstance(value, list) else value
        lines.append(f"{label}: {shown}")
    if assistant.tools is not None:
        lines.append(f"Tools: {', '.join(assistant.tools) or 'off'}")
    return "\n".join(lines)


async def apply_assistant(chat: Any, assistant: Assistant, *, new_chat: bool) -> str | None:
    """Apply ``assistant`` to ``chat`` (a ChatPane), first starting a new chat when ``new_chat``.
    Returns a problem in words (the rest is still applied), or None."""
    if new_chat:
        chat.new_chat()
    problem = None
    if assistant.provider:
        problem = await chat.slash.switch_to(assistant.provider, assistant.model)
    elif assistant.model:
        chat.picker.select_model(assistant.model)
        chat._model_activated(chat.model_combo.currentIndex())
    kept: dict[str, Any] = {}
    if chat.store is not None and chat.conversation_id is not None:
        conv = await chat.store.get_conversation(chat.conversation_id)
        kept = dict(conv.params or {}) if conv is not None else {}
    await chat.apply_params(assistant.system_prompt, chat_params(assistant, kept))
    if assistant.tools is not None:
        await chat.controller.set_tool_choice(ToolChoice(tuple(assistant.tools)))
        await chat.show_tool_choice()
    chat.meter.schedule()
    chat.status_label.setText(f"Assistant: {assistant.name}" + (f" — {problem}" if problem else ""))
    return problem


class AssistantPicker(QDialog):
    """Pick an assistant for a new chat or this one; save, import, export, delete."""

    def __init__(self, chat: QWidget, assistants: Assistants, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # The ChatPane (typed loosely: importing chat_pane here would make an import cycle).
        self.chat: Any = cast(Any, chat)
        self.assistants = assistants
        self.items: list[Assistant] = []
        self.setWindowTitle("Assistants")
        self.setObjectName("assistantPicker")
        layout = QVBoxLayout(self)
        intro = QLabel("An assistant is a system prompt, parameters, a provider and model, and tools, "
                       "saved under a name.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        body = QHBoxLayout()
        self.list = QListWidget()
        self.list.setAccessibleName("Assistants")
        self.list.currentRowChanged.connect(self._show_current)
        self.list.itemDoubleClicked.connect(lambda _item: self.start_new_chat())
        body.addWidget(self.list, 2)
        self.details = WrapLabel("")
        self.details.setObjectName("assistantDetails")
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setAccessibleName("Assistant details")
        body.addWidget(self.details, 3)
        layout.addLayout(body, 1)
        self.message = WrapLabel("")
        self.message.setObjectName("assistantMessage")
        self.message.hide()
        layout.addWidget(self.message)
        row = QHBoxLayout()
        self.new_chat_button = self._button(row, "New chat with it", self.start_new_chat)
        self.new_chat_button.setDefault(True)
        self.apply_button = self._button(row, "Apply to this chat", self.apply_to_chat)
        row.addStretch(1)
        layout.addLayout(row)
        manage = QHBoxLayout()
        self.save_button = self._button(manage, "Save this chat as…", self.ask_save_chat)
        self.import_button = self._button(manage, "Import…", self.ask_import)
        self.export_button = self._button(manage, "Export…", self.ask_export)
        self.delete_button = self._button(manage, "Delete", self.delete_current)
        manage.addStretch(1)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        manage.addWidget(close)
        layout.addLayout(manage)
        self.resize(640, 420)
        self._show_current(-1)

    def _say(self, text: str) -> None:
        """A line under the list (what was done, what went wrong); hidden when there is none."""
        self.message.setText(text)
        self.message.setVisible(bool(text))

    @staticmethod
    def _button(row: QHBoxLayout, text: str, slot: Any) -> QPushButton:
        button = QPushButton(text)
        button.clicked.connect(slot)
        row.addWidget(button)
        return button

    # -- the list -----------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the assistants and list them (problems in the file are shown under the list)."""
        self.items = await self.assistants.load()
        current = self.current().name if self.current() is not None else None  # type: ignore[union-attr]
        self.list.clear()
        for assistant in self.items:
            item = QListWidgetItem(assistant.name)
            item.setToolTip(assistant.description or assistant.summary())
            self.list.addItem(item)
        names = [a.name for a in self.items]
        self.list.setCurrentRow(names.index(current) if current in names else (0 if names else -1))
        problems = "; ".join(str(p) for p in self.assistants.problems)
        if not self.items and not problems:
            self._say("No assistants yet: set up a chat, then “Save this chat as…”, "
                                 "or import a YAML file.")
        else:
            self._say(f"Left out: {problems}" if problems else "")
        self._show_current(self.list.currentRow())

    def current(self) -> Assistant | None:
        row = self.list.currentRow()
        return self.items[row] if 0 <= row < len(self.items) else None

    def select(self, name: str) -> None:
        """Highlight the assistant ``name``."""
        names = [a.name for a in self.items]
        if name in names:
            self.list.setCurrentRow(names.index(name))

    def _show_current(self, _row: int) -> None:
        assistant = self.current()
        self.details.setText(describe(assistant) if assistant is not None else "")
        for button in (self.new_chat_button, self.apply_button, self.export_button, self.delete_button):
            button.setEnabled(assistant is not None)

    # -- actions ------------------------------------------------------------------------------------

    def start_new_chat(self) -> asyncio.Task[None] | None:
        return self._use(new_chat=True)

    def apply_to_chat(self) -> asyncio.Task[None] | None:
        return self._use(new_chat=False)

    def _use(self, *, new_chat: bool) -> asyncio.Task[None] | None:
        assistant = self.current()
        if assistant is None or self.chat.running:
            if self.chat.running:
                self._say("Wait for the reply to finish (or press Esc) first.")
            return None
        self.accept()
        return cast("asyncio.Task[None]", self.chat.tasks.spawn(self._apply(assistant, new_chat)))

    async def _apply(self, assistant: Assistant, new_chat: bool) -> None:
        await apply_assistant(self.chat, assistant, new_chat=new_chat)

    def ask_save_chat(self) -> QInputDialog:
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Save as assistant")
        dialog.setLabelText("Name of the assistant:")
        dialog.textValueSelected.connect(lambda name: self.chat.tasks.spawn(self.save_chat_as(name)))
        dialog.open()
        return dialog

    async def save_chat_as(self, name: str, description: str = "") -> Assistant | None:
        """Save the chat on screen (system prompt, parameters, provider, model, tools) as ``name``."""
        from victor_gui.providers.params import clean_params

        name = name.strip()
        if not name:
            return None
        prompt, params, tools = "", {}, None
        if self.chat.store is not None and self.chat.conversation_id is not None:
            conv = await self.chat.store.get_conversation(self.chat.conversation_id)
            if conv is not None:
                prompt, params = conv.system_prompt or "", clean_params(conv.params or {})
            choice = await self.chat.controller.tool_choice()
            tools = list(choice.servers) if choice.enabled else None
        picked = self.chat.current_choice()
        try:
            assistant = Assistant(name=name, description=description, system_prompt=prompt, params=params,
                                  provider=picked.name if picked is not None else None,
                                  model=self.chat.model_combo.currentText().strip() or None, tools=tools)
            await self.assistants.save(assistant)
        except (ConfigError, ValueError) as exc:
            self._say(f"Not saved: {exc}")
            return None
        await self.load()
        self.select(assistant.name)
        self._say(f"Saved {assistant.name}.")
        return assistant

    def ask_import(self) -> QFileDialog:
        dialog = QFileDialog(self, "Import assistants")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilter("YAML (*.yaml *.yml)")
        dialog.fileSelected.connect(lambda path: self.chat.tasks.spawn(self.import_from(Path(path))))
        dialog.open()
        return dialog

    async def import_from(self, path: Path) -> None:
        try:
            found = await self.assistants.import_file(path)
        except ConfigError as exc:
            self._say(f"Not imported: {exc}")
            return
        await self.load()
        if found.assistants:
            self.select(found.assistants[0].name)
        names = ", ".join(a.name for a in found.assistants) or "nothing"
        left = "; ".join(str(p) for p in found.problems)
        self._say(f"Imported {names}." + (f" Left out: {left}" if left else ""))

    def ask_export(self) -> QFileDialog | None:
        from victor_gui.services.assistants import export_file_name

        assistant = self.current()
        if assistant is None:
            return None
        dialog = QFileDialog(self, "Export assistant")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("YAML (*.yaml)")
        dialog.setDefaultSuffix("yaml")
        dialog.selectFile(export_file_name(assistant.name))
        dialog.fileSelected.connect(
            lambda path: self.chat.tasks.spawn(self.export_to(assistant.name, Path(path))))
        dialog.open()
        return dialog

    async def export_to(self, name: str, path: Path) -> Path | None:
        try:
            written = await self.assistants.export(name, path)
        except (ConfigError, OSError) as exc:
            self._say(f"Not exported: {exc}")
            return None
        self._say(f"Exported to {written}")
        return written

    def delete_current(self) -> asyncio.Task[None] | None:
        assistant = self.current()
        if assistant is None:
            return None
        return cast("asyncio.Task[None]", self.chat.tasks.spawn(self._delete(assistant.name)))

    async def _delete(self, name: str) -> None:
        try:
            await self.assistants.remove(name)
        except ConfigError as exc:
            self._say(f"Not deleted: {exc}")
            return
        await self.load()
        self._say(f"Deleted {name}.")
