"""One conversation in use: send, stream a reply into the store, stop, regenerate, edit and resend.

Qt-free; the UI drives it from the qasync loop and listens through ``on_event``. Every reply is
a store row from its first moment (status ``streaming``), so a stop, a provider error or a
crash never loses what already arrived:

* stop: the reply task is cancelled at once (the HTTP stream is closed by ``aclosing``), the
  text so far is kept and the message is marked ``interrupted``;
* provider error: the message is marked ``error`` with the error's (redacted) text, and any
  ``partial_content`` the error carries is kept;
* each finished reply records provider, model, endpoint, time to first token, tokens/second,
  token counts and cost.

Model switching and fallback chains are not handled here yet (see the report).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from victor_gui.errors import ProviderError, StorageError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.types import ContentPart, Message, Timings, ToolCall, Usage
from victor_gui.storage.store import ConversationStore

CostFn = Callable[[str, str, Usage], float | None]


@dataclass(frozen=True)
class ReplyEvent:
    """What the UI hears while a reply streams: ``delta`` events, then one ``finished``."""

    kind: str  # "delta" | "finished"
    message_id: int
    text: str = ""
    reasoning: str = ""
    status: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ReplyResult:
    """How a reply ended."""

    message_id: int
    status: str  # complete | interrupted | error
    error: ProviderError | None = None


class ChatSession:
    """A conversation bound to a provider and model, streaming replies into the store."""

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
        self._task: asyncio.Task[ReplyResult] | None = None

    @property
    def busy(self) -> bool:
        """Whether a reply is streaming now."""
        return self._task is not None and not self._task.done()

    # -- the public actions ----------------------------------------------------------------------

    async def send(self, content: str | Sequence[ContentPart]) -> ReplyResult:
        """Store the user's message and stream the reply to it."""
        self._check_idle()
        await self.store.add_message(self.conversation_id, "user", content)
        return await self._run_reply()

    async def regenerate(self) -> ReplyResult:
        """Replace the replies after the last user message with a fresh one."""
        self._check_idle()
        messages = await self.store.get_messages(self.conversation_id)
        users = [m for m in messages if m.role == "user"]
        if not users:
            raise StorageError("There is no user message to answer.")
        await self.store.delete_messages_from(self.conversation_id, users[-1].position + 1)
        return await self._run_reply()

    async def edit_and_resend(self, message_id: int, content: str | Sequence[ContentPart]) -> ReplyResult:
        """Change one of the user's messages, drop everything after it, and answer it again."""
        self._check_idle()
        message = await self.store.get_message(message_id)
        if message is None or message.conversation_id != self.conversation_id or message.role != "user":
            raise StorageError("Only a user message of this conversation can be edited and resent.")
        await self.store.edit_message(message_id, content)
        await self.store.delete_messages_from(self.conversation_id, message.position + 1)
        return await self._run_reply()

    async def stop(self) -> None:
        """Stop the streaming reply now; its text so far stays, marked ``interrupted``."""
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def history(self) -> list[Message]:
        """The conversation as the provider will see it (system prompt first).

        Replies that failed with nothing in them are left out; an interrupted reply is kept, as
        the user saw it.
        """
        conv = await self.store.get_conversation(self.conversation_id)
        if conv is None:
            raise StorageError(f"Conversation {self.conversation_id} no longer exists.")
        out = [Message(role="system", content=conv.system_prompt)] if conv.system_prompt else []
        for m in await self.store.get_messages(self.conversation_id):
            if m.status == "streaming" or (m.status == "error" and not m.content and not m.tool_calls):
                continue
            out.append(m.to_message())
        return out

    # -- the reply -------------------------------------------------------------------------------

    def _check_idle(self) -> None:
        if self.busy:
            raise RuntimeError("A reply is still streaming; stop it first.")

    async def _run_reply(self) -> ReplyResult:
        self._task = asyncio.get_running_loop().create_task(self._reply())
        return await self._task

    def _emit(self, event: ReplyEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    async def _reply(self) -> ReplyResult:
        messages = await self.history()
        mid = await self.store.begin_assistant_message(
            self.conversation_id, provider=self.provider.name, model=self.model, endpoint=self.endpoint
        )
        started = time.perf_counter()
        first: float | None = None
        usage: Usage | None = None
        server_timings: Timings | None = None
        tool_calls: list[ToolCall] | None = None
        model_used: str | None = None
        received = ""

        async def finish(status: str, error: ProviderError | None = None) -> ReplyResult:
            ended = time.perf_counter()
            if error is not None and error.partial_content and not received:
                await self.store.append_partial(mid, error.partial_content)
            timings = _timings(started, first, ended, usage, server_timings)
            cost = (
                self.cost_fn(self.provider.name, model_used or self.model, usage)
                if (self.cost_fn and usage)
                else None
            )
            await self.store.finish_message(
                mid,
                status,
                usage=usage,
                timings=timings,
                cost=cost,
                tool_calls=tool_calls,
                error=str(error) if error else None,
                model=model_used,
            )
            self._emit(ReplyEvent("finished", mid, status=status, error=str(error) if error else None))
            return ReplyResult(mid, status, error)

        try:
            stream = self.provider.stream(
                messages, model=self.model, temperature=self.temperature, max_tokens=self.max_tokens
            )
            async with aclosing(stream) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    if chunk.content or chunk.reasoning:
                        if first is None:
                            first = time.perf_counter()
                        received += chunk.content
                        await self.store.append_partial(mid, chunk.content, chunk.reasoning)
                        self._emit(ReplyEvent("delta", mid, chunk.content, chunk.reasoning))
                    usage = chunk.usage or usage
                    server_timings = chunk.timings or server_timings
                    tool_calls = chunk.tool_calls or tool_calls
                    model_used = chunk.model or model_used
        except asyncio.CancelledError:
            # Shielded so a second cancel cannot leave the row in 'streaming'.
            await asyncio.shield(finish("interrupted"))
            raise
        except ProviderError as exc:
            return await finish("error", exc)
        return await finish("complete")


def _timings(
    started: float, first: float | None, ended: float, usage: Usage | None, server: Timings | None
) -> Timings | None:
    """Client-measured TTFT and generation speed, preferring the server's own figures."""
    ttft = (
        server.ttft_ms
        if server and server.ttft_ms is not None
        else ((first - started) * 1000 if first is not None else None)
    )
    tps = server.tokens_per_second if server and server.tokens_per_second else None
    if tps is None and usage and usage.completion_tokens and first is not None and ended - first > 0.001:
        tps = usage.completion_tokens / (ended - first)
    if ttft is None and tps is None:
        return None
    return Timings(ttft_ms=ttft, tokens_per_second=tps, source="server" if server else "client")
