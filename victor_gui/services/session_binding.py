"""The chat's :class:`~victor_gui.services.chat_session.ChatSession`, as a mixin of
:class:`~victor_gui.services.chat_controller.ChatController`: made on first use (plainly, or
with :meth:`ChatSession.from_profile` for a profile's catalog provider), switched with
:meth:`ChatSession.switch` when the choice or the profile changes, with the chat's stored
parameters, the tools, the attachment settings and the fallback chain handed to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from victor_gui.config.profiles import Profile
from victor_gui.config.settings import AttachmentSettings
from victor_gui.errors import ProviderUnavailableError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import find_spec
from victor_gui.providers.params import clean_params
from victor_gui.services.chat_profiles import ProfilesMixin, match_choice
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.fallback import Candidate, chain_from_profile, provider_options
from victor_gui.services.provider_choices import ProviderChoice, ProviderPool
from victor_gui.services.reply_types import ReplyEvent
from victor_gui.services.tool_approvals import ToolApprovals
from victor_gui.services.tool_types import Asker, ToolSource
from victor_gui.storage.store import ConversationStore

# A profile's provider, fallback chain, label for notes, and whether the session owns the provider.
_Target = tuple[BaseProvider, list[Candidate], str | None, bool]


class SessionBindingMixin(ProfilesMixin):
    """The session half of the controller; see the module doc. The attributes and methods
    declared below are the controller's (set in ``ChatController.__init__``)."""

    create: Callable[..., BaseProvider]
    session: ChatSession | None
    bound: tuple[str, str] | None
    session_target: str | None
    _owned: bool
    tools: ToolSource | None
    asker: Asker | None
    approvals: ToolApprovals | None
    attachment_settings: Callable[[], AttachmentSettings | None] | None

    def _store(self) -> ConversationStore:
        raise NotImplementedError  # ChatController's

    async def _ensure_conversation(self, first_text: str) -> int:
        raise NotImplementedError  # ChatController's

    async def _conversation_params(self) -> dict[str, Any]:
        raise NotImplementedError  # ChatController's

    # -- the session -------------------------------------------------------------------------------

    async def bind(self, choice: ProviderChoice | None, model: str, *, pool: ProviderPool,
                   choices: Sequence[ProviderChoice], first_text: str = "",
                   on_event: Callable[[ReplyEvent], None] | None = None) -> ChatSession:
        """The session for the chat, created (with its conversation) on first use and switched
        when the choice differs from what it serves: the profile's when one is chosen, else
        ``choice``/``model``. Raises ProviderError (shown in words by the view)."""
        forward = on_event or self._emit
        if self.profile() is not None:
            return await self._bind_profile(pool, choices, first_text, forward)
        if choice is None or not model:
            raise ProviderUnavailableError("Choose a provider and a model first.", "")
        store = self._store()
        await pool.prepare(choice)  # keyring reads off the loop
        provider = pool.get(choice)
        label = label_for(choice, provider)
        fallback = pool.fallback(choice, model)
        cid = await self._ensure_conversation(first_text)
        if self.session is None:
            params = params_from(await self._conversation_params())
            start = next((c for c in choices if self.bound and c.name == self.bound[0]), None)
            first, first_model = ((pool.get(start), self.bound[1]) if start and self.bound
                                  else (provider, model))
            first_label = label if first is provider else (start.display_name if start else None)
            self.session = ChatSession(store, cid, first, first_model, on_event=forward, label=first_label,
                                       fallback=fallback if first is provider else (), **params,
                                       **self._tool_kwargs())
            self.session_target = start.name if start else choice.name
        session = self.session
        if (session.provider is not provider and self.session_target == choice.name
                and choice.target is not None and session.model == model):
            # Another endpoint of the same target answers first now: no switch to note.
            session.provider, session.endpoint, session.label = provider, provider.base_url, label
        if session.provider is not provider or session.model != model:
            old, owned = session.provider, self._owned
            await session.switch(provider, model, context_window=session.context_window,
                                 fallback=fallback, label=label)
            self._owned = False
            self.session_target = choice.name
            if old is not provider and not owned:
                pool.forget(old.name)  # the session closed it; the pool builds a new one
            if owned:
                self._restore_params(session, await self._conversation_params())
        session.fallback = fallback
        session.image_alternatives = _image_alternatives(pool, choices, (choice.name, model))
        self.bound = None
        return session

    def _give_attachment_settings(self, session: ChatSession) -> None:
        """Hand the settings' ``attachments`` to ``session`` (issue 13: whole or retrieved)."""
        if self.attachment_settings is not None:
            session.attachment_settings = self.attachment_settings()

    async def _bind_profile(self, pool: ProviderPool, choices: Sequence[ProviderChoice], first_text: str,
                            on_event: Callable[[ReplyEvent], None]) -> ChatSession:
        profile = self.profile()
        assert profile is not None and self.profile_name is not None
        if not profile.model:
            raise ProviderUnavailableError(f"The profile {self.profile_name} names no model.",
                                           profile.provider)
        store = self._store()
        key = "profile:" + self.profile_name
        if self.session is not None and self.session_target == key:
            return self.session
        target = await self._profile_target(profile, pool, choices)
        cid = await self._ensure_conversation(first_text)
        if self.session is None and target is None:
            # A catalog provider: the session is the profile's own (provider, chain, costs).
            self.session = ChatSession.from_profile(store, cid, profile, providers=self.profiles.providers,
                                                    create=self.create, on_event=on_event)
            self._owned = True
        else:
            if target is None:
                target = self._build_profile_target(profile)
            provider, fallback, label, owned = target
            if self.session is None:
                self.session = ChatSession(store, cid, provider, profile.model, on_event=on_event,
                                           label=label, fallback=fallback, **self._tool_kwargs())
            else:
                old, was_owned = self.session.provider, self._owned
                await self.session.switch(provider, profile.model, fallback=fallback, label=label)
                if old is not provider and not was_owned:
                    pool.forget(old.name)  # the session closed it; the pool builds a new one
            self._owned = owned
        session = self.session
        session.track_costs = profile.track_costs
        session.temperature = profile.temperature if profile.temperature is not None else 0.7
        session.max_tokens = profile.max_tokens or 4096
        # The chat's own sampling parameters (top-p, stop, ...) apply under a profile too.
        session.sampling = params_from(await self._conversation_params())["sampling"]
        self.session_target = key
        self.bound = None
        return session

    async def _profile_target(self, profile: Profile, pool: ProviderPool, choices: Sequence[ProviderChoice],
                              ) -> _Target | None:
        """A registry target / hand-added endpoint named like the profile's provider answers
        through the pool (its group's failover first, then the profile's chain); None: the
        profile names a catalog provider (see :meth:`_build_profile_target`)."""
        assert profile.model is not None
        choice = match_choice(profile.provider, choices)
        if choice is None or choice.target is None or find_spec(profile.provider) is not None:
            return None
        await pool.prepare(choice)
        provider = pool.get(choice)
        chain = [*pool.fallback(choice, profile.model),
                 *chain_from_profile(profile, providers=self.profiles.providers, create=self.create)]
        return provider, chain, label_for(choice, provider), False

    def _build_profile_target(self, profile: Profile) -> _Target:
        """A catalog provider built for the session with the profile's ``base_url``, key
        variable and timeout (closed with the session), and the profile's chain."""
        given = {"base_url": profile.base_url, "api_key_env": profile.api_key_env, "timeout": profile.timeout}
        options = provider_options(profile.provider, given, self.profiles.providers)
        provider = self.create(profile.provider, **options)
        chain = chain_from_profile(profile, providers=self.profiles.providers, create=self.create)
        return provider, chain, None, True

    def _tool_kwargs(self) -> dict[str, Any]:
        return {"tools": self.tools, "asker": self.asker, "approvals": self.approvals}


    @staticmethod
    def _restore_params(session: ChatSession, conv_params: dict[str, Any]) -> None:
        values = params_from(conv_params)
        session.temperature = values.get("temperature", 0.7)
        session.max_tokens = values.get("max_tokens", 4096)
        session.context_window = values["context_window"]
        session.sampling = values["sampling"]
        session.track_costs = True


def interactive_create(name: str, **kwargs: Any) -> BaseProvider:
    """A catalog provider for the chat: ``ProviderRegistry.create`` with one retry, so a dead
    first target fails over fast."""
    from victor_gui.providers.registry import ProviderRegistry

    kwargs.setdefault("max_retries", 1)
    return ProviderRegistry.create(name, **kwargs)


def params_from(conv_params: dict[str, Any]) -> dict[str, Any]:
    """Session keyword arguments from a conversation's stored parameters."""
    out: dict[str, Any] = {}
    if conv_params.get("temperature") is not None:
        out["temperature"] = float(conv_params["temperature"])
    if conv_params.get("max_tokens"):
        out["max_tokens"] = int(conv_params["max_tokens"])
    ctx = conv_params.get("context_length")
    out["context_window"] = int(ctx) if ctx else None
    # Everything else goes by dialect (providers/params.py); the context length too, which
    # reaches Ollama as num_ctx (elsewhere it only sizes the history, as context_window).
    out["sampling"] = {k: v for k, v in clean_params(conv_params).items()
                       if k not in ("temperature", "max_tokens")}
    return out


def label_for(choice: ProviderChoice, provider: BaseProvider) -> str:
    """What notes call the answering endpoint: the target's name, and for a group which of its
    endpoints ("Desk llama.cpp (http://…:8081)")."""
    target = choice.target
    if target is None or len(target.members) < 2:
        return choice.display_name
    first = target.ordered[0]
    return first.label if first.base_url == getattr(provider, "base_url", None) else choice.display_name





def _image_alternatives(pool: ProviderPool, choices: Sequence[ProviderChoice],
                        exclude: tuple[str, str]) -> Callable[[], Awaitable[Sequence[str]]]:
    """How a session finds the configured models that take images (for its refusal)."""

    async def find() -> Sequence[str]:
        from victor_gui.services import vision

        candidates = await vision.configured_image_candidates(pool, choices, exclude=exclude)
        return await vision.models_that_take_images(candidates)

    return find
