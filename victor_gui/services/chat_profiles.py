"""The chat's profile, as a mixin of :class:`~victor_gui.services.chat_controller.ChatController`
(same object; kept apart so each file holds one responsibility): Victor's and the app's profiles
loaded with their broken entries kept as rows (:class:`ProfileEntry`), the profile chosen and
remembered with the conversation (``params["profile"]``), and the picker entry it answers
through (:func:`match_choice`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from victor_gui.config.profiles import Profile, ProfileSet, load_profiles
from victor_gui.errors import StorageError
from victor_gui.providers.catalog import display_name, find_spec
from victor_gui.services.controller_events import ControllerEvent, ConversationChanged, ProfileChanged
from victor_gui.services.provider_choices import ProviderChoice
from victor_gui.storage.store import ConversationStore

_PROFILE_IN_ERROR = re.compile(r"(?:^|: )profiles\.([^.:\s]+)[.:]")


@dataclass(frozen=True)
class ProfileEntry:
    """One row of the profile picker: a usable profile, or a broken one with its problem
    (``file:line: what``) that cannot be chosen."""

    name: str
    profile: Profile | None
    problem: str | None = None  # the whole sentence: full path, line, what is wrong
    brief: str | None = None  # ``profiles.yaml:7: temperature: …``: the file's name, not its path

    @property
    def usable(self) -> bool:
        return self.profile is not None and self.problem is None

    @property
    def summary(self) -> str:
        """``provider · model`` of a usable profile."""
        if self.profile is None:
            return ""
        return " · ".join(x for x in (display_name(self.profile.provider), self.profile.model) if x)


class ProfilesMixin:
    """The profile half of the controller; see the module doc. The attributes below are the
    controller's (set in ``ChatController.__init__``)."""

    store: ConversationStore | None
    conversation_id: int | None
    profiles: ProfileSet
    profile_name: str | None

    def _emit(self, event: ControllerEvent) -> None:
        raise NotImplementedError  # ChatController's

    def _profile_params(self) -> dict[str, Any]:
        return {"profile": self.profile_name} if self.profile_name else {}

    # -- profiles ----------------------------------------------------------------------------------

    async def load_profiles(self, victor_path: Path | None = None, app_path: Path | None = None) -> None:
        """Read Victor's profiles and the app's (off the loop); broken entries are kept as
        :class:`ProfileEntry` rows with their file:line problem."""
        self.profiles = await load_profiles(victor_path, app_path)

    def profile_entries(self) -> list[ProfileEntry]:
        """Every profile by name, broken ones included (with their problem), sorted by name."""
        rows: dict[str, ProfileEntry] = {n: ProfileEntry(n, p) for n, p in self.profiles.profiles.items()}
        for error in self.profiles.errors:
            text = str(error)
            match = _PROFILE_IN_ERROR.search(text)
            name = match.group(1) if match else Path(error.path or "profiles.yaml").name
            if name in rows and rows[name].problem is None and rows[name].profile is not None:
                # The app's file replaced a broken one of Victor's (or the reverse): say so, keep it.
                continue
            reason = text.split(": ", 1)[1] if error.path and ": " in text else text
            reason = reason.removeprefix(f"profiles.{name}.").removeprefix(f"profiles.{name}")
            where = Path(error.path).name if error.path else "profiles.yaml"
            where += f":{error.line}" if error.line else ""
            rows[name] = ProfileEntry(name, None, text, f"{where}: {reason}")
        return [rows[n] for n in sorted(rows, key=str.lower)]

    def profile(self) -> Profile | None:
        """The chat's profile (None: none, or one that is no longer loaded)."""
        return self.profiles.profiles.get(self.profile_name) if self.profile_name else None

    async def choose_profile(self, name: str | None) -> None:
        """Bind the chat to profile ``name`` (None: no profile) from the next reply on, and
        remember it with the conversation. A broken or unknown profile is refused."""
        if name is not None and name not in self.profiles.profiles:
            raise StorageError(f"There is no usable profile named {name!r}.")
        self._set_profile(name)
        if self.conversation_id is not None and self.store is not None:
            conv = await self.store.get_conversation(self.conversation_id)
            params = dict(conv.params or {}) if conv is not None else {}
            params.pop("profile", None)
            params.update(self._profile_params())
            await self.store.update_conversation(self.conversation_id, params=params)
            self._emit(ConversationChanged(self.conversation_id))

    def _set_profile(self, name: str | None) -> None:
        if name == self.profile_name:
            return
        self.profile_name = name
        self._emit(ProfileChanged(name))

    def profile_choice(self, choices: Sequence[ProviderChoice]) -> ProviderChoice | None:
        """The picker entry the chat's profile answers through: a registry target or hand-added
        endpoint of that name (any case), else the catalog provider of that name."""
        profile = self.profile()
        if profile is None:
            return None
        return match_choice(profile.provider, choices)


def match_choice(name: str, choices: Sequence[ProviderChoice]) -> ProviderChoice | None:
    """The picker entry named ``name``: a target or endpoint by its name (any case), else the
    catalog provider (its id or an alias)."""
    wanted = name.strip().lower()
    for choice in choices:
        if choice.display_name.lower() == wanted or choice.name.lower() == wanted:
            return choice
    spec = find_spec(name)
    if spec is not None:
        for choice in choices:
            if choice.name == spec.name or (choice.target is not None and choice.target.kind == spec.name
                                            and choice.target.origin != "settings"):
                return choice
    return None
