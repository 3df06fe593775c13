"""Slash commands in the chat input: a completion list as you type, and running each command
through the same paths as the drop-downs (``/model`` picks in the model drop-down and switches
as a pick there does). Parsing lives in :mod:`victor_gui.services.slash_commands`.

Enter on a command line runs it (or, while a partial name is typed, completes it); Tab
completes; Up/Down move in the list; Esc closes it. An unknown or malformed command says so in
the hint line under the list and the text stays in the input.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QPlainTextEdit, QVBoxLayout, QWidget

from victor_gui.services.slash_commands import (
    SlashCommand,
    SlashProblem,
    completions,
    help_text,
    is_command,
    parse,
    usage_lines,
)
from victor_gui.ui.widgets.wrap_label import WrapLabel

if TYPE_CHECKING:
    from PySide6.QtWidgets import QListWidget, QListWidgetItem


class SlashCommands(QObject):
    """The chat pane's slash commands: ``panel`` (completion list + hint) goes above the input."""

    def __init__(self, pane: QWidget) -> None:
        super().__init__(pane)
        # The ChatPane (typed loosely: importing chat_pane here would make an import cycle).
        self.pane: Any = cast(Any, pane)
        self.panel = QWidget()
        self.panel.setObjectName("slashPanel")
        self._box = QVBoxLayout(self.panel)
        self._box.setContentsMargins(0, 0, 0, 0)
        # The completion list is made when the first text is typed (see ``popup``): a list
        # widget's classes and enums cost the first paint ~5 % of its instructions, for a list
        # nobody has seen yet.
        self._popup: QListWidget | None = None
        self.hint = WrapLabel("")
        self.hint.setObjectName("slashHint")
        self.hint.setAccessibleName("Command result")
        self.hint.hide()
        self._box.addWidget(self.hint)
        self.editor: QPlainTextEdit = self.pane.input
        self.editor.textChanged.connect(self._text_changed)
        # The key filter (below) acts only on typed text, so it is installed with the first text:
        # before the first paint, its first event would build PySide's ~50 event classes.
        self._filtering = False

    @property
    def popup(self) -> QListWidget:
        """The completion list (hidden until something matches), made on first use."""
        if self._popup is None:
            from PySide6.QtWidgets import QListWidget

            popup = QListWidget()
            popup.setObjectName("slashCompletions")
            popup.setAccessibleName("Slash commands")
            popup.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing stays in the input
            popup.itemClicked.connect(self._complete_item)
            popup.hide()
            self._box.insertWidget(0, popup)
            self._popup = popup
        return self._popup

    # -- completion -------------------------------------------------------------------------------

    def _text_changed(self) -> None:
        if not self._filtering:
            self._filtering = True
            self.editor.installEventFilter(self)
        text = self.pane.input.toPlainText()
        found: list[tuple[str, str]] = []  # (what the list shows, what the input becomes)
        if "\n" not in text:
            found = [(f"{c.usage}  —  {c.summary}", f"/{c.name} ") for c in completions(text)]
            found = found or self._argument_items(text)
        self.popup.clear()
        from PySide6.QtWidgets import QListWidgetItem

        for label, replacement in found:
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, replacement)
            self.popup.addItem(item)
        if found:
            self.popup.setCurrentRow(0)
            rows = min(len(found), 8)
            self.popup.setFixedHeight(rows * max(18, self.popup.sizeHintForRow(0)) + 6)
        self.popup.setVisible(bool(found))
        if not is_command(text):
            self.hint.hide()

    def _argument_items(self, text: str) -> list[tuple[str, str]]:
        """``/provider …``, ``/model …`` and ``/profile …``: what the drop-downs offer."""
        stripped = text.lstrip()
        combo = self.pane.profile_combo
        offers: dict[str, list[tuple[str, str]]] = {
            "provider": [(c.name, f"{c.name}  —  {c.display_name}") for c in self.pane._choices],
            "model": [(self.pane.model_combo.itemText(i), self.pane.model_combo.itemText(i))
                      for i in range(self.pane.model_combo.count())],
            "profile": [(str(combo.itemData(i)), combo.itemText(i)) for i in range(combo.count())
                        if combo.itemData(i)],
        }
        for name, values in offers.items():
            prefix = f"/{name} "
            if not stripped.lower().startswith(prefix) or " " in stripped[len(prefix):]:
                continue
            typed = stripped[len(prefix):].lower()
            return [(label, prefix + value) for value, label in values
                    if value.lower().startswith(typed) and value.lower() != typed][:50]
        return []

    def _complete_item(self, item: QListWidgetItem | None = None) -> None:
        item = item or self.popup.currentItem()
        if item is None:
            return
        self.pane.input.setPlainText(str(item.data(Qt.ItemDataRole.UserRole)))
        cursor = self.pane.input.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        self.pane.input.setTextCursor(cursor)
        self.pane.input.setFocus()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is not self.editor:
            return False
        from PySide6.QtGui import QKeyEvent

        if event.type() == QEvent.Type.ShortcutOverride:
            # Esc is the pane's shortcut (stop, leave an edit); with the list open it closes
            # the list first: taking the override delivers the key press here instead.
            assert isinstance(event, QKeyEvent)
            if event.key() == Qt.Key.Key_Escape and self.popup.isVisible():
                event.accept()
                return True
            return False
        if event.type() != QEvent.Type.KeyPress:
            return False
        assert isinstance(event, QKeyEvent)
        key = event.key()
        text = self.editor.toPlainText()
        popup_open = self.popup.isVisible() and self.popup.count() > 0
        if popup_open and key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            step = -1 if key == Qt.Key.Key_Up else 1
            self.popup.setCurrentRow((self.popup.currentRow() + step) % self.popup.count())
            return True
        if popup_open and key == Qt.Key.Key_Tab:
            self._complete_item()
            return True
        if popup_open and key == Qt.Key.Key_Escape:
            self.popup.hide()
            return True
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and is_command(text) and "\n" not in text.strip():
            if popup_open and not self._exact(text):
                self._complete_item()  # a partial name: Enter completes it first
                return True
            self.intercept(text)
            return True
        return False

    def _exact(self, text: str) -> bool:
        """Whether ``text`` already is one of the list's completions (Enter then runs it)."""
        typed = text.strip().lower()
        return any(str(self.popup.item(i).data(Qt.ItemDataRole.UserRole)).strip().lower() == typed
                   for i in range(self.popup.count()))

    # -- running ----------------------------------------------------------------------------------

    def intercept(self, text: str) -> bool:
        """Run ``text`` when it is a command line (True); False: it is a message to send."""
        if not is_command(text):
            return False
        parsed = parse(text)
        if isinstance(parsed, SlashProblem):
            self.say(parsed.message)  # the text stays in the input to fix
            return True
        self.popup.hide()
        self.pane.tasks.spawn(self.run(parsed))
        return True

    def say(self, text: str) -> None:
        """Show a command's answer (or problem) in the hint line under the completion list."""
        self.hint.setText(text)
        self.hint.setVisible(bool(text))

    async def run(self, command: SlashCommand) -> None:
        """Run one parsed command; on success the input is cleared."""
        handler = getattr(self, f"_run_{command.name}")
        done = await handler(command)
        if done:
            self.pane.input.clear()

    async def _run_model(self, command: SlashCommand) -> bool:
        if self.pane.running:
            self.say("Wait for the reply to finish (or press Esc) before switching.")
            return False
        self.pane.picker.select_model(command.arg)
        self.pane._model_activated(self.pane.model_combo.currentIndex())  # as a pick in the drop-down
        self.say(f"Model: {command.arg}")
        return True

    async def _run_provider(self, command: SlashCommand) -> bool:
        if self.pane.running:
            self.say("Wait for the reply to finish (or press Esc) before switching.")
            return False
        problem = await self.switch_to(command.arg, command.options.get("model"))
        self.say(problem or f"Provider: {self.pane.current_choice().display_name} · "
                            f"{self.pane.model_combo.currentText() or '?'}")
        return problem is None

    async def switch_to(self, provider: str, model: str | None = None) -> str | None:
        """Choose ``provider`` (a target, endpoint or catalog name) and ``model`` the way picks in
        the drop-downs do (the profile is left, a chat with history switches and notes it).
        Returns what went wrong, in words, or None."""
        from victor_gui.services.chat_controller import match_choice

        choices = self.pane._choices
        choice = match_choice(provider, choices)
        if choice is None:
            known = ", ".join(c.display_name for c in choices)
            return f"No provider named {provider}. Known: {known}."
        self.pane._provider_activated(self.pane.provider_combo.findData(choice.name))
        if self.pane.current_choice() is not choice or not self.pane.model_combo.count():
            self.pane.picker.select_provider(choice.name, load=False)
            await self.pane.picker.load_models(force=False)
        if model:
            self.pane.picker.select_model(model)
        self.pane._choice_changed()
        return None

    async def _run_profile(self, command: SlashCommand) -> bool:
        combo = self.pane.profile_combo
        if command.arg.lower() in ("none", "off", "-"):
            index = 0
        else:
            index = combo.findData(command.arg)
            if index < 0:
                names = [combo.itemData(i) for i in range(combo.count()) if combo.itemData(i)]
                self.say(f"No usable profile named {command.arg}."
                         + (f" Profiles: {', '.join(names)}." if names else " There are no profiles."))
                return False
        combo.setCurrentIndex(index)
        self.pane._profile_activated(index)
        self.say(f"Profile: {command.arg}" if index else "No profile")
        return True

    async def _run_system(self, command: SlashCommand) -> bool:
        params = await self._conversation_params()
        await self.pane.apply_params(command.arg, params)
        self.say("System prompt set." if command.arg else "System prompt cleared.")
        return True

    async def _conversation_params(self) -> dict[str, Any]:
        store, cid = self.pane.store, self.pane.conversation_id
        if store is None or cid is None:
            return {}
        conv = await store.get_conversation(cid)
        return dict(conv.params or {}) if conv is not None else {}

    async def _run_usage(self, command: SlashCommand) -> bool:
        import datetime as dt

        from victor_gui.services.usage import usage_summary

        store = self.pane.store
        if store is None:
            self.say("Your conversations are still opening; try again in a moment.")
            return False
        today = dt.date.today()
        cid = self.pane.conversation_id
        chat = await usage_summary(store, conversation_id=cid, group_by="all") if cid is not None else []
        day = await usage_summary(store, since=today, group_by="all")
        by_provider = await usage_summary(store, since=today, group_by="provider")
        text = usage_lines(chat[0] if chat else None, day[0] if day else None, by_provider, today)
        self.pane.transcript.add_note(text)
        self.say(text)
        return True

    async def _run_clear(self, command: SlashCommand) -> bool:
        self.pane.new_chat()
        self.say("New chat (the previous one stays in the list).")
        return True

    async def _run_export(self, command: SlashCommand) -> bool:
        import asyncio

        from victor_gui.storage.export import export_json, export_markdown

        store, cid = self.pane.store, self.pane.conversation_id
        if store is None or cid is None:
            self.say("Nothing to export yet: this chat has no messages.")
            return False
        fmt = command.options.get("format", "md")
        if not command.arg:
            conversations = getattr(self.pane.window(), "conversations", None)
            if conversations is None:
                self.say("Usage: /export [md|json] PATH")
                return False
            conversations.ask_export(cid, fmt)
            return True
        path = await asyncio.to_thread(lambda: Path(command.arg).expanduser())  # reads $HOME
        text = await (export_markdown if fmt == "md" else export_json)(store, [cid])
        try:
            await asyncio.to_thread(path.write_text, text, encoding="utf-8")
        except OSError as exc:
            self.say(f"Could not write {path}: {exc.strerror or exc}")
            return False
        self.say(f"Exported to {path}")
        return True

    async def _run_help(self, command: SlashCommand) -> bool:
        self.say(help_text())
        return True
