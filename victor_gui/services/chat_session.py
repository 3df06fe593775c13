"""One conversation in use: send, stream a reply into the store, stop, regenerate, edit and
resend, switch provider or model, fall back, and price each reply.

Qt-free; the UI drives it from the qasync loop and listens through ``on_event``. Every reply is
a store row from its first moment (status ``streaming``), so a stop, a provider error or a
crash never loses what already arrived:

* stop: the reply task is cancelled at once (the HTTP stream is closed by ``aclosing``), the
  text so far is kept and the message is marked ``interrupted``;
* provider error: the message is marked ``error`` with the error's (redacted) text, and any
  ``partial_content`` the error carries is kept;
* each finished reply records provider, model, endpoint, time to first token, tokens/second,
  token counts and cost (``meta`` adds fallback attempts and trimming, see below).

What goes to the model (:mod:`.chat_requests`): the stored history without notes,
repaired for any protocol (``tool_history.repair_history`` with ``replay=True``), then trimmed to
the model's context window (:mod:`.context_trim`, window from :mod:`.context_window`). A request
that had to leave turns out adds a visible ``trim`` note (:mod:`.notes`) when the count changed
since the last one.

Switching (:meth:`ChatSession.switch`) stores a ``switch`` note, closes the old provider and
keeps the whole history. Fallback (:mod:`.fallback`): the session's provider, then each
candidate, only while nothing was shown. Costs (:mod:`.costs`): the dated price table by
default; ``track_costs=False`` (a profile's ``track_costs: false``) stores no cost at all, so
``/usage`` shows tokens without a price rather than a wrong one.

Tools (:mod:`.tool_loop`): with a ``ToolSource`` and the conversation's tools switch on
(``params["tools"]``), a reply is a loop of model turns. A turn that ends with tool calls is
stored with them; each call is approved (saved rules, then the ``asker``; none: denied), the
approved ones run concurrently, one ``tool`` row per call keeps its result and record
(``meta["tool"]``), ``tool_call`` events tell the view each state, and the model is asked again
in a new assistant row, up to ``tool_max_rounds``. A stop cancels running calls (stored as
cancelled). Signed thinking (Anthropic, Bedrock) is kept in the turn's ``meta`` and handed back
to the provider, so such a loop goes on after a restart.

Attachments (:mod:`.chat_attachments`): ``send``/``edit_and_resend`` take stored files
(:class:`~victor_gui.services.attachment_types.AttachmentRef`), checked before the message is
stored (a model without vision raises ``ModelTakesNoImagesError``), kept with the user's
message, and put into each request for the protocol of the provider it goes to.

The session is one object built from mixins, each file one responsibility: this module holds the
public actions (send, regenerate, edit, stop, switch, close); :mod:`.chat_requests` what a
request sends; :mod:`.reply_run` one reply's rounds and fallback chain; :mod:`.reply_attempt`
one attempt streamed into the store and finished; :mod:`.chat_tools` the tool rounds;
:mod:`.chat_attachments` the attached files.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

from victor_gui.config.profiles import Profile, ProviderSettings
from victor_gui.config.settings import AttachmentSettings
from victor_gui.errors import StorageError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.types import ContentPart, Message
from victor_gui.services import chat_branches, notes
from victor_gui.services.attachment_types import AttachmentRef
from victor_gui.services.context_window import ContextWindow
from victor_gui.services.fallback import Candidate, chain_from_profile, provider_options
from victor_gui.services.generation import Generation
from victor_gui.services.ollama_context import ContextPlanner, default_planner
from victor_gui.services.reply_attempt import CostFn, display_name_of, name_of
from victor_gui.services.reply_run import ReplyRunMixin
from victor_gui.services.reply_types import ReplyEvent, ReplyResult, SwitchResult
from victor_gui.services.tool_approvals import ToolApprovals
from victor_gui.services.tool_loop import ToolRunner
from victor_gui.services.tool_types import Asker, ToolSource
from victor_gui.storage.models import NOTE_ROLE
from victor_gui.storage.store import ConversationStore

log = logging.getLogger(__name__)

__all__ = ["ChatSession", "CostFn", "ReplyEvent", "ReplyResult", "SwitchResult"]


class ChatSession(ReplyRunMixin):
    """A conversation bound to a provider and model, streaming replies into the store.

    ``cost_fn``: ``(provider, model, usage) -> USD | None``; None uses the price table
    (:func:`victor_gui.services.costs.cost_of`, local providers 0). ``track_costs=False`` stores
    no cost. ``fallback``: candidates tried in order when the provider cannot answer (see
    :mod:`.fallback`); the session owns them and closes them in :meth:`close`.
    ``context_window`` fixes the window instead of asking the server / the table.
    """

    def __init__(
        self,
        store: ConversationStore,
        conversation_id: int,
        provider: BaseProvider,
        model: str,
        *,
        endpoint: str | None = None,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        cost_fn: CostFn | None = None,
        on_event: Callable[[ReplyEvent], None] | None = None,
        track_costs: bool = True,
        fallback: Sequence[Candidate] = (),
        context_window: int | None = None,
        label: str | None = None,
        tools: ToolSource | None = None,
        asker: Asker | None = None,
        approvals: ToolApprovals | None = None,
        tool_max_rounds: int | None = None,
        tool_timeout_s: float | None = None,
        approve_tools: bool = False,
        stream_options: dict[str, Any] | None = None,
        sampling: dict[str, Any] | None = None,
        attachment_settings: AttachmentSettings | None = None,
        context_planner: ContextPlanner | None = None,
    ) -> None:
        self.store = store
        self.conversation_id = conversation_id
        self.provider = provider
        self.model = model
        self.endpoint = endpoint or provider.base_url
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.cost_fn = cost_fn
        self.on_event = on_event
        self.track_costs = track_costs
        self.fallback: list[Candidate] = list(fallback)
        self.context_window = context_window
        # What people call the provider ("llama.cpp", "Desk box (http://…)"), for notes; None: its name.
        self.label = label
        self._windows: dict[tuple[int, str], ContextWindow] = {}
        # Ollama: the num_ctx this chat sends, chosen from the fit plan (see ollama_context).
        self.context_planner = context_planner or default_planner()
        self._num_ctx: dict[tuple[int, str], int] = {}
        self._task: asyncio.Task[ReplyResult] | None = None
        # (reply id, reason) of the last save failure told, so a lasting one is told once.
        self._save_error: tuple[int, str] | None = None
        # The attempt streaming now (or the last one): a view reads live figures off its state.
        self.generation: Generation | None = None
        # Tools (MCP): who lists and runs them, who approves, and the bounds. The rounds and the
        # timeout default to the settings when ``approvals`` (which holds them) is given.
        self.tools = tools
        self.asker = asker
        self.approvals = approvals
        self._max_rounds = tool_max_rounds
        self._timeout_s = tool_timeout_s
        self.approve_tools = approve_tools
        # Extra keywords for every request (``thinking=`` for Anthropic/Bedrock, ...).
        self.stream_options = dict(stream_options or {})
        # The chat's sampling parameters under neutral names (top_p, stop, seed, ...): each
        # request sends only those its provider's dialect accepts (providers.params).
        self.sampling = dict(sampling or {})
        # (provider, model) pairs whose server refused the ``tools`` field: tools go as text.
        self._tools_as_text: set[tuple[str, str]] = set()
        # The tool runs of the reply streaming now (a view reads ``records`` off it).
        self.tool_runner: ToolRunner | None = None
        self._left_out_told: tuple[str, ...] = ()
        self._init_attachments()
        self.attachment_settings = attachment_settings  # embedding model, passages per question

    @classmethod
    def from_profile(
        cls,
        store: ConversationStore,
        conversation_id: int,
        profile: Profile,
        *,
        providers: dict[str, ProviderSettings] | None = None,
        create: Callable[..., BaseProvider] | None = None,
        **kwargs: Any,
    ) -> ChatSession:
        """A session on the profile's provider and model, with its parameters, fallback chain
        and ``track_costs``. ``create`` defaults to ``ProviderRegistry.create``."""
        if create is None:
            from victor_gui.providers.registry import ProviderRegistry

            create = ProviderRegistry.create
        if not profile.model:
            raise StorageError(f"The profile for {profile.provider} names no model.")
        given = {"base_url": profile.base_url, "api_key_env": profile.api_key_env, "timeout": profile.timeout}
        options = provider_options(profile.provider, given, providers)
        kwargs.setdefault("temperature", profile.temperature if profile.temperature is not None else 0.7)
        kwargs.setdefault("max_tokens", profile.max_tokens or 4096)
        kwargs.setdefault("track_costs", profile.track_costs)
        kwargs.setdefault("fallback", chain_from_profile(profile, providers=providers, create=create))
        return cls(store, conversation_id, create(profile.provider, **options), profile.model, **kwargs)

    @property
    def busy(self) -> bool:
        """Whether a reply is streaming now."""
        return self._task is not None and not self._task.done()

    # -- the public actions ----------------------------------------------------------------------

    async def send(self, content: str | Sequence[ContentPart],
                   attachments: Sequence[AttachmentRef] = ()) -> ReplyResult:
        """Store the user's message (with its files) and stream the reply to it.

        Files the model cannot take (images to a model without vision, a document that does not
        convert) raise before anything is stored, so the draft stays with the user."""
        self._check_idle()
        refs = await self._ready_attachments(attachments)
        user_id = await self.store.add_message(self.conversation_id, "user", content, attachments=refs)
        await self._note_conversion_warnings(refs)
        return await self._run_reply(user_id)

    async def regenerate(self) -> ReplyResult:
        """Answer the last user message again: a new version of the replies after it (the
        earlier ones are kept, see :mod:`.chat_branches`)."""
        self._check_idle()
        user_id = await chat_branches.fork_for_regenerate(self.store, self.conversation_id)
        return await self._run_reply(user_id)

    async def edit_and_resend(self, message_id: int, content: str | Sequence[ContentPart],
                              attachments: Sequence[AttachmentRef] | None = None) -> ReplyResult:
        """Send ``content`` as a new version of one of the user's messages and answer it; the
        old wording and what followed it stay as the earlier version. The result's
        ``user_message_id`` is the new version's. ``attachments``: None keeps the message's
        files, a sequence replaces them."""
        self._check_idle()
        message = await self.store.get_message(message_id)
        if message is None or message.conversation_id != self.conversation_id or message.role != "user":
            raise StorageError("Only a user message of this conversation can be edited and resent.")
        refs = await self._ready_attachments(message.attachments if attachments is None else attachments)
        user_id = await chat_branches.fork_for_edit(self.store, self.conversation_id, message_id, content,
                                                    attachments=refs)
        await self._note_conversion_warnings(refs)
        return await self._run_reply(user_id)

    def cancel(self) -> None:
        """Stop the streaming reply without waiting (a key press): the attempt stops at once
        (its state reads ``interrupted``) and the row is marked when the task unwinds; await
        :meth:`stop` to wait for that."""
        task = self._task
        if task is None or task.done():
            return
        task.cancel()  # first, so the session task sees a cancel, not a finished attempt
        if self.generation is not None:
            self.generation.cancel()

    async def stop(self) -> None:
        """Stop the streaming reply now; its text so far stays, marked ``interrupted``."""
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    async def switch(
        self,
        provider: BaseProvider,
        model: str,
        *,
        endpoint: str | None = None,
        context_window: int | None = None,
        fallback: Sequence[Candidate] = (),
        label: str | None = None,
    ) -> SwitchResult:
        """Go on with ``provider``/``model``, keeping the whole conversation.

        Stores a ``switch`` note, closes the old provider (unless it is the new one) and the old
        fallback chain (it belonged to the old choice; pass ``fallback`` for the new one), and
        works out at once whether the history must be trimmed for the new model's context
        window, adding a ``trim`` note if so.
        """
        self._check_idle()
        old_provider, old_model, old_endpoint = self.provider, self.model, self.endpoint
        new_endpoint = endpoint or provider.base_url
        meta = {"kind": notes.SWITCH,
                "from": {"provider": old_provider.name, "model": old_model, "endpoint": old_endpoint},
                "to": {"provider": provider.name, "model": model, "endpoint": new_endpoint}}
        text = notes.switch_text(self.label or display_name_of(old_provider), old_model,
                                 label or display_name_of(provider), model)
        note_id = await self.store.add_message(self.conversation_id, NOTE_ROLE, text, meta=meta)
        self._emit(ReplyEvent("note", note_id, text, meta=meta))
        old_chain, self.fallback = self.fallback, list(fallback)
        self.provider, self.model, self.endpoint = provider, model, new_endpoint
        self.context_window = context_window
        self.label = label
        if old_provider is not provider:
            await _close_quietly(old_provider)
        for candidate in old_chain:
            if candidate._instance is not provider:
                await _close_quietly(candidate)
        stored = await self.store.get_messages(self.conversation_id)
        self._att_contexts.clear()  # whole or retrieved is decided again for the new window
        await self._load_attachments(stored)
        history = self._history(stored)
        request = await self._request(provider, model, history, primary=True)
        await self._note_images_left_out(provider, model, history, stored)
        trim_id = await self._note_trim(request, stored)
        return SwitchResult(note_id, request.window, request.trim.dropped_turns, trim_id)

    async def close(self) -> None:
        """Stop any reply, then close the provider and the fallback providers that were built."""
        await self.stop()
        await _close_quietly(self.provider)
        for candidate in self.fallback:
            await _close_quietly(candidate)

    async def history(self) -> list[Message]:
        """The whole conversation as neutral messages (system prompt first, notes left out).

        Replies that failed with nothing in them are left out; an interrupted reply is kept, as
        the user saw it. What a model receives is this, repaired and trimmed (see the module doc).
        """
        stored = await self.store.get_messages(self.conversation_id)
        await self._load_attachments(stored)
        return self._history(stored, await self._system_prompt())

    # -- history and requests --------------------------------------------------------------------

    # -- the reply -------------------------------------------------------------------------------

    def _check_idle(self) -> None:
        if self.busy:
            raise RuntimeError("A reply is still streaming; stop it first.")

    async def _run_reply(self, user_message_id: int) -> ReplyResult:
        self._task = asyncio.get_running_loop().create_task(self._reply())
        result = await self._task
        return dataclasses.replace(result, user_message_id=user_message_id)

    def _emit(self, event: ReplyEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    async def _note(self, kind: str, text: str, extra: dict[str, Any] | None = None) -> int:
        meta = {"kind": kind, **(extra or {})}
        note_id = await self.store.add_message(self.conversation_id, NOTE_ROLE, text, meta=meta)
        self._emit(ReplyEvent("note", note_id, text, meta=meta))
        return note_id



# Seconds a provider gets to close its HTTP client on a switch or close. Closing is only tidying
# up, and under Wine one close was seen never to finish (the whole switch hung with it).
CLOSE_TIMEOUT_S = 5.0


async def _close_quietly(item: BaseProvider | Candidate) -> None:
    """Close a provider; a failure or a hang in closing must not stop a switch (it is logged)."""
    try:
        await asyncio.wait_for(item.close(), CLOSE_TIMEOUT_S)
    except TimeoutError:
        log.warning("closing %s took over %g s; left behind", name_of(item), CLOSE_TIMEOUT_S)
    except Exception as exc:  # closing is best effort: the switch goes on
        log.warning("closing %s failed: %s", name_of(item), exc)
