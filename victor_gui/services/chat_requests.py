"""What one request of a chat session sends, as a mixin of
:class:`~victor_gui.services.chat_session.ChatSession` (same object; kept apart so each file holds
one responsibility): the stored history as neutral messages, the model's context window (asked
of the server, Ollama's ``num_ctx`` from the fit plan), the history repaired and trimmed to it,
and the ``trim`` note when turns are left out.
"""

from __future__ import annotations

from victor_gui.errors import StorageError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.protocols.tool_history import repair_history
from victor_gui.providers.types import Message
from victor_gui.services import notes
from victor_gui.services.chat_attachments import AttachmentsMixin
from victor_gui.services.context_trim import trim_history
from victor_gui.services.context_window import ContextWindow, discover_context_window, props_context
from victor_gui.services.ollama_context import ContextPlanner, loaded_context
from victor_gui.services.reply_types import ReplyEvent, RequestPlan
from victor_gui.storage.models import NOTE_ROLE, StoredMessage


class RequestsMixin(AttachmentsMixin):
    """The request half of a chat session; see the module doc. The attributes and the methods
    declared below are the session's (set in ``ChatSession.__init__``)."""

    max_tokens: int
    context_window: int | None
    context_planner: ContextPlanner
    _windows: dict[tuple[int, str], ContextWindow]
    _num_ctx: dict[tuple[int, str], int]

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

