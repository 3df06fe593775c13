# mypy: disable-error-code="attr-defined,no-any-return"
"""The part of the chat pane that chooses what answers: the provider, model and profile
drop-downs and what a change of choice does.

The drop-downs themselves are a :class:`~victor_gui.ui.model_picker.ModelPicker` (shared with
the compare panes), and the registry's targets and the profiles are a
:class:`~victor_gui.ui.chat_choices.ChatChoices`, built on first use after the first paint; this
part holds the pane's side: the pool, the start (registry or probe), a switch once the new
provider's models are listed, and why Send cannot go yet.

A mixin of :class:`~victor_gui.ui.chat_pane.ChatPane` (same object), like
:mod:`~victor_gui.ui.chat_stored`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    # The provider stack is imported after the first paint (see victor_gui.ui.app).
    from victor_gui.services.provider_choices import ProviderChoice, ProviderPool
    from victor_gui.services.server_registry import ServerRegistry
    from victor_gui.ui.chat_choices import ChatChoices, ChoosingPane


class ChoosingMixin:
    """The provider, model and profile choosing of the chat pane; see the module doc. Mixed into
    ChatPane, whose widgets and methods it uses (mypy is told not to look for them here)."""

    _choices_helper: ChatChoices | None
    _switch_pending: bool
    _user_chose: bool
    _pending_model: str | None = None  # AttachMixin's: a model chosen from its message

    @property
    def pool(self) -> ProviderPool | None:
        """The provider pool (the app sets it after the first paint); the picker holds it."""
        return self.picker.pool

    @pool.setter
    def pool(self, pool: ProviderPool | None) -> None:
        self.picker.pool = pool

    @property
    def _choices(self) -> list[ProviderChoice]:
        return self.picker.choices

    def reload_providers(self, choices: list[ProviderChoice] | None = None) -> None:
        """Fill the provider drop-down (local servers first; cloud ones without a key say so)."""
        self.picker.reload_providers(choices)

    async def reload_providers_keeping_choice(self) -> None:
        """Re-read which providers have keys (the keyring was installed, a key was saved) and
        keep the selection. Keyring reads can be slow (D-Bus), so they run in a thread."""
        from victor_gui.services.provider_choices import provider_choices

        choices = await asyncio.to_thread(provider_choices)
        if self.registry is not None:
            self._clouds = [c for c in choices if not c.is_local]
            self._targets_changed()
            return
        current = self.current_choice()
        name = current.name if current is not None else None
        model = self.model_combo.currentText()
        self.reload_providers(choices)
        if name is not None:
            self.provider_combo.blockSignals(True)
            self.select_provider(name)
            self.provider_combo.blockSignals(False)
            self.model_combo.setEditText(model)

    def current_choice(self) -> ProviderChoice | None:
        return self.picker.current_choice()

    def select_provider(self, name: str) -> None:
        self.picker.select_provider(name)

    def start(self, registry: ServerRegistry | None = None) -> asyncio.Task[None]:
        """Fill the provider drop-down and pick the first local server that answers.

        With ``registry`` (the app): its targets, their states and model lists, followed live;
        nothing is probed here (the registry's health monitor probes each endpoint once per
        cycle). Without: the catalog's providers, and ``probe_local`` asks each local server.
        Called once after the first paint (with ``pool`` holding the shared HTTP client)."""
        from victor_gui.services.provider_choices import ProviderPool

        if self.pool is None:
            self.pool = ProviderPool()
        self.profiles_loading = self.tasks.spawn(self.load_profiles())
        if registry is not None:
            return self.tasks.spawn(self.use_registry(registry))
        self.reload_providers()
        return self.tasks.spawn(self._probe())

    @property
    def choices(self) -> ChatChoices:
        """The pane's provider and profile choosing (registry targets, profiles): built on first
        use, after the first paint, so its code is not imported before the window shows."""
        if self._choices_helper is None:
            from victor_gui.ui.chat_choices import ChatChoices

            self._choices_helper = ChatChoices(cast("ChoosingPane", self))
        return self._choices_helper

    async def use_registry(self, registry: ServerRegistry) -> None:
        """Offer the registry's chat targets, live (see :class:`~victor_gui.ui.chat_choices.ChatChoices`)."""
        await self.choices.use_registry(registry)

    def registry_choices(self) -> list[ProviderChoice]:
        """The registry's targets, then clouds with a key, then clouds without one."""
        return self.choices.registry_choices()

    def _targets_changed(self) -> None:
        self.choices._targets_changed()

    async def load_profiles(self) -> None:
        """Read the profiles files (off the loop) and list them in the profile drop-down."""
        await self.choices.load_profiles()

    def _profile_activated(self, index: int) -> None:
        self.choices._profile_activated(index)

    def _leave_profile(self) -> None:
        if self._choices_helper is not None:
            self._choices_helper._leave_profile()

    def _show_profile_choice(self) -> None:
        self.choices._show_profile_choice()

    async def _probe(self) -> None:
        await self.choices._probe()

    def _model_activated(self, _index: int) -> None:
        self._leave_profile()
        self._choice_changed()

    def _provider_activated(self, _index: int) -> None:
        self._user_chose = True
        self._leave_profile()

    def _provider_changed(self, _index: int) -> None:
        self._switch_pending = True  # switch once the new provider's models are listed
        if self._draft is not None:  # the chips' image estimates follow the provider's protocol
            self._draft.set_protocol(self._protocol())

    def refresh_models(self, *, force: bool = False) -> asyncio.Task[None]:
        """Reload the model drop-down for the chosen provider in the background."""
        return self.picker.refresh_models(force=force)

    def _models_listed(self, _name: str) -> None:
        if self._pending_model:  # a model chosen from the "does not take images" message
            self.model_combo.setEditText(self._pending_model)
            self._pending_model = None
        if self._switch_pending:
            self._choice_changed()

    def _choice_changed(self) -> None:
        """The user picked another provider or model: a chat with history switches now."""
        self._switch_pending = False
        if self.session is not None and not self.running and self.model_combo.currentText().strip():
            self.tasks.spawn(self._ensure_session(""))

    def _missing_choice_text(self) -> str:
        """Why Send cannot go yet: a keyless cloud provider names the variable it reads."""
        choice = self.current_choice()
        if choice is not None and not choice.usable:
            from victor_gui.providers.catalog import find_spec
            from victor_gui.ui.error_text import missing_key_sentence

            spec = find_spec(choice.name)
            return missing_key_sentence(choice.display_name, spec.key_env_vars if spec else ())
        return "Choose a provider and a model first."
