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

What goes to the model (:meth:`ChatSession._request`): the stored history without notes,
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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from victor_gui.config.profiles import Profile, ProviderSettings
from victor_gui.config.settings import AttachmentSettings
from victor_gui.errors import BadRequestError, ProviderError, StorageError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import display_name
from victor_gui.providers.params import dialect_of, request_kwargs
from victor_gui.providers.protocols.tool_history import repair_history
from victor_gui.providers.tool_parsing import parse_tool_calls_from_text, tools_as_system_prompt
from victor_gui.providers.types import (
    ContentPart,
    Message,
    ToolCall,
    ToolDefinition,
    Usage,
)
from victor_gui.services import chat_branches, costs, notes
from victor_gui.services.attachment_types import AttachmentRef
from victor_gui.services.chat_attachments import AttachmentsMixin
from victor_gui.services.chat_tools import (
    TOOL_ROUNDS,
    ToolRoundsMixin,
)
from victor_gui.services.context_trim import trim_history
from victor_gui.services.context_window import ContextWindow, discover_context_window
from victor_gui.services.document_context import props_context
from victor_gui.services.fallback import Candidate, chain_from_profile, may_fall_back, provider_options
from victor_gui.services.generation import Generation, ReplyDelta, ReplyState, ReplyStatus
from victor_gui.services.ollama_context import ContextPlanner, default_planner, loaded_context
from victor_gui.services.reply_types import (
    Progress,
    ReplyEvent,
    ReplyResult,
    RequestPlan,
    SwitchResult,
    reply_timings,
)
from victor_gui.services.tool_approvals import ToolApprovals
from victor_gui.services.tool_loop import (
    ToolRunner,
    ToolSet,
)
from victor_gui.services.tool_types import Asker, ToolSource
from victor_gui.storage.models import NOTE_ROLE, StoredMessage
from victor_gui.storage.store import ConversationStore

log = logging.getLogger(__name__)

CostFn = Callable[[str, str, Usage], float | None]

# The ``meta.kind`` of the note event saying a reply could not be saved (an event only: the
# store is what failed). finish_message is retried after these pauses before giving up.
SAVE_FAILED = "save_failed"
# Note kinds of the tool loop (stored notes: the transcript shows them, no model sees them).
TOOLS_AS_TEXT = "tools_as_text"
_FINISH_RETRIES_S = (0.5, 1.0)

__all__ = ["ChatSession", "CostFn", "ReplyEvent", "ReplyResult", "SwitchResult"]


class ChatSession(ToolRoundsMixin, AttachmentsMixin):
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

    async def _system_prompt(self) -> str | None:
        conv = await self.store.get_conversation(self.conversation_id)
        if conv is None:
            raise StorageError(f"Conversation {self.conversation_id} no longer exists.")
        return conv.system_prompt

    def _history(self, stored: list[StoredMessage], system_prompt: str | None = None) -> list[Message]:
        out = [Message(role="system", content=system_prompt)] if system_prompt else []
        for m in stored:
            failed_empty = m.status == "error" and not m.content and not m.tool_calls
            if m.is_note or m.status == "streaming" or failed_empty:
                continue
            out.append(self._attached_message(m))
        return out

    def known_window(self) -> ContextWindow | None:
        """The window of the session's own provider and model, if already set or discovered
        (no request: the context meter reads it)."""
        if self.context_window:
            return ContextWindow(self.context_window, "session")
        return self._windows.get((id(self.provider), self.model))

    async def _ollama_window(self, provider: BaseProvider, model: str, primary: bool) -> ContextWindow | None:
        """Ollama: the ``num_ctx`` this chat sends (its own context length, else the fit plan's,
        :mod:`.ollama_context`), lowered to the trained context and to what the server really
        loaded (``/api/ps``) when those are less. None: not Ollama, or no plan (discovery then)."""
        if getattr(provider, "show_raw", None) is None:
            return None
        plan = await self.context_planner.plan(provider, model)
        asked = self.context_window if primary and self.context_window else None
        key = (id(provider), model)
        if asked is None and plan is None:
            return None
        if asked is None and plan is not None:
            self._num_ctx[key] = plan.num_ctx
            tokens, source = plan.num_ctx, "plan"
        else:
            self._num_ctx.pop(key, None)  # the chat's own value goes out with its parameters
            tokens, source = int(asked or 0), "session"
            if plan is not None and plan.trained and plan.trained < tokens:
                tokens, source = plan.trained, "trained"  # Ollama caps num_ctx there too
        loaded = await loaded_context(provider, model)
        if loaded and loaded < tokens:
            tokens, source = loaded, "loaded"
        window = ContextWindow(tokens, source)
        self._windows[key] = window  # what the context meter shows
        return window

    async def _window(self, provider: BaseProvider, model: str, primary: bool) -> ContextWindow:
        ollama = await self._ollama_window(provider, model, primary)
        if ollama is not None:
            return ollama
        if primary and self.context_window:
            return ContextWindow(self.context_window, "session")
        key = (id(provider), model)
        if key in self._windows:
            return self._windows[key]
        window = await discover_context_window(provider, model)
        running = await props_context(provider, model)  # llama-server: the context it was started with
        if running and running < window.tokens:
            window = ContextWindow(running, "loaded")
        if window.unreachable is None:  # an endpoint that was down is asked again next time
            self._windows[key] = window
        return window

    async def _request(self, provider: BaseProvider, model: str, history: list[Message], *,
                       primary: bool) -> RequestPlan:
        if history and history[0].role != "system":
            prompt = await self._system_prompt()
            if prompt:
                history = [Message(role="system", content=prompt), *history]
        history = await self._images_for(provider, model, history)
        # The server's own word on images (llama.cpp /props: a GGUF with its projector takes
        # them whatever its name), as the check before storing asked; the name table alone
        # dropped the images it had just let through.
        vision = await self._takes_images(provider, model)
        prepared = repair_history(history, vision=vision, replay=True)
        window = await self._window(provider, model, primary)
        trim = trim_history(prepared.messages, window.tokens, self.max_tokens)
        return RequestPlan(trim.messages, trim, window, prepared.changes)

    async def _note_trim(self, request: RequestPlan, stored: list[StoredMessage]) -> int | None:
        """Store a ``trim`` note when turns are left out and the count changed since the last."""
        trim = request.trim
        last = notes.last_trim_since_switch(stored)
        if not trim.trimmed or (last is not None and last.get("dropped_turns") == trim.dropped_turns):
            return None
        meta = {"kind": notes.TRIM, "dropped_turns": trim.dropped_turns,
                "context_window": request.window.tokens, "source": request.window.source,
                "estimated_tokens": trim.estimated_tokens,
                "budget": trim.budget, "fits": trim.fits}
        text = notes.trim_text(trim.dropped_turns, request.window.tokens, trim.fits, request.window.source)
        note_id = await self.store.add_message(self.conversation_id, NOTE_ROLE, text, meta=meta)
        self._emit(ReplyEvent("note", note_id, text, meta=meta))
        return note_id

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

    def _cost(self, provider: BaseProvider, model: str, usage: Usage | None) -> float | None:
        if not self.track_costs or usage is None:
            return None
        if self.cost_fn is not None:
            return self.cost_fn(provider.name, model, usage)
        spec = getattr(provider, "spec", None)
        local = bool(getattr(spec, "is_local", False)) or costs.is_local(provider.name)
        return costs.cost_of(provider.name, model, usage, local=local)

    async def _reply(self) -> ReplyResult:
        """One reply: a model turn, and while it asks for tools (and tools are on), the calls
        run, their results are stored, and the model is asked again, up to the rounds bound."""
        toolset = await self._toolset()
        rounds = 0
        while True:
            result, calls = await self._reply_round(toolset)
            if not toolset or result.status != "complete" or not calls:
                return result
            if rounds >= self.tool_max_rounds:
                text = (f"The reply stopped after {rounds} rounds of tool calls (the limit is "
                        f"{self.tool_max_rounds}, set in Settings → Tools); the last calls did not run.")
                await self._store_skipped(calls, toolset, result.message_id,
                                          f"Not run: the limit of {self.tool_max_rounds} rounds of tool "
                                          "calls for one reply was reached.")
                await self._note(TOOL_ROUNDS, text, {"rounds": rounds})
                return result
            rounds += 1
            await self._run_tools(calls, toolset, result.message_id)

    async def _note(self, kind: str, text: str, extra: dict[str, Any] | None = None) -> int:
        meta = {"kind": kind, **(extra or {})}
        note_id = await self.store.add_message(self.conversation_id, NOTE_ROLE, text, meta=meta)
        self._emit(ReplyEvent("note", note_id, text, meta=meta))
        return note_id

    async def _reply_round(self, toolset: ToolSet) -> tuple[ReplyResult, list[ToolCall] | None]:
        """One model turn with its fallback chain; returns how it ended and the calls it asked for.

        A server that refuses the ``tools`` field (HTTP 400 naming tools) is asked once more
        with the tools described in the prompt instead (remembered per provider and model).
        """
        if self.track_costs and self.cost_fn is None and not costs.loaded():
            await costs.load_prices()
        stored = await self.store.get_messages(self.conversation_id)
        await self._load_attachments(stored)
        history = self._history(stored, await self._system_prompt())
        request = await self._request(self.provider, self.model, history, primary=True)
        await self._note_images_left_out(self.provider, self.model, history, stored)
        await self._note_trim(request, stored)
        mid = await self.store.begin_assistant_message(
            self.conversation_id, provider=self.provider.name, model=self.model, endpoint=self.endpoint
        )
        chain: list[tuple[BaseProvider | Candidate, str]] = [(self.provider, self.model)]
        chain += [(c, c.model) for c in self.fallback]
        attempts: list[dict[str, Any]] = []
        index = -1
        retry = False
        while index + 1 < len(chain) or retry:
            if not retry:
                index += 1
            retry = False
            who, model = chain[index]
            progress = Progress()
            provider = who if isinstance(who, BaseProvider) else None
            try:
                if provider is None:
                    assert isinstance(who, Candidate)
                    provider = who.provider()
                    request = await self._request(provider, model, history, primary=False)
                if request.window.unreachable is not None:
                    raise request.window.unreachable  # nothing answered: same as a failed attempt
                _restore_thinking(provider, stored)
                progress.started = time.perf_counter()  # TTFT counts from the request, not discovery
                await self._stream(provider, model, request.messages, mid, progress, toolset.definitions)
            except asyncio.CancelledError:
                # Shielded so a second cancel cannot leave the row in 'streaming'.
                await asyncio.shield(self._finish(mid, "interrupted", provider, model, request, progress,
                                                  attempts))
                raise
            except ProviderError as exc:
                endpoint = provider.base_url if provider else None
                if (toolset and provider is not None and not progress.shown and _refuses_tools(exc)
                        and (provider.name, model) not in self._tools_as_text):
                    self._tools_as_text.add((provider.name, model))
                    await self._note(TOOLS_AS_TEXT, f"{self._label(who)} · {model} does not take tools in "
                                     "its API; they are described in the prompt instead.",
                                     {"provider": provider.name, "model": model})
                    retry = True
                    continue
                if index + 1 < len(chain) and may_fall_back(exc, output_began=progress.shown):
                    why = notes.failure_reason(exc)
                    attempts.append({"provider": provider.name if provider else _name(who), "model": model,
                                     "endpoint": endpoint, "error": exc.kind, "message": str(exc),
                                     "label": self._label(who), "why": why})
                    nxt, nxt_model = chain[index + 1]
                    text = (f"{self._label(who)} · {model} could not answer ({why}); "
                            f"trying {self._label(nxt)} · {nxt_model}.")
                    self._emit(ReplyEvent("fallback", mid, text, error=str(exc)))
                    continue
                if attempts:
                    await self._note_failover(attempts, None)
                failed = await self._finish(mid, "error", provider, model, request, progress, attempts, exc)
                return failed, None
            if attempts:
                await self._note_failover(attempts, notes.target_words(
                    self._label(who), progress.model or model, provider.base_url if provider else None))
            result = await self._finish(mid, "complete", provider, model, request, progress, attempts)
            return result, progress.tool_calls
        raise AssertionError("unreachable: the last candidate always finishes")  # pragma: no cover

    async def _stream(self, provider: BaseProvider, model: str, messages: list[Message], mid: int,
                      progress: Progress, tools: list[ToolDefinition] | None = None) -> None:
        """Run one attempt as a :class:`~victor_gui.services.generation.Generation` (the one
        streaming path of the app) and commit its deltas to the store as they arrive.

        The Generation's listener is synchronous, so deltas are queued and written here (the
        store buffers and commits them by time/size). A stop cancels this task: the Generation
        is cancelled too (its HTTP stream is closed), the queued text is still committed, and
        the cancel goes on to ``_reply`` which marks the row ``interrupted``. A failed stream
        re-raises its typed error so the fallback chain can decide.
        """
        as_text = bool(tools) and (provider.name, model) in self._tools_as_text
        if as_text and tools:
            messages = _with_tools_prompt(messages, tools)
        wire = request_kwargs(dialect_of(provider), self.sampling)
        planned = self._num_ctx.get((id(provider), model))
        if planned and "num_ctx" not in wire:
            wire["num_ctx"] = planned  # Ollama: the fit plan's context, not Ollama's default
        gen = Generation(provider, messages, model=model, temperature=self.temperature,
                         max_tokens=self.max_tokens, tools=None if as_text else (tools or None),
                         **{**wire, **self.stream_options})
        queued: list[tuple[str, str]] = []
        wake = asyncio.Event()

        def on_delta(state: ReplyState, delta: ReplyDelta) -> None:
            if delta.content or delta.reasoning:
                if progress.first is None:
                    progress.first = state.first_token_at or time.perf_counter()
                progress.shown = True
                progress.add_text(delta.content)
                queued.append((delta.content, delta.reasoning))
                self._emit(ReplyEvent("delta", mid, delta.content, delta.reasoning))
            elif delta.tool_call_deltas:
                progress.shown = True
            wake.set()

        async def commit() -> None:
            while queued:
                text, reasoning = queued.pop(0)
                try:
                    await self.store.append_partial(mid, text, reasoning)
                except StorageError as exc:  # the text stays buffered in the store and is retried
                    self._save_failed(mid, exc)

        gen.add_listener(on_delta)
        self.generation = gen
        task = gen.start()
        try:
            while not task.done():
                await commit()
                wake.clear()
                waiter = asyncio.ensure_future(wake.wait())
                try:
                    await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
            await commit()
        except asyncio.CancelledError:
            gen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)  # the stream is closed before the row is finished
            await asyncio.shield(commit())
            # A stopped reply keeps the figures of what arrived (its token count and speed are
            # stored with it and shown when the chat is reopened).
            progress.usage, progress.timings = gen.state.usage, gen.state.timings
            progress.tokens = gen.state.completion_tokens
            progress.finished = gen.state.finished_at
            raise
        state = gen.state
        progress.usage = state.usage
        progress.timings = state.timings
        progress.tool_calls = state.tool_calls or None
        progress.thinking_blocks = state.thinking_blocks
        if as_text and tools and not progress.tool_calls and state.content:
            calls, _rest = parse_tool_calls_from_text(state.content, {t.name for t in tools})
            progress.tool_calls = calls or None
        progress.model = state.answered_model
        progress.tokens = state.completion_tokens
        progress.finished = state.finished_at
        if state.status is ReplyStatus.ERROR and state.error is not None:
            raise state.error

    def _save_failed(self, mid: int, exc: StorageError) -> None:
        """Tell the user a reply could not be saved, and why (once per reason and reply): the
        reply keeps showing, the store keeps its text and retries. Not stored (it could not be)."""
        text = str(exc)
        if self._save_error == (mid, text):
            return
        self._save_error = (mid, text)
        log.warning("saving reply %s failed: %s", mid, text)
        self._emit(ReplyEvent("note", mid, text, meta={"kind": SAVE_FAILED}))

    def _answered_by(self, provider: BaseProvider | None) -> str | None:
        """The label of the provider that answered, when it is not just the provider's name."""
        if provider is None:
            return None
        if provider is self.provider:
            return self.label if self.label and self.label != provider.name else None
        # A profile's candidate is named by its provider id ("llamacpp"): shown as "llama.cpp".
        return next((self._label(c) for c in self.fallback if c._instance is provider), None)

    def _label(self, who: BaseProvider | Candidate) -> str:
        if who is self.provider:
            return self.label or display_name_of(who)
        if isinstance(who, Candidate):  # a profile's "vllm"; a group's label stays as is
            return display_name(who.provider_name)
        return display_name_of(who)

    async def _note_failover(self, attempts: list[dict[str, Any]], answered: str | None) -> None:
        """The one stored note saying which targets did not answer, why, and which one did
        (``answered`` None: none did). The window and the headless chat both show it."""
        failed = [(notes.target_words(a["label"], a["model"], a["endpoint"]), a["why"]) for a in attempts]
        text = notes.failover_text(failed, answered)
        keys = ("label", "model", "endpoint", "error", "why")
        meta = {"kind": notes.FAILOVER, "answered": answered,
                "failed": [{k: a[k] for k in keys} for a in attempts]}
        note_id = await self.store.add_message(self.conversation_id, NOTE_ROLE, text, meta=meta)
        self._emit(ReplyEvent("note", note_id, text, meta=meta))

    async def _finish(
        self,
        mid: int,
        status: str,
        provider: BaseProvider | None,
        model: str,
        request: RequestPlan,
        progress: Progress,
        attempts: list[dict[str, Any]],
        error: ProviderError | None = None,
    ) -> ReplyResult:
        ended = time.perf_counter()
        if error is not None and error.partial_content and not progress.text:
            try:
                await self.store.append_partial(mid, error.partial_content)
            except StorageError as exc:
                self._save_failed(mid, exc)
        timings = reply_timings(progress.started, progress.first, progress.finished or ended, progress.usage,
                                progress.timings, tokens=progress.tokens)
        answered_model = progress.model or model
        cost = self._cost(provider, answered_model, progress.usage) if provider is not None else None
        meta: dict[str, Any] = {}
        answered_by = self._answered_by(provider)
        if answered_by:
            meta["answered_by"] = answered_by
        if attempts:
            meta["fallback"] = {"reason": attempts[0]["error"], "attempts": attempts}
        if request.trim.trimmed:
            meta["trimmed_turns"] = request.trim.dropped_turns
            meta["context_window"] = request.window.tokens
        if request.repairs:
            meta["repairs"] = request.repairs
        if sources := self._sources_meta():
            meta["sources"] = sources
        if progress.thinking_blocks and progress.tool_calls:
            # Signed thinking (Anthropic, Bedrock) must be replayed with its tool calls: kept
            # with the message so a tool loop with thinking goes on after a restart.
            meta["thinking_blocks"] = progress.thinking_blocks
        usage = progress.usage
        if usage is None and status == "interrupted" and progress.tokens:
            usage = Usage(completion_tokens=progress.tokens)  # the tokens counted before the stop
        finish = functools.partial(
            self.store.finish_message,
            mid,
            status,
            usage=usage,
            timings=timings,
            cost=cost,
            tool_calls=progress.tool_calls,
            error=str(error) if error else None,
            model=answered_model,
            provider=provider.name if provider is not None else None,
            endpoint=provider.base_url if provider is not None and attempts else None,
            meta=meta or None,
        )
        for wait in (*_FINISH_RETRIES_S, None):
            try:
                await finish()
                break
            except StorageError as exc:
                # The store kept the text; a lock or a full disk may clear. If not, the row
                # stays 'streaming' with its saved chunks and the next open marks it interrupted.
                self._save_failed(mid, exc)
                if wait is not None:
                    await asyncio.sleep(wait)
        self._emit(ReplyEvent("finished", mid, status=status, error=str(error) if error else None,
                              meta=meta or None))
        return ReplyResult(mid, status, error, provider.name if provider else None, answered_model,
                           bool(attempts))


def _restore_thinking(provider: BaseProvider, stored: list[StoredMessage]) -> None:
    """Hand the provider the signed thinking kept with stored tool-calling turns (a provider
    that replays none has no ``remember_thinking``)."""
    remember = getattr(provider, "remember_thinking", None)
    if remember is None:
        return
    for m in stored:
        blocks = (m.meta or {}).get("thinking_blocks")
        if m.role == "assistant" and m.tool_calls and isinstance(blocks, list) and blocks:
            remember([ToolCall(**c) for c in m.tool_calls], blocks)


def _refuses_tools(exc: ProviderError) -> bool:
    """A server's "this model does not support tools" (Ollama's HTTP 400, and alike)."""
    return isinstance(exc, BadRequestError) and "tool" in str(exc).lower()


def _with_tools_prompt(messages: list[Message], tools: list[ToolDefinition]) -> list[Message]:
    """``messages`` with the tools described in the system prompt (the text-calling fallback)."""
    section = tools_as_system_prompt(tools)
    if messages and messages[0].role == "system":
        first = messages[0]
        return [first.model_copy(update={"content": f"{first.text}\n\n{section}"}), *messages[1:]]
    return [Message(role="system", content=section), *messages]


def display_name_of(provider: BaseProvider) -> str:
    """What people call a provider ("llama.cpp", "LM Studio"): its catalog row's display name,
    never an internal id."""
    spec = getattr(provider, "spec", None)
    return str(getattr(spec, "display_name", None) or provider.name)


def _name(who: BaseProvider | Candidate) -> str:
    return who.name if isinstance(who, BaseProvider) else who.provider_name


async def _close_quietly(item: BaseProvider | Candidate) -> None:
    """Close a provider; a failure to close must not stop a switch (it is logged)."""
    try:
        await item.close()
    except Exception as exc:  # closing is best effort: the switch goes on
        log.warning("closing %s failed: %s", _name(item), exc)
