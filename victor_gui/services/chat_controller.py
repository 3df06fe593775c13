"""The chat window's conversation state and actions, without Qt: what the chat pane used to hold.

:class:`ChatController` owns one chat at a time: its conversation id, what it is bound to (a
provider choice and model, or a profile), the paging of its stored messages (the first position
shown, whether the page is around a search hit), the message being edited, and the
:class:`~victor_gui.services.chat_session.ChatSession` that streams its replies (made on first
use — plainly or with :meth:`ChatSession.from_profile` — and switched with
:meth:`ChatSession.switch` when the choice changes). The pane renders what the controller hands
back (pages of stored messages, :class:`~victor_gui.services.reply_types.ReplyResult` with the
ids it needs) and what it emits (see :data:`ControllerEvent`; the session's ``ReplyEvent`` s pass
through unchanged), and forwards the user's intents; it never calls the store itself.

Profiles (Victor's ``~/.victor/profiles.yaml`` and the app's own, :mod:`victor_gui.config.profiles`)
bind the chat to their provider — a catalog provider, or a registry target / hand-added
endpoint of that name — with their model, ``base_url``, parameters, fallback chain and
``track_costs``. The choice is remembered per conversation (``params["profile"]``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from victor_gui.config.profiles import Profile, ProfileSet, load_profiles
from victor_gui.config.settings import AttachmentSettings
from victor_gui.errors import ProviderUnavailableError, StorageError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import display_name, find_spec
from victor_gui.providers.params import clean_params
from victor_gui.services import chat_branches
from victor_gui.services.attachment_types import AttachmentRef
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.fallback import Candidate, chain_from_profile, provider_options
from victor_gui.services.provider_choices import ProviderChoice, ProviderPool
from victor_gui.services.reply_types import ReplyEvent, ReplyResult
from victor_gui.services.tool_approvals import ToolApprovals
from victor_gui.services.tool_loop import PARAMS_KEY as TOOLS_KEY
from victor_gui.services.tool_loop import ToolChoice, read_tool_choice, store_tool_choice
from victor_gui.services.tool_types import Asker, ToolSource
from victor_gui.storage.models import StoredMessage
from victor_gui.storage.store import ConversationStore

log = logging.getLogger(__name__)

# Messages rendered when a chat opens; older ones come a page at a time on request.
PAGE = 60

_PROFILE_IN_ERROR = re.compile(r"(?:^|: )profiles\.([^.:\s]+)[.:]")


# A profile's provider, fallback chain, label for notes, and whether the session owns the provider.
_Target = tuple[BaseProvider, list[Candidate], str | None, bool]


@dataclass(frozen=True)
class ConversationChanged:
    """A chat was created or changed (its list entry should refresh)."""

    conversation_id: int


@dataclass(frozen=True)
class ProfileChanged:
    """The chat's profile changed (``None``: no profile)."""

    name: str | None


ControllerEvent = ReplyEvent | ConversationChanged | ProfileChanged


@dataclass(frozen=True)
class Page:
    """A page of stored messages to render, oldest first.

    ``has_earlier``: older messages exist (the pane offers to load them); ``target_id``: the
    search hit to scroll to; ``around_hit``: the page is not the latest one (replies after it)."""

    messages: list[StoredMessage]
    has_earlier: bool
    around_hit: bool = False
    target_id: int | None = None


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


class ChatController:
    """One conversation's state and actions; see the module doc.

    ``store`` may arrive later (:meth:`set_store`). Listeners (:meth:`subscribe`) get every
    :data:`ControllerEvent`, synchronously, on the loop."""

    def __init__(self, store: ConversationStore | None = None, *,
                 create: Callable[..., BaseProvider] | None = None) -> None:
        self.store = store
        # Builds a profile's catalog providers (and its chain's): ProviderRegistry.create with
        # one retry, as the pool's interactive providers, so a dead first target fails over fast.
        self.create = create or _interactive_create
        self.session: ChatSession | None = None
        self.conversation_id: int | None = None
        # (provider, model) a reopened chat last used: its session starts there, so a different
        # choice in the picker is recorded as a switch.
        self.bound: tuple[str, str] | None = None
        self.first_position: int | None = None  # the earliest message shown
        self.around_hit = False  # showing a page around a search hit, not the latest one
        self.editing_id: int | None = None  # the user message being edited
        self.session_target: str | None = None  # the choice (or "profile:NAME") the session serves
        self.profiles = ProfileSet()
        self.profile_name: str | None = None
        # The session's providers are its own (a profile's catalog provider), not the pool's:
        # they are closed with it.
        self._owned = False
        self._closing: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[ControllerEvent], None]] = []
        # Tools (issue 12): who lists and runs them (the app's MCP host), who asks the person
        # (the pane's approval prompt) and the stored rules; every session of this chat gets them.
        self.tools: ToolSource | None = None
        self.asker: Asker | None = None
        self.approvals: ToolApprovals | None = None
        self._pending_tools: ToolChoice | None = None  # chosen before the chat has a row
        # The settings' ``attachments`` as they are now (embedding model, passages per question),
        # read at each send so a change in Settings applies to the next message; None: defaults.
        self.attachment_settings: Callable[[], AttachmentSettings | None] | None = None

    # -- events ------------------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[ControllerEvent], None]) -> Callable[[], None]:
        """Hear every event; returns the call that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: ControllerEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def set_store(self, store: ConversationStore | None) -> None:
        """Use ``store`` from now on (opened after the first paint, or reopened after a move)."""
        self.store = store
        if self.session is not None and store is not None:
            self.session.store = store

    @property
    def busy(self) -> bool:
        """Whether a reply is streaming now."""
        return self.session is not None and self.session.busy

    # -- the conversation on screen ----------------------------------------------------------------

    def leave(self) -> None:
        """Forget the chat on screen (a new chat starts empty). The pool owns the providers of
        choices; a profile's own providers belong to its session, closed in the background."""
        old = self.session
        self.session = None
        self.conversation_id = None
        self.bound = None
        self.editing_id = None
        self.around_hit = False
        self.first_position = None
        self.session_target = None
        if old is not None and self._owned:
            task = asyncio.ensure_future(old.close())  # kept until done: a task must not be lost
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._owned = False

    async def open(self, conversation_id: int, message_id: int | None = None) -> Page:
        """Open a stored chat: its latest page, or the page around ``message_id`` (a search hit).
        A reply still streaming is stopped first; the chat's remembered profile comes back."""
        store = self._store()
        if self.session is not None and self.session.busy:
            await self.session.stop()
        self.leave()
        self.conversation_id = conversation_id
        before = None
        if message_id is not None:
            hit = await store.get_message(message_id)
            if hit is not None and hit.conversation_id == conversation_id:
                before = hit.position + PAGE // 2
                if not await store.is_shown(message_id):  # a hit in another version: show it
                    await store.choose_version(message_id)
        stored = await store.get_messages(conversation_id, limit=PAGE, before_position=before)
        if before is not None:
            later = await store.get_messages(conversation_id, limit=1)
            self.around_hit = bool(later) and bool(stored) and later[-1].position > stored[-1].position
        self.bound = last_used(stored)
        conv = await store.get_conversation(conversation_id)
        remembered = (conv.params or {}).get("profile") if conv is not None else None
        self._set_profile(remembered if isinstance(remembered, str) else None)
        return self._page(stored, target_id=message_id)

    async def earlier(self) -> Page | None:
        """The page before the first message shown (None: nothing is open)."""
        if self.store is None or self.conversation_id is None or self.first_position is None:
            return None
        stored = await self.store.get_messages(self.conversation_id, limit=PAGE,
                                               before_position=self.first_position)
        return self._page(stored)

    def _page(self, stored: list[StoredMessage], target_id: int | None = None) -> Page:
        if stored:
            self.first_position = stored[0].position
        return Page(stored, len(stored) >= PAGE, self.around_hit, target_id)

    def _store(self) -> ConversationStore:
        if self.store is None:
            raise StorageError("Your conversations are still opening; try again in a moment.")
        return self.store

    async def _ensure_conversation(self, first_text: str) -> int:
        if self.conversation_id is None:
            conv = await self._store().create_conversation(title_from(first_text),
                                                           params=self._new_params())
            self.conversation_id = conv.id
            self._emit(ConversationChanged(conv.id))
        return self.conversation_id

    def _new_params(self) -> dict[str, Any]:
        """A new chat's params: its profile, and the tools switch chosen before it had a row."""
        params = self._profile_params()
        if self._pending_tools is not None:
            params[TOOLS_KEY] = self._pending_tools.to_params()
            self._pending_tools = None
        return params

    def _profile_params(self) -> dict[str, Any]:
        return {"profile": self.profile_name} if self.profile_name else {}

    # -- editing -----------------------------------------------------------------------------------

    def begin_edit(self, message_id: int | None) -> bool:
        """Edit a stored user message (False while a reply streams, or for an unsaved one)."""
        if self.busy or message_id is None:
            return False
        self.editing_id = message_id
        return True

    def take_edit(self) -> int | None:
        """The message being edited, and editing ends (the resend goes out)."""
        mid, self.editing_id = self.editing_id, None
        return mid

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

    async def tool_choice(self) -> ToolChoice:
        """This chat's tools switch (stored in its params; a new chat's pending choice)."""
        if self.conversation_id is None or self.store is None:
            return self._pending_tools or ToolChoice()
        return await read_tool_choice(self.store, self.conversation_id)

    async def set_tool_choice(self, choice: ToolChoice) -> None:
        """Turn MCP servers (and single tools) on or off for this chat's next replies; kept in
        the conversation's params, so a reopened chat has the same switch."""
        if self.conversation_id is None or self.store is None:
            self._pending_tools = choice  # stored with the chat's row when it is made
            return
        await store_tool_choice(self.store, self.conversation_id, choice)

    async def _conversation_params(self) -> dict[str, Any]:
        if self.conversation_id is None or self.store is None:
            return {}
        conv = await self.store.get_conversation(self.conversation_id)
        return dict(conv.params or {}) if conv is not None else {}

    @staticmethod
    def _restore_params(session: ChatSession, conv_params: dict[str, Any]) -> None:
        values = params_from(conv_params)
        session.temperature = values.get("temperature", 0.7)
        session.max_tokens = values.get("max_tokens", 4096)
        session.context_window = values["context_window"]
        session.sampling = values["sampling"]
        session.track_costs = True

    # -- replies -----------------------------------------------------------------------------------

    async def send(self, session: ChatSession, text: str,
                   attachments: Sequence[AttachmentRef] | None = None) -> ReplyResult:
        """Send ``text`` with ``attachments`` (or resend the message being edited, as a new
        version of it; None keeps its files)."""
        if session.busy:
            await session.stop()  # a stopped reply still unwinding
        editing = self.take_edit()
        self._give_attachment_settings(session)
        if editing is not None:
            return await self._with_row(await session.edit_and_resend(editing, text, attachments))
        return await self._with_row(await session.send(text, attachments or ()))

    async def regenerate(self) -> ReplyResult | None:
        """Answer the last user message again (None: no session yet)."""
        if self.session is None or self.session.busy:
            return None
        self._give_attachment_settings(self.session)
        return await self._with_row(await self.session.regenerate())

    async def stopped_reply(self) -> ReplyResult | None:
        """How the reply just stopped ended, read back from the store (a stop cancels the reply's
        task, so no result comes back from :meth:`send`): the view then offers Edit and
        Regenerate again and shows the stored token count and speed."""
        if self.store is None or self.conversation_id is None:
            return None
        shown = await self.store.get_messages(self.conversation_id, limit=PAGE)
        reply = next((m for m in reversed(shown) if m.role == "assistant"), None)
        if reply is None:
            return None
        user = next((m for m in reversed(shown) if m.role == "user" and m.position < reply.position), None)
        return ReplyResult(reply.id, reply.status, provider=reply.provider, model=reply.model,
                           user_message_id=user.id if user else None, stored=reply)

    # -- versions and branches (issue 14; see services.chat_branches) --------------------------------

    async def versions(self) -> dict[int, tuple[int, ...]]:
        """Messages of the chat on screen that have other versions, with all their ids."""
        if self.store is None or self.conversation_id is None:
            return {}
        return await self.store.versions(self.conversation_id)

    async def choose_version(self, message_id: int) -> Page:
        """Show the branch through ``message_id`` (remembered in the store; the next request
        sends it): the last page of the chat as it reads now, aimed at that message."""
        if self.busy:
            raise StorageError("A reply is still streaming; stop it before switching versions.")
        store = self._store()
        self.conversation_id = await chat_branches.choose_version(store, message_id)
        self.editing_id = None
        self.around_hit = False
        stored = await store.get_messages(self.conversation_id, limit=PAGE)
        self.bound = last_used(stored) or self.bound
        return self._page(stored, target_id=message_id)

    async def branch_from(self, message_id: int) -> int:
        """A new chat with this chat's shown branch up to and including ``message_id``; returns
        its id (the caller opens it)."""
        conv = await chat_branches.branch_from(self._store(), message_id)
        self._emit(ConversationChanged(conv.id))
        return conv.id

    async def _with_row(self, result: ReplyResult) -> ReplyResult:
        """``result`` with its stored row (the stats the view shows), read once here."""
        return dataclasses.replace(result, stored=await self._store().get_message(result.message_id))

    def cancel(self) -> None:
        """Stop the streaming reply now, without waiting (a key press)."""
        if self.session is not None:
            self.session.cancel()

    async def stop(self) -> None:
        """Stop the streaming reply and wait until its row is marked interrupted."""
        if self.session is not None:
            await self.session.stop()

    async def apply_params(self, system_prompt: str | None, params: dict[str, Any]) -> None:
        """Store the chat's system prompt and parameters (temperature, max_tokens,
        context_length) and use them from the next reply on. The profile choice and the tools
        switch are kept."""
        store = self._store()
        if self.conversation_id is None:
            conv = await store.create_conversation("New chat", params=self._new_params())
            self.conversation_id = conv.id
        kept = {k: v for k, v in (await self._conversation_params()).items() if k == TOOLS_KEY}
        merged = {**params, **kept, **self._profile_params()}
        await store.update_conversation(self.conversation_id, system_prompt=system_prompt or "",
                                        params=merged)
        if self.session is not None:
            values = params_from(params)
            self.session.temperature = values.get("temperature", 0.7)
            self.session.max_tokens = values.get("max_tokens", 4096)
            self.session.context_window = values["context_window"]
            self.session.sampling = values["sampling"]
        self._emit(ConversationChanged(self.conversation_id))

    async def aclose(self) -> None:
        """Stop any reply; a profile's own providers are closed (the pool's stay open)."""
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        session, self.session = self.session, None
        if session is None:
            return
        if self._owned:
            await session.close()
        else:
            await session.stop()


def _interactive_create(name: str, **kwargs: Any) -> BaseProvider:
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


def last_used(stored: list[StoredMessage]) -> tuple[str, str] | None:
    """The provider and model the chat was last using (its last reply or switch note)."""
    for m in reversed(stored):
        if m.is_note and isinstance(m.meta, dict) and m.meta.get("kind") == "switch":
            to = m.meta.get("to") or {}
            if to.get("provider") and to.get("model"):
                return str(to["provider"]), str(to["model"])
        if m.role == "assistant" and m.provider and m.model:
            return m.provider, m.model
    return None


def title_from(text: str) -> str:
    """A chat's first title: its first line, cut at a word near 60 characters."""
    line = text.strip().splitlines()[0] if text.strip() else "New chat"
    if len(line) <= 60:
        return line
    return line[:60].rsplit(" ", 1)[0] + "…"


__all__ = ["PAGE", "ChatController", "ControllerEvent", "ConversationChanged", "Page", "ProfileChanged",
           "ProfileEntry", "label_for", "last_used", "match_choice", "params_from", "title_from"]


def _image_alternatives(pool: ProviderPool, choices: Sequence[ProviderChoice],
                        exclude: tuple[str, str]) -> Callable[[], Awaitable[Sequence[str]]]:
    """How a session finds the configured models that take images (for its refusal)."""

    async def find() -> Sequence[str]:
        from victor_gui.services import vision

        candidates = await vision.configured_image_candidates(pool, choices, exclude=exclude)
        return await vision.models_that_take_images(candidates)

    return find
