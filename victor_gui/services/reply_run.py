"""One reply of a chat session, as a mixin of :class:`~victor_gui.services.chat_session.ChatSession`:
a model turn with its fallback chain (the session's provider, then each candidate, only while
nothing was shown), and, while the turn asks for tools and tools are on, the calls run and the
model is asked again, up to the rounds bound. A server that refuses the ``tools`` field is asked
again with the tools described in the prompt; a failover is told in one stored note.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from victor_gui.errors import BadRequestError, ProviderError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.types import ToolCall
from victor_gui.services import costs, notes
from victor_gui.services.chat_requests import RequestsMixin
from victor_gui.services.chat_tools import TOOL_ROUNDS, ToolRoundsMixin
from victor_gui.services.fallback import Candidate, may_fall_back
from victor_gui.services.reply_attempt import AttemptMixin, name_of
from victor_gui.services.reply_types import Progress, ReplyEvent, ReplyResult
from victor_gui.services.tool_loop import ToolSet
from victor_gui.storage.models import NOTE_ROLE, StoredMessage

# Note kinds of the tool loop (stored notes: the transcript shows them, no model sees them).
TOOLS_AS_TEXT = "tools_as_text"


class ReplyRunMixin(ToolRoundsMixin, RequestsMixin, AttemptMixin):
    """The rounds and the fallback chain of one reply; see the module doc."""

    endpoint: str | None

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
                    attempts.append({"provider": provider.name if provider else name_of(who), "model": model,
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


