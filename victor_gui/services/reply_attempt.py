"""One attempt of a reply, as a mixin of :class:`~victor_gui.services.chat_session.ChatSession`:
streamed as a :class:`~victor_gui.services.generation.Generation` with its deltas committed to
the store as they arrive, then the row finished with its status, usage, timings, cost and
``meta`` (who answered, fallback attempts, trimming, sources, signed thinking). A save that
fails is told once per reason (a ``save_failed`` note event) and the finish is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from victor_gui.errors import ProviderError, StorageError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import display_name
from victor_gui.providers.params import dialect_of, request_kwargs
from victor_gui.providers.tool_parsing import parse_tool_calls_from_text, tools_as_system_prompt
from victor_gui.providers.types import Message, ToolDefinition, Usage
from victor_gui.services import costs
from victor_gui.services.chat_attachments import AttachmentsMixin
from victor_gui.services.fallback import Candidate
from victor_gui.services.generation import Generation, ReplyDelta, ReplyState, ReplyStatus
from victor_gui.services.reply_types import Progress, ReplyEvent, ReplyResult, RequestPlan, reply_timings
from victor_gui.storage.store import ConversationStore

log = logging.getLogger(__name__)

CostFn = Callable[[str, str, Usage], float | None]

# The ``meta.kind`` of the note event saying a reply could not be saved (an event only: the
# store is what failed). finish_message is retried after these pauses before giving up.
SAVE_FAILED = "save_failed"
_FINISH_RETRIES_S = (0.5, 1.0)


class AttemptMixin(AttachmentsMixin):
    """The streaming and storing of one attempt; see the module doc. The attributes and the
    methods declared below are the session's (set in ``ChatSession.__init__``)."""

    store: ConversationStore
    conversation_id: int
    provider: BaseProvider
    label: str | None
    fallback: list[Candidate]
    temperature: float
    max_tokens: int
    track_costs: bool
    cost_fn: CostFn | None
    stream_options: dict[str, Any]
    sampling: dict[str, Any]
    generation: Generation | None
    _num_ctx: dict[tuple[int, str], int]
    _tools_as_text: set[tuple[str, str]]
    _save_error: tuple[int, str] | None
    _emit: Callable[[ReplyEvent], None]

    def _cost(self, provider: BaseProvider, model: str, usage: Usage | None) -> float | None:
        if not self.track_costs or usage is None:
            return None
        if self.cost_fn is not None:
            return self.cost_fn(provider.name, model, usage)
        spec = getattr(provider, "spec", None)
        local = bool(getattr(spec, "is_local", False)) or costs.is_local(provider.name)
        return costs.cost_of(provider.name, model, usage, local=local)


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



def name_of(who: BaseProvider | Candidate) -> str:
    """A provider's or candidate's id ("llamacpp"), for records and logs."""
    return who.name if isinstance(who, BaseProvider) else who.provider_name
