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

The controller is one object built from mixins, each file one responsibility: this module holds
the chat on screen (paging, editing, replies, versions, parameters, tools switch);
:mod:`.session_binding` making and switching its session; :mod:`.chat_profiles` its profile;
:mod:`.controller_events` what it emits besides reply events.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from victor_gui.config.profiles import ProfileSet
from victor_gui.config.settings import AttachmentSettings
from victor_gui.errors import StorageError
from victor_gui.providers.base import BaseProvider
from victor_gui.services import chat_branches
from victor_gui.services.attachment_types import AttachmentRef
from victor_gui.services.chat_profiles import match_choice
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.controller_events import ControllerEvent, ConversationChanged, ProfileChanged
from victor_gui.services.reply_types import ReplyResult
from victor_gui.services.session_binding import SessionBindingMixin, interactive_create, params_from
from victor_gui.services.tool_approvals import ToolApprovals
from victor_gui.services.tool_loop import PARAMS_KEY as TOOLS_KEY
from victor_gui.services.tool_loop import ToolChoice, read_tool_choice, store_tool_choice
from victor_gui.services.tool_types import Asker, ToolSource
from victor_gui.storage.models import StoredMessage
from victor_gui.storage.store import ConversationStore

# Messages rendered when a chat opens; older ones come a page at a time on request.
PAGE = 60


@dataclass(frozen=True)
class Page:
    """A page of stored messages to render, oldest first.

    ``has_earlier``: older messages exist (the pane offers to load them); ``target_id``: the
    search hit to scroll to; ``around_hit``: the page is not the latest one (replies after it)."""

    messages: list[StoredMessage]
    has_earlier: bool
    around_hit: bool = False
    target_id: int | None = None



class ChatController(SessionBindingMixin):
    """One conversation's state and actions; see the module doc.

    ``store`` may arrive later (:meth:`set_store`). Listeners (:meth:`subscribe`) get every
    :data:`ControllerEvent`, synchronously, on the loop."""

    def __init__(self, store: ConversationStore | None = None, *,
                 create: Callable[..., BaseProvider] | None = None) -> None:
        self.store = store
        # Builds a profile's catalog providers (and its chain's): ProviderRegistry.create with
        # one retry, as the pool's interactive providers, so a dead first target fails over fast.
        self.create = create or interactive_create
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


# ConversationChanged, ProfileChanged and match_choice live in .controller_events and .chat_profiles;
# they stay importable from here, where the chat pane (ui/) has always found them.
__all__ = ["PAGE", "ChatController", "ConversationChanged", "Page", "ProfileChanged", "last_used",
           "match_choice", "title_from"]
