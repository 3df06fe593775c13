"""Provider and model drop-downs with a reload button, shared by the chat pane and compare panes.

The picker loads a provider's model list in the background when the provider changes (cached per
provider; ↻ reloads), and reports what it is doing as text through :attr:`ModelPicker.status`
(the owner shows it where it likes). Failures are shown in words from
:mod:`victor_gui.ui.error_text`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from victor_gui.core.tasks import TaskSet
from victor_gui.ui.icons import set_icon

if TYPE_CHECKING:
    from PySide6.QtGui import QIcon

    from victor_gui.providers.types import ModelInfo
    from victor_gui.services.provider_choices import ProviderChoice, ProviderPool

# The folded line of default ports nothing answers on (its item data; not a provider name).
NOT_RUNNING = "__not_running__"
DOT_COLOURS = {"green": "#2e9d46", "amber": "#e0a100", "red": "#d03b3b", "grey": "#9a9a9a"}
# Words after a target's name for states a colour alone must not carry.
STATE_WORDS = {"down": "not answering", "unauthorized": "key refused", "loading": "loading a model",
               "degraded": "slow", "not-inference": "another program", "unknown": "checking…",
               "error": "unreadable replies"}
_ICONS: dict[str, QIcon] = {}


def dot_icon(colour: str) -> QIcon:
    """A filled circle of a status colour (built once per colour)."""
    icon = _ICONS.get(colour)
    if icon is None:
        # Imported here: QPainter's and QIcon's enums cost the first paint ~5 ms, and dots are
        # drawn only once the registry reports (after it).
        from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

        pixmap = QPixmap(12, 12)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QColor(DOT_COLOURS.get(colour, "#9a9a9a")).darker(130))
        painter.setBrush(QColor(DOT_COLOURS.get(colour, "#9a9a9a")))
        painter.drawEllipse(1, 1, 10, 10)
        painter.end()
        icon = _ICONS[colour] = QIcon(pixmap)
    return icon


def blank_icon() -> QIcon:
    """A transparent icon the size of a dot: cloud rows line up with the targets' names."""
    icon = _ICONS.get("")
    if icon is None:
        from PySide6.QtGui import QIcon, QPixmap

        pixmap = QPixmap(12, 12)
        pixmap.fill(Qt.GlobalColor.transparent)
        icon = _ICONS[""] = QIcon(pixmap)
    return icon


KEYLESS_HEADER = "No API key yet — add one in Settings (Ctrl+,)"


def choice_text(choice: ProviderChoice) -> str:
    """The drop-down text of a choice: a target's name, with its state in words unless up (and,
    for a group with members down, how many answer)."""
    target = choice.target
    if target is None:
        return choice.label
    word = STATE_WORDS.get(target.state.value)
    if word:
        return f"{target.name} — {word}"
    if len(target.members) > 1:
        answering = sum(m.dot in ("green", "amber") for m in target.members)
        if answering < len(target.members):
            return f"{target.name} — {answering} of {len(target.members)} answering"
    return target.name


class ModelPicker(QWidget):
    """``Provider [▾]  Model [▾] ↻`` in one row (``stacked``: the model on a second row, for a
    narrow compare pane). ``pool`` may be set later (after first paint)."""

    status = Signal(str)  # a line for the owner's status label
    models_loaded = Signal(str)  # provider name, after its model list arrived (or failed)
    models_listed = Signal(str)  # provider name, after its models filled the drop-down

    def __init__(self, pool: ProviderPool | None = None, parent: QWidget | None = None, *,
                 labels: bool = True, name_suffix: str = "", stacked: bool = False) -> None:
        super().__init__(parent)
        self.pool = pool
        self.choices: list[ProviderChoice] = []
        self.models: dict[str, list[ModelInfo]] = {}  # cache: provider name -> its models
        self.shown: list[ModelInfo] = []  # the models in the drop-down now (their load state)
        # Model lists known without asking (the registry's health statuses), tried before a request.
        self.models_source: Callable[[ProviderChoice], list[ModelInfo] | None] | None = None
        self.folded: list[ProviderChoice] = []  # default ports that are down, in the one line
        self._tasks = TaskSet("model picker")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        row = QHBoxLayout()
        outer.addLayout(row)
        self.provider_combo = QComboBox()
        self.provider_combo.setAccessibleName(f"Provider{name_suffix}")
        self.provider_combo.setAccessibleDescription("Which server or service answers")
        self.provider_combo.setToolTip("Which server or service answers")
        self.provider_combo.currentIndexChanged.connect(lambda _i: self.refresh_models())
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)  # a model can be typed when the server cannot list them
        self.model_combo.setAccessibleName(f"Model{name_suffix}")
        self.model_combo.setAccessibleDescription("The model that answers (Ctrl+K opens the list); "
                                                  "type one if the server cannot list them")
        editor = self.model_combo.lineEdit()
        assert editor is not None  # an editable combo has one
        editor.setAccessibleName(f"Model{name_suffix}")
        editor.setPlaceholderText("model")
        self.model_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.model_combo.setMinimumContentsLength(8)
        self.provider_combo.setMinimumContentsLength(6)
        self.provider_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.refresh_button = QPushButton()
        set_icon(self.refresh_button, "refresh")
        self.refresh_button.setAccessibleName(f"Reload the model list{name_suffix}")
        self.refresh_button.setFixedWidth(32)
        # Out of the Tab chain (provider → model → message → Send); F5 reloads from the keyboard.
        self.refresh_button.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.refresh_button.setToolTip("Reload the model list (F5)")
        self.refresh_button.clicked.connect(lambda: self.refresh_models(force=True))
        self.model_combo.currentIndexChanged.connect(
            lambda _i: self._say_if_not_loaded(self.model_combo.currentText()))
        if labels:
            provider_label = QLabel("Provider")
            provider_label.setBuddy(self.provider_combo)
            row.addWidget(provider_label)
        row.addWidget(self.provider_combo, 2)
        if stacked:
            row = QHBoxLayout()
            outer.addLayout(row)
        if labels:
            model_label = QLabel("Model")
            model_label.setBuddy(self.model_combo)
            row.addWidget(model_label)
        row.addWidget(self.model_combo, 3)
        row.addWidget(self.refresh_button)
        self.setTabOrder(self.provider_combo, self.model_combo)

    def install_shortcuts(self, scope: QWidget) -> None:
        """F5 reloads the model list while focus is anywhere in ``scope``. (Ctrl+K is the main
        window's: it opens the model list of the chat, or of the focused compare pane.)"""
        QShortcut(QKeySequence(Qt.Key.Key_F5), scope, lambda: self.refresh_models(force=True),
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

    # -- tasks ------------------------------------------------------------------------------------


    def cancel(self) -> None:
        """Cancel model-list loads still running (before this widget is deleted)."""
        self._tasks.cancel_all()

    async def aclose(self) -> None:
        """Cancel model-list loads still running and wait for them."""
        await self._tasks.aclose()

    # -- choices ----------------------------------------------------------------------------------

    def set_choices(self, choices: list[ProviderChoice]) -> None:
        """Fill the provider drop-down without loading any model list yet (the selection stays
        when it is still offered).

        Registry targets come first, each with its status dot (its state in words too, unless
        up); default ports nothing answers on fold into one "Not running" line; then clouds with
        a key; then, after a separator, clouds without one."""
        current = self.provider_combo.currentData()
        combo = self.provider_combo
        folded = [c for c in choices if c.target is not None and c.target.folds]
        targets = [c for c in choices if c.target is not None and not c.target.folds]
        clouds = [c for c in choices if c.target is None]
        same_rows = ([c.name for c in targets] == [c.name for c in self.choices
                                                    if c.target is not None and not c.target.folds]
                     and [c.name for c in folded] == [c.name for c in self.folded]
                     and [(c.name, c.label) for c in clouds]
                     == [(c.name, c.label) for c in self.choices if c.target is None])
        self.choices, self.folded = list(choices), folded
        if same_rows and combo.count():
            # Only states changed: repaint the dots and words in place (an open list stays open).
            for choice in targets:
                self._show_target(combo.findData(choice.name), choice)
            index = combo.findData(NOT_RUNNING)
            if index >= 0:
                combo.setItemText(index, self._folded_text())
            return
        combo.blockSignals(True)
        combo.clear()
        for choice in targets:
            combo.addItem(choice.display_name, choice.name)
            self._show_target(combo.count() - 1, choice)
        if self.folded:
            combo.addItem(dot_icon("red"), self._folded_text(), NOT_RUNNING)
            combo.setItemData(combo.count() - 1, "Nothing answers on their default ports.",
                              Qt.ItemDataRole.ToolTipRole)
        grouped = bool(targets or self.folded)  # the registry's list: sections, aligned names
        if grouped and clouds:
            combo.insertSeparator(combo.count())
        keyless_started = False
        for choice in clouds:
            if not choice.usable and not keyless_started and grouped:
                combo.insertSeparator(combo.count())
                combo.addItem(blank_icon(), KEYLESS_HEADER, None)
                self._disable_item(combo.count() - 1)
                keyless_started = True
            if grouped:
                combo.addItem(blank_icon(), choice.label, choice.name)
            else:
                combo.addItem(choice.label, choice.name)
            if not choice.usable:
                combo.setItemData(combo.count() - 1, "No API key yet: add one in Settings (Ctrl+,)",
                                  Qt.ItemDataRole.ToolTipRole)
        index = combo.findData(current) if current is not None else -1
        if index >= 0:
            combo.setCurrentIndex(index)
        combo.blockSignals(False)

    def _folded_text(self) -> str:
        return "Not running (default ports): " + ", ".join(c.display_name for c in self.folded)

    def _show_target(self, index: int, choice: ProviderChoice) -> None:
        """A target's row: its status dot, name (and state in words), and a tooltip with where
        it is and, when it does not answer, the dashboard's diagnosis."""
        target = choice.target
        if index < 0 or target is None:
            return
        combo = self.provider_combo
        combo.setItemIcon(index, dot_icon(target.dot))
        combo.setItemText(index, choice_text(choice))
        tip = f"{target.name} ({', '.join(m.key for m in target.members)})"
        if target.diagnosis:
            tip += f"\n{target.diagnosis}"
        combo.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)

    def _disable_item(self, index: int) -> None:
        """A section header: shown, not choosable."""
        from PySide6.QtGui import QStandardItemModel

        model = self.provider_combo.model()
        if isinstance(model, QStandardItemModel):
            item = model.item(index)
            if item is not None:
                item.setEnabled(False)

    def reload_providers(self, choices: list[ProviderChoice] | None = None) -> None:
        """Fill the provider drop-down with ``choices`` (default: every provider, local servers
        first; cloud ones without a key say so). No model list loads."""
        from victor_gui.services.provider_choices import provider_choices

        self.set_choices(choices if choices is not None else provider_choices())

    def current_choice(self) -> ProviderChoice | None:
        """The chosen provider or target (None for none, or for the "Not running" line)."""
        name = self.provider_combo.currentData()
        return next((c for c in self.choices if c.name == name), None)

    def current_model(self) -> str:
        return self.model_combo.currentText().strip()

    def select_provider(self, name: str, *, load: bool = True) -> None:
        """Choose provider ``name`` (its model list loads unless ``load`` is False)."""
        index = self.provider_combo.findData(name)
        if index < 0:
            return
        if load:
            self.provider_combo.setCurrentIndex(index)
            return
        was_blocked = self.provider_combo.blockSignals(True)
        self.provider_combo.setCurrentIndex(index)
        self.provider_combo.blockSignals(was_blocked)

    def select_model(self, model: str) -> None:
        """Show ``model`` (added to the list when the server did not name it)."""
        index = self.model_combo.findText(model)
        if index < 0:
            self.model_combo.addItem(model)
            index = self.model_combo.findText(model)
        self.model_combo.setCurrentIndex(index)

    def _not_loaded_text(self, model: str, lead: str = "") -> str:
        """A sentence when ``model`` is on a llama-server router and not in memory: the first
        message loads it, which can take a while (else empty)."""
        choice = self.current_choice()
        target = choice.target if choice is not None else None
        info = next((m for m in self.shown if m.id == model), None)
        if target is None or target.kind != "llamacpp" or info is None or info.loaded is not False:
            return ""
        # Said as of the choice: the status line stays after the reply, when it is loaded.
        return (f"{lead}{model} was not in memory when chosen: llama-server loads it with your "
                "first message (a large model takes a while).")

    def _say_if_not_loaded(self, model: str) -> None:
        text = self._not_loaded_text(model)
        if text:
            self.status.emit(text)

    def open_model_list(self) -> None:
        """Ctrl+K: focus the model drop-down and open its list."""
        self.model_combo.setFocus()
        self.model_combo.showPopup()

    # -- models -----------------------------------------------------------------------------------

    def refresh_models(self, *, force: bool = False) -> asyncio.Task[None]:
        """Reload the model drop-down for the chosen provider in the background."""
        return self._tasks.spawn(self.load_models(force=force))

    async def load_models(self, *, force: bool = False) -> None:
        """Fill the model drop-down for the chosen provider (cached unless ``force``)."""
        from victor_gui.errors import MissingAPIKeyError, ProviderError
        from victor_gui.providers.catalog import find_spec
        from victor_gui.providers.keys import key_hint
        from victor_gui.services.provider_choices import list_models
        from victor_gui.ui.error_text import describe_error

        choice = self.current_choice()
        if self.provider_combo.currentData() == NOT_RUNNING:
            self.model_combo.clear()
            said = [f"{c.display_name}: {c.target.diagnosis}" for c in self.folded
                    if c.target is not None and c.target.diagnosis]
            self.status.emit(" ".join(said) or "Nothing answers on the default ports.")
            self.models_loaded.emit("")
            return
        if choice is None or self.pool is None:
            return
        self.model_combo.clear()
        self.shown = []
        target = choice.target
        if target is not None and not target.working and target.diagnosis and not force:
            # A down endpoint says so at once, in the dashboard's words (↻ asks it anyway).
            self.status.emit(f"{choice.display_name} is not answering: {target.diagnosis}")
            self.models_loaded.emit(choice.name)
            return
        if not choice.usable:
            spec = find_spec(choice.name)
            self.status.emit(describe_error(MissingAPIKeyError(
                key_hint(spec) if spec else "No key", choice.name))
                + " Add one in Settings (Ctrl+,).")
            self.models_loaded.emit(choice.name)
            return
        models = None if force else self.models.get(choice.name)
        if models is None and not force and self.models_source is not None:
            models = self.models_source(choice)  # what the health monitor already saw: no request
        if models is None:
            self.status.emit(f"Asking {choice.display_name} for its models…")
            try:
                models = await list_models(self.pool, choice)
            except ProviderError as exc:
                if self.current_choice() is choice:
                    self.status.emit(f"{choice.display_name}: {describe_error(exc)}")
                    self.models_loaded.emit(choice.name)
                return
            self.models[choice.name] = models
        if self.current_choice() is not choice:  # the user moved on meanwhile
            return
        self.model_combo.blockSignals(True)  # filling the list is not the user choosing
        for model in models:
            self.model_combo.addItem(model.id)
        self.model_combo.blockSignals(False)
        self.shown = list(models)
        where = f" at {choice.base_url}" if choice.base_url and choice.is_local else ""
        self.status.emit((f"{choice.display_name}{where}: {len(models)} model(s)."
                          + self._not_loaded_text(self.model_combo.currentText(), " "))
                         if models else f"{choice.display_name} has no models yet.")
        self.models_loaded.emit(choice.name)
        self.models_listed.emit(choice.name)
