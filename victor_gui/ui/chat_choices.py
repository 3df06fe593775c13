"""How the chat pane chooses what answers: the server registry's targets followed live (status
dots, auto-pick of the first working one, the "nothing answered" sentence), the catalog's
providers probed once where there is no registry (tools and tests), and the profile drop-down
(Victor's profiles.yaml and the app's own: a profile sets provider, model, parameters and the
fallback chain; broken ones are listed with their file:line problem and cannot be picked).

Split from :mod:`victor_gui.ui.chat_pane` by responsibility, and built after the first paint
(the pane makes it on first use), so none of this is compiled or imported before the window
shows. State that the pane's other parts read (``registry``, ``_clouds``, ``_user_chose``) stays
on the pane; this class holds behaviour only.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import Qt, SignalInstance
from PySide6.QtWidgets import QComboBox

if TYPE_CHECKING:
    from victor_gui.core.tasks import TaskSet
    from victor_gui.providers.types import ModelInfo
    from victor_gui.services.chat_controller import ChatController
    from victor_gui.services.provider_choices import ProviderChoice, ProviderPool
    from victor_gui.services.server_registry import ServerRegistry
    from victor_gui.ui.model_picker import ModelPicker
    from victor_gui.ui.transcript import Transcript
    from victor_gui.ui.widgets.wrap_label import WrapLabel


class ChoosingPane(Protocol):
    """What this class uses of its chat pane (declared here, so this module does not import the
    pane, which imports it: no import cycle)."""

    registry: ServerRegistry | None
    _clouds: list[ProviderChoice]
    _user_chose: bool
    _switch_pending: bool
    _unsubscribe_registry: Any
    _controller: ChatController | None

    @property
    def picker(self) -> ModelPicker: ...
    @property
    def profile_combo(self) -> QComboBox: ...
    @property
    def provider_combo(self) -> QComboBox: ...
    @property
    def model_combo(self) -> QComboBox: ...
    @property
    def status_label(self) -> WrapLabel: ...
    @property
    def transcript(self) -> Transcript: ...
    @property
    def tasks(self) -> TaskSet: ...
    @property
    def profile_files(self) -> tuple[Path | None, Path | None]: ...

    @property
    def models_loaded(self) -> SignalInstance: ...
    @property
    def controller(self) -> ChatController: ...
    @property
    def pool(self) -> ProviderPool | None: ...
    @property
    def running(self) -> bool: ...
    @property
    def _choices(self) -> list[ProviderChoice]: ...
    def current_choice(self) -> ProviderChoice | None: ...
    def select_provider(self, name: str) -> None: ...


class ChatChoices:
    """The choosing behaviour of one :class:`~victor_gui.ui.chat_pane.ChatPane`."""

    def __init__(self, pane: ChoosingPane) -> None:
        self.pane = pane

    async def use_registry(self, registry: ServerRegistry) -> None:
        """Offer the registry's chat targets (then clouds with a key, then without), keep their
        status dots live from its change events, and take model lists from its statuses."""
        from victor_gui.services.provider_choices import provider_choices

        self.pane.registry = registry
        self.pane.picker.models_source = self._known_models
        self.pane._unsubscribe_registry = registry.subscribe(self._registry_event)
        self.pane.status_label.setText("Looking for local servers…")
        self._targets_changed()
        choices = await asyncio.to_thread(provider_choices)  # keyring reads may be slow
        self.pane._clouds = [c for c in choices if not c.is_local]
        self._targets_changed()

    def _known_models(self, choice: ProviderChoice) -> list[ModelInfo] | None:
        if self.pane.registry is None or choice.target is None:
            return None
        return self.pane.registry.models_of(choice.target)

    def _registry_event(self, event: str, _payload: Any) -> None:
        if event == "targets":
            self._targets_changed()

    def registry_choices(self) -> list[ProviderChoice]:
        """The registry's targets, then clouds with a key, then clouds without one."""
        from victor_gui.services.provider_choices import target_choice

        assert self.pane.registry is not None
        clouds = [c for c in self.pane._clouds if c.usable] + [c for c in self.pane._clouds if not c.usable]
        return [target_choice(t) for t in self.pane.registry.targets()] + clouds

    def _targets_changed(self) -> None:
        """Re-render the drop-down from the registry (dots, names); auto-pick the first working
        target until the user chose one; say so when nothing local answers."""
        from victor_gui.ui.error_text import NO_LOCAL_SERVER

        if self.pane.registry is None:
            return
        before = self.pane.current_choice()
        choices = self.registry_choices()
        self.pane.picker.set_choices(choices)
        current = self.pane.current_choice()
        working = [c for c in choices if c.target is not None and c.target.working]
        settled = all(c.target.state.value != "unknown" for c in choices if c.target is not None)
        # Until the user picks, and while no conversation is bound, the first working target in
        # the picker's order answers (hand-added first), whichever server happened to answer its
        # probe first; once a chat is under way it stays where it is.
        controller = self.pane._controller
        unbound = controller is None or controller.session is None
        if not self.pane._user_chose and working and (
                current is None or current.target is None or not current.target.working
                or (unbound and current.name != working[0].name)):
            self.pane.provider_combo.blockSignals(True)
            self.pane.select_provider(working[0].name)
            self.pane.provider_combo.blockSignals(False)
            self.pane.transcript.set_empty_text(
                "Ask anything. Ctrl+Enter sends, Esc stops, Ctrl+N starts a new chat.")
            self.pane.picker.refresh_models()
        elif current is not None and before is not None and current.name == before.name \
                and current.target is not None and before.target is not None \
                and current.target.working != before.target.working and not self.pane.model_combo.count():
            self.pane.picker.refresh_models()  # the chosen server came up (or went): its list changed
        elif not working and settled and not self.pane._user_chose:
            keyed = [c for c in self.pane._clouds if c.has_key]
            hint = f" Providers with a key: {', '.join(c.display_name for c in keyed)}." if keyed else ""
            self.pane.status_label.setText(NO_LOCAL_SERVER + hint)
            self.pane.transcript.set_empty_text(NO_LOCAL_SERVER + hint)
            self.pane.models_loaded.emit("")

    # -- profiles ----------------------------------------------------------------------------------

    async def load_profiles(self) -> None:
        """Read the profiles files (off the loop) and list them: "No profile" first, broken
        entries greyed with their file:line problem in words and as a tooltip."""
        import asyncio
        import importlib

        # The controller's module imports the provider stack (pydantic models, httpx): imported
        # in a worker thread, not on the loop, when nothing imported it yet (200-400 ms measured
        # when the chat starts before the app's post-paint warm-up finished).
        await asyncio.to_thread(importlib.import_module, "victor_gui.services.chat_controller")
        await self.pane.controller.load_profiles(*self.pane.profile_files)
        self._fill_profiles()
        self._show_profile_choice()

    def _fill_profiles(self) -> None:
        from PySide6.QtGui import QStandardItemModel

        combo = self.pane.profile_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("No profile", None)
        combo.setItemData(0, "Answer with the provider and model chosen beside", Qt.ItemDataRole.ToolTipRole)
        model = combo.model()
        for entry in self.pane.controller.profile_entries():
            if entry.usable:
                combo.addItem(f"{entry.name} — {entry.summary}", entry.name)
                described = entry.profile is not None and entry.profile.description
                tip = entry.profile.description if described and entry.profile else entry.summary
                combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
                continue
            combo.addItem(f"{entry.name} — cannot be used: {entry.brief}", None)
            row = combo.count() - 1
            combo.setItemData(row, entry.problem, Qt.ItemDataRole.ToolTipRole)
            combo.setItemData(row, f"Profile {entry.name} cannot be used: {entry.problem}",
                              Qt.ItemDataRole.AccessibleTextRole)
            if isinstance(model, QStandardItemModel):
                item = model.item(row)
                if item is not None:
                    item.setEnabled(False)  # greyed, and neither a click nor the keys pick it
        combo.blockSignals(False)
        view = combo.view()
        # The closed box shows names only; the open list is wide enough for every whole line.
        view.setMinimumWidth(view.sizeHintForColumn(0) + 2 * view.frameWidth() + 8)

    def _profile_activated(self, index: int) -> None:
        name = self.pane.profile_combo.itemData(index)
        if not isinstance(name, str):
            name = None
        if name is not None and self.pane.running:
            self._show_profile_choice()  # not in the middle of a reply
            return
        self.pane._user_chose = True
        self.pane.tasks.spawn(self._choose_profile(name))

    async def _choose_profile(self, name: str | None) -> None:
        from victor_gui.errors import StorageError

        try:
            await self.pane.controller.choose_profile(name)
        except StorageError as exc:
            self.pane.status_label.setText(str(exc))
            self._show_profile_choice()

    def _leave_profile(self) -> None:
        """The user picked a provider or model by hand: the chat's profile no longer applies."""
        if self.pane._controller is not None and self.pane._controller.profile_name is not None:
            self.pane.tasks.spawn(self._choose_profile(None))

    def _show_profile_choice(self) -> None:
        """Show the chat's profile in its drop-down, and its provider and model beside it."""
        controller = self.pane.controller
        index = self.pane.profile_combo.findData(controller.profile_name) if controller.profile_name else 0
        self.pane.profile_combo.blockSignals(True)
        self.pane.profile_combo.setCurrentIndex(max(index, 0))
        self.pane.profile_combo.blockSignals(False)
        profile = controller.profile()
        if profile is None:
            return
        choice = controller.profile_choice(self.pane._choices)
        self.pane.provider_combo.blockSignals(True)
        if choice is not None:
            self.pane.select_provider(choice.name)
        self.pane.provider_combo.blockSignals(False)
        self.pane.model_combo.blockSignals(True)
        self.pane.model_combo.setEditText(profile.model or "")
        self.pane.model_combo.blockSignals(False)
        self.pane._switch_pending = False
        where = choice.display_name if choice is not None else profile.provider
        self.pane.status_label.setText(f"Profile {controller.profile_name}: {where} · {profile.model or '?'}"
                                  + (f", then {len(profile.fallback)} fallback" if profile.fallback else ""))

    async def _probe(self) -> None:
        from victor_gui.services.provider_choices import probe_local
        from victor_gui.ui.error_text import NO_LOCAL_SERVER

        assert self.pane.pool is not None
        self.pane.status_label.setText("Looking for local servers…")
        results = await probe_local(self.pane.pool, self.pane._choices)
        answered = [name for name, r in results.items() if isinstance(r, list)]
        for name in answered:
            self.pane.picker.models[name] = results[name]  # type: ignore[assignment]
        if answered:
            self.pane.transcript.set_empty_text(
                "Ask anything. Ctrl+Enter sends, Esc stops, Ctrl+N starts a new chat.")
            self.pane.provider_combo.blockSignals(True)
            self.pane.select_provider(answered[0])
            self.pane.provider_combo.blockSignals(False)
            await self.pane.picker.load_models(force=False)
            return
        keyed = [c for c in self.pane._choices if not c.is_local and c.has_key]
        hint = f" Providers with a key: {', '.join(c.display_name for c in keyed)}." if keyed else ""
        self.pane.status_label.setText(NO_LOCAL_SERVER + hint)
        self.pane.transcript.set_empty_text(NO_LOCAL_SERVER + hint)
        self.pane.model_combo.clear()
        self.pane.models_loaded.emit("")
