"""What answers a headless chat turn, chosen the way the window does, as a mixin of
:class:`~victor_gui.services.headless_chat.HeadlessChat` (same object, kept apart so each file
holds one responsibility): a profile (Victor's ``~/.victor/profiles.yaml`` and the app's own,
with the profile's fallback chain), a provider by any seed name or alias, an endpoint from
``settings.yaml`` (its key, secret headers and TLS trust from the keyring) or an ad-hoc URL, else
the first working server of the registry; keys are read from the keyring once, off the loop.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from victor_gui.config.profiles import Profile, ProfileSet, load_profiles
from victor_gui.config.secrets import (
    PROXY_CREDENTIALS_NAME,
    endpoint_header_name,
    endpoint_key_name,
    usable_keyring,
)
from victor_gui.config.settings import Endpoint, Settings
from victor_gui.providers import keys
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import find_spec
from victor_gui.providers.endpoint_access import join_url_userinfo
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.endpoint_providers import provider_for_endpoint
from victor_gui.services.exit_codes import UsageError
from victor_gui.services.headless_request import ChatRequest
from victor_gui.services.reply_types import ReplyEvent
from victor_gui.services.settings_service import SettingsService
from victor_gui.services.tool_approvals import ToolApprovals
from victor_gui.services.tool_types import ToolSource
from victor_gui.storage.store import ConversationStore

log = logging.getLogger(__name__)

# Issue 17: with no server at all, the way to get one from this CLI (the window offers the same).
GET_A_SERVER = ("No server yet? Get a model and run it: `victor-gui hub search qwen3` finds GGUF models "
                "with their fit on this machine, `victor-gui models download hf:AUTHOR/REPO/FILE` "
                "downloads one, `victor-gui serve PATH` runs it with llama-server; then chat again.")


@dataclass
class SessionTarget:
    """The session to run, and what must be closed after it."""

    session: ChatSession
    endpoint_name: str | None = None
    closers: list[Callable[[], Any]] = field(default_factory=list)


class _PrefetchedKeys:
    """A secret store over keyring values read once, off the event loop (the keyring is a
    blocking call; providers ask for keys while being built on the loop)."""

    def __init__(self, values: dict[str, str | None]) -> None:
        self._values = values

    def get_key(self, provider: str) -> str | None:
        return self._values.get(provider)


def _read_keyring(names: list[str]) -> tuple[dict[str, str | None], str | None]:
    """Keys for ``names`` from the OS keyring; a note instead when no keyring is usable."""
    store, note = usable_keyring()
    if store is None:  # no keyring, or a broken one: the environment variables remain
        return {}, note
    return {name: store.get_key(name) for name in names}, None


def _same_url(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        url = url.strip().rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url
    return norm(a).lower() == norm(b).lower()



class TargetChoiceMixin:
    """The target half of the headless chat; see the module doc. The attributes and the method
    declared below are the chat's (set in ``HeadlessChat.__init__``)."""

    request: ChatRequest
    warnings: list[str]
    _settings_service: SettingsService | None
    _tool_source: ToolSource | None

    def _event(self, event: ReplyEvent) -> None:
        raise NotImplementedError  # HeadlessChat's

    # -- choosing the target ----------------------------------------------------------------------

    def _session_kwargs(self) -> dict[str, Any]:
        request = self.request
        kwargs: dict[str, Any] = {"on_event": self._event}
        if self.request.tools and self._tool_source is not None:
            # No one to ask here: saved approvals run, --approve-tools runs the rest, others are
            # denied with a sentence the model reads (and a warning on stderr).
            kwargs["tools"] = self._tool_source
            kwargs["approve_tools"] = self.request.approve_tools
            if self._settings_service is not None:
                kwargs["approvals"] = ToolApprovals(self._settings_service)
        if self._settings_service is not None and self._settings_service.settings is not None:
            kwargs["attachment_settings"] = self._settings_service.settings.attachments
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if request.sampling:
            kwargs["sampling"] = dict(request.sampling)
            if request.sampling.get("context_length"):  # sizes the history as well
                kwargs["context_window"] = int(request.sampling["context_length"])
        return kwargs

    def _create(self) -> Callable[..., BaseProvider]:
        """``ProviderRegistry.create`` with ``--retries`` applied."""
        from victor_gui.providers.registry import ProviderRegistry

        retries = self.request.retries

        def create(name: str, **kwargs: Any) -> BaseProvider:
            if retries is not None:
                kwargs["max_retries"] = retries
            return ProviderRegistry.create(name, **kwargs)
        return create

    async def _install_keys(self, names: list[str]) -> None:
        values, note = await asyncio.to_thread(_read_keyring, names)
        if note:  # not a warning on every run: a server without a keyring uses the environment
            log.info("keys from environment variables only: %s", note)
        keys.set_secret_store(_PrefetchedKeys(values))

    async def _target(self, store: ConversationStore, cid: int, settings: Settings) -> SessionTarget:
        request = self.request
        chosen = [n for n, v in (("--profile", request.profile), ("--endpoint", request.endpoint),
                                 ("--provider", request.provider)) if v]
        if len(chosen) > 1:
            raise UsageError(f"Give only one of {', '.join(chosen)}.")
        if request.endpoint:
            return await self._endpoint_target(store, cid, settings, request.endpoint)
        if request.profile:
            return await self._profile_target(store, cid, request.profile)
        if request.provider:
            return await self._provider_target(store, cid, request.provider, settings)
        if settings.default_profile:
            return await self._profile_target(store, cid, settings.default_profile)
        if settings.default_provider:
            return await self._provider_target(store, cid, settings.default_provider, settings)
        found = await self._registry_target(store, cid, settings)
        if found is not None:
            return found
        raise UsageError("No local server answered. Say what should answer: --provider NAME --model M, "
                         "--profile NAME or "
                         "--endpoint NAME|URL (or set a default provider or profile in Settings). "
                         + GET_A_SERVER)

    async def _profile_target(self, store: ConversationStore, cid: int, name: str) -> SessionTarget:
        request = self.request
        found: ProfileSet = await load_profiles(request.victor_profiles, request.app_profiles)
        for error in found.errors:
            self.warnings.append(f"profiles: {error.message}")
        self.warnings.extend(found.warnings)
        profile = found.profiles.get(name)
        if profile is None:
            known = ", ".join(sorted(found.profiles)) or "none"
            problems = "".join(f" ({e.message})" for e in found.errors)
            raise UsageError(f"No profile named {name!r} (known: {known}).{problems}")
        if request.model:
            profile = profile.model_copy(update={"model": request.model})
        if not profile.model:
            raise UsageError(f"The profile {name!r} names no model; give one with --model.")
        await self._install_keys(self._profile_key_names(profile))
        session = ChatSession.from_profile(store, cid, profile, providers=found.providers,
                                           create=self._create(), **self._session_kwargs())
        return SessionTarget(session)

    @staticmethod
    def _profile_key_names(profile: Profile) -> list[str]:
        names = []
        for provider in [profile.provider, *(t.provider for t in profile.fallback)]:
            spec = find_spec(provider)
            names.append(spec.name if spec else provider)
        return names

    async def _provider_target(self, store: ConversationStore, cid: int, name: str,
                               settings: Settings) -> SessionTarget:
        spec = find_spec(name)
        await self._install_keys([spec.name if spec else name])
        model = self.request.model
        if not model and settings.default_model and settings.default_provider == name:
            model = settings.default_model
        if not model and (spec is None or not spec.is_local):
            raise UsageError(f"Name a model with --model (`victor-gui providers --provider {name}` "
                             "lists them).")
        provider = self._create()(name)
        try:
            model = model or await self._first_model(provider)
        except BaseException:
            await provider.close()
            raise
        session = ChatSession(store, cid, provider, model, **self._session_kwargs())
        return SessionTarget(session)

    async def _endpoint_target(self, store: ConversationStore, cid: int, settings: Settings,
                               wanted: str) -> SessionTarget:
        entry = self._find_endpoint(settings, wanted)
        names = [endpoint_key_name(entry.name), PROXY_CREDENTIALS_NAME,
                 *(endpoint_header_name(entry.name, h) for h in entry.secret_headers)]
        values, note = await asyncio.to_thread(_read_keyring, names)
        if note and entry.secret_headers:  # they are sent on every request: say they are missing
            self.warnings.append(f"secret headers of {entry.name} not read: {note}")
        retries = self.request.retries
        # The proxy's user:pass lives in the keyring, not in settings.yaml.
        proxy = settings.proxy and join_url_userinfo(settings.proxy, values.get(PROXY_CREDENTIALS_NAME))
        provider, client = provider_for_endpoint(
            entry, secrets=values.get, proxy=proxy, max_retries=1 if retries is None else retries)
        model = self.request.model
        try:
            if not model:
                model = await self._first_model(provider)
        except BaseException:
            await provider.close()
            await client.aclose()
            raise
        session = ChatSession(store, cid, provider, model, **self._session_kwargs())
        return SessionTarget(session, entry.name, [client.aclose])

    async def _registry_target(self, store: ConversationStore, cid: int,
                               settings: Settings) -> SessionTarget | None:
        """Nothing named what should answer: the first working server of the registry, as the
        window's picker would choose it (hand-added endpoints first, then the seed's variables
        and the default ports), after one probe cycle. None when no server answers."""
        from victor_gui.providers.http import PROBE_TIMEOUTS, make_client
        from victor_gui.services.server_registry import probe_registry_once

        service = SettingsService(self.request.settings_path)
        async with make_client(PROBE_TIMEOUTS) as client:
            members = await probe_registry_once(client, settings=service,
                                                scan_processes=self.request.scan_processes)
        working = [m for m in members if m.status is not None and m.status.state.value == "up"
                   and (m.setting is not None or find_spec(m.kind) is not None)]
        if not working:
            return None
        member = working[0]
        if member.setting is not None:
            return await self._endpoint_target(store, cid, settings, member.setting.name)
        provider = self._create()(member.kind, base_url=member.base_url)
        try:
            model = self.request.model or await self._first_model(provider)
        except BaseException:
            await provider.close()
            raise
        session = ChatSession(store, cid, provider, model, **self._session_kwargs())
        return SessionTarget(session)

    @staticmethod
    def _find_endpoint(settings: Settings, wanted: str) -> Endpoint:
        """A configured endpoint by name (any case) or URL; a URL nobody configured is taken as
        an ad-hoc OpenAI-compatible server without a key."""
        for entry in settings.endpoints:
            if entry.name == wanted or entry.name.lower() == wanted.lower():
                return entry
        if wanted.startswith(("http://", "https://")):
            for entry in settings.endpoints:
                if _same_url(entry.url, wanted):
                    return entry
            host = urlsplit(wanted).netloc or wanted
            return Endpoint(name=host, kind="openai-compatible", url=wanted)
        known = ", ".join(e.name for e in settings.endpoints) or "none"
        raise UsageError(f"No endpoint named {wanted!r} in settings (known: {known}); "
                         "give its name or an http(s):// URL.")

    @staticmethod
    async def _first_model(provider: BaseProvider) -> str:
        """The model a local server has loaded (else its first), when none was named."""
        models = await provider.list_models()
        if not models:
            raise UsageError(f"{provider.name} lists no models; name one with --model.")
        loaded = [m for m in models if m.loaded]
        return (loaded or models)[0].id
