"""One streamed reply: run ``provider.stream(...)`` as a task, accumulate it, tell listeners.

:class:`Generation` is the unit a chat view (or the chat-session service) drives. It owns the
asyncio task that reads the stream, folds every :class:`~victor_gui.providers.types.StreamChunk`
into a plain :class:`ReplyState`, and calls listeners with a :class:`ReplyDelta` per chunk.
Listeners run on the loop thread and must be cheap (the chat pane only appends to a buffer and
renders it on a frame timer).

Stop is :meth:`Generation.cancel`: the state becomes ``interrupted`` at once, the partial text
stays, and the task is cancelled so the HTTP response is closed (the server sees the client
leave). Failures end as ``error`` with the typed :class:`~victor_gui.errors.ProviderError` on
the state; its ``partial_content`` holds what had arrived.

Every protocol's deltas pass through :meth:`Generation._apply`, so this is where text is made
storable: a surrogate pair split across two deltas is joined, a lone surrogate becomes U+FFFD
(:class:`~victor_gui.core.text.SurrogateJoiner`), and listeners get the cleaned delta, so what
is shown is what is stored. Text is assembled in linear time (lists joined on read) and bounded:
a tool call's arguments past 8 MiB or a reply past 32 MiB end it with ``InvalidResponseError``.

Example::

    gen = Generation(provider, messages, model="qwen3:8b")
    gen.add_listener(lambda state, delta: print(delta.content, end=""))
    state = await gen.run()
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from victor_gui.core.listeners import Listeners
from victor_gui.core.text import SurrogateJoiner, TextAssembly, clean_json_strings, clean_surrogates
from victor_gui.errors import InvalidResponseError, ProviderError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.http import transport_error
from victor_gui.providers.types import (
    MAX_TOOL_ARGUMENT_CHARS,
    Message,
    StreamChunk,
    Timings,
    ToolCall,
    ToolDefinition,
    Usage,
)
from victor_gui.services.reply_types import generation_speed

log = logging.getLogger(__name__)


class ReplyStatus(enum.StrEnum):
    """Where a reply stands."""

    PENDING = "pending"  # created, request not sent yet
    STREAMING = "streaming"  # request sent; chunks may be arriving
    DONE = "done"  # the final chunk arrived
    INTERRUPTED = "interrupted"  # stopped by the user; the partial is kept
    ERROR = "error"  # failed; ``error`` says why, ``content`` keeps the partial

    @property
    def finished(self) -> bool:
        return self in (ReplyStatus.DONE, ReplyStatus.INTERRUPTED, ReplyStatus.ERROR)


# A reply's text (content or reasoning) longer than this is a broken or hostile server, not an
# answer: the reply ends as an error (what arrived is kept) instead of growing without bound.
MAX_REPLY_CHARS = 32 * 1024 * 1024
# The stream task gives the event loop a turn after this long of uninterrupted chunk handling.
TIME_SLICE_S = 0.004


@dataclass
class PartialToolCall:
    """A tool call still streaming in (OpenAI-style fragments keyed by index)."""

    index: int
    id: str | None = None
    name: str = ""
    _arguments: TextAssembly = field(default_factory=TextAssembly, repr=False)
    _joiner: SurrogateJoiner = field(default_factory=SurrogateJoiner, repr=False)

    @property
    def arguments(self) -> str:
        """The argument text so far (surrogates cleaned, a split pair joined)."""
        return self._arguments.text

    @property
    def size(self) -> int:
        """Characters of argument text so far, without joining them."""
        return len(self._arguments)

    def add(self, fragment: str) -> None:
        self._arguments.append(self._joiner.feed(fragment))

    def end(self) -> None:
        self._arguments.append(self._joiner.flush())


@dataclass
class ReplyState:
    """Everything known about one reply so far. Plain data: safe to read from any listener."""

    provider: str
    model: str
    status: ReplyStatus = ReplyStatus.PENDING
    tool_calls: list[ToolCall] = field(default_factory=list)
    partial_tool_calls: dict[int, PartialToolCall] = field(default_factory=dict)
    usage: Usage | None = None
    server_timings: Timings | None = None
    stop_reason: str | None = None
    error: ProviderError | None = None
    # Monotonic clock readings (time.perf_counter); None until they happen.
    started_at: float | None = None
    first_token_at: float | None = None
    finished_at: float | None = None
    # Content and reasoning deltas received: the token estimate when the server sends no usage.
    delta_count: int = 0
    # The model the server says answered (an alias may resolve to a dated name), and the last
    # timings any chunk carried (server-measured or the adapter's own).
    answered_model: str | None = None
    timings: Timings | None = None
    # Signed thinking blocks the final chunk carried (``metadata["thinking_blocks"]``).
    thinking_blocks: list[dict[str, Any]] | None = None
    # The text so far, assembled in linear time (read ``content`` / ``reasoning``).
    _content: TextAssembly = field(default_factory=TextAssembly, repr=False)
    _reasoning: TextAssembly = field(default_factory=TextAssembly, repr=False)

    @property
    def content(self) -> str:
        """The answer text so far. Joined on read: a listener should use its delta instead."""
        return self._content.text

    @property
    def reasoning(self) -> str:
        """The reasoning text so far (joined on read, like :attr:`content`)."""
        return self._reasoning.text

    @property
    def ttft_ms(self) -> float | None:
        """Time to first token (content, reasoning or tool call) measured here, in ms."""
        if self.started_at is None or self.first_token_at is None:
            return None
        return (self.first_token_at - self.started_at) * 1000.0

    @property
    def completion_tokens(self) -> int:
        """Tokens generated: the server's count when it sent one, else the deltas received."""
        if self.usage is not None and self.usage.completion_tokens:
            return self.usage.completion_tokens
        return self.delta_count

    @property
    def tokens_per_second(self) -> float | None:
        """Generation speed: the server's figure when it sent one, else measured here."""
        if self.server_timings is not None and self.server_timings.tokens_per_second:
            return self.server_timings.tokens_per_second
        end = self.finished_at if self.finished_at is not None else time.perf_counter()
        return generation_speed(self.completion_tokens, self.first_token_at, end)

    def to_message(self) -> Message:
        """The reply as an assistant message for the history (partial text included)."""
        return Message(role="assistant", content=self.content, tool_calls=self.tool_calls or None,
                       reasoning=self.reasoning or None)


@dataclass(frozen=True)
class ReplyDelta:
    """What one chunk (or a status change) added. Empty strings when nothing of that kind came."""

    content: str = ""
    reasoning: str = ""
    tool_calls_changed: bool = False
    status_changed: bool = False
    tool_call_deltas: bool = False  # a tool call began or grew (output has begun: no fallback)


Listener = Callable[[ReplyState, ReplyDelta], None]


class Generation:
    """Runs one ``provider.stream(messages, model=..., ...)`` and keeps its :class:`ReplyState`.

    ``stream_kwargs`` pass through to the provider (``temperature``, ``max_tokens``, ``tools``,
    provider-specific options). A Generation runs once; make a new one to retry.
    """

    def __init__(self, provider: BaseProvider, messages: list[Message], *, model: str,
                 temperature: float = 0.7, max_tokens: int = 4096,
                 tools: list[ToolDefinition] | None = None, **stream_kwargs: Any) -> None:
        self.provider = provider
        self.messages = list(messages)
        self.model = model
        self._stream_kwargs: dict[str, Any] = dict(temperature=temperature, max_tokens=max_tokens,
                                                   tools=tools, **stream_kwargs)
        self.state = ReplyState(provider=provider.name, model=model)
        self._listeners: Listeners[[ReplyState, ReplyDelta]] = Listeners(log, "generation listener failed")
        self._task: asyncio.Task[ReplyState] | None = None
        # Every protocol's text deltas pass here: cleaned so what is shown can also be stored.
        self._content_joiner = SurrogateJoiner()
        self._reasoning_joiner = SurrogateJoiner()

    # -- listeners --------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(state, delta)`` on every change; returns a function that removes it."""
        return self._listeners.add(listener)

    def _notify(self, delta: ReplyDelta) -> None:
        self._listeners.notify(self.state, delta)

    # -- running ----------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[ReplyState]:
        """Start streaming in a task on the running loop (idempotent); returns the task."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"generation:{self.model}")
        return self._task

    async def run(self) -> ReplyState:
        """Start (if needed) and wait for the reply to finish, however it finishes."""
        task = self.start()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)
        if not task.done():  # the waiter was cancelled, not the generation
            raise asyncio.CancelledError
        return self.state

    @property
    def running(self) -> bool:
        return self._task is not None and not self.state.status.finished

    def cancel(self) -> None:
        """Stop now: the state becomes ``interrupted`` (partial kept) and the request is closed."""
        if self.state.status.finished:
            return
        self._finish(ReplyStatus.INTERRUPTED)
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def _finish(self, status: ReplyStatus, error: ProviderError | None = None) -> None:
        self._flush_held()
        self.state.status = status
        self.state.error = error
        self.state.finished_at = time.perf_counter()
        self._notify(ReplyDelta(status_changed=True))

    async def _run(self) -> ReplyState:
        state = self.state
        state.started_at = time.perf_counter()
        state.status = ReplyStatus.STREAMING
        self._notify(ReplyDelta(status_changed=True))
        try:
            stream = self.provider.stream(self.messages, model=self.model, **self._stream_kwargs)
            async with _closing(stream) as chunks:
                slice_end = time.perf_counter() + TIME_SLICE_S
                async for chunk in chunks:
                    self._apply(chunk)
                    if self.state.status.finished:  # cancelled from a listener
                        break
                    if time.perf_counter() >= slice_end:
                        # A burst already in the socket buffer (hundreds of chunks) is read
                        # without one await that suspends: give the loop a turn, or the window
                        # stops painting for as long as the burst takes to parse.
                        await asyncio.sleep(0)
                        slice_end = time.perf_counter() + TIME_SLICE_S
            if not state.status.finished:
                self._finish(ReplyStatus.DONE)
        except asyncio.CancelledError:
            if not state.status.finished:
                self._finish(ReplyStatus.INTERRUPTED)
            # Swallowed on purpose: this task's only canceller is cancel(), and the state says so.
        except ProviderError as exc:
            if exc.partial_content is None and state.content:
                exc.partial_content = state.content
            elif exc.partial_content:  # the adapter's own copy of the text: cleaned like ours
                exc.partial_content = clean_surrogates(exc.partial_content)
            self._finish(ReplyStatus.ERROR, exc)
        except httpx.HTTPError as exc:
            self._finish(ReplyStatus.ERROR, transport_error(exc, state.provider, model=self.model,
                                                            partial=state.content or None))
        except Exception as exc:  # a provider bug must end as a visible error, not a hung view
            log.exception("stream from %s failed unexpectedly", state.provider)
            self._finish(ReplyStatus.ERROR, InvalidResponseError(
                f"Unexpected failure reading the reply: {type(exc).__name__}: {exc}", state.provider,
                model=self.model, raw_error=exc, partial_content=state.content or None))
        return state

    def _apply(self, chunk: StreamChunk) -> None:
        state = self.state
        tools_changed = False
        if chunk.tool_call_deltas:
            for d in chunk.tool_call_deltas:
                part = state.partial_tool_calls.setdefault(d.index, PartialToolCall(d.index))
                part.id = d.id or part.id
                if d.name and not part.name:
                    part.name = clean_surrogates(d.name)
                part.add(d.arguments_delta)
                if part.size > MAX_TOOL_ARGUMENT_CHARS:
                    raise _too_long("A tool call's arguments", MAX_TOOL_ARGUMENT_CHARS, state, self.model)
            tools_changed = True
        if chunk.tool_calls:
            state.tool_calls = [_clean_call(c) for c in chunk.tool_calls]
            tools_changed = True
        content = self._content_joiner.feed(chunk.content) if chunk.content else ""
        reasoning = self._reasoning_joiner.feed(chunk.reasoning) if chunk.reasoning else ""
        if chunk.content or chunk.reasoning:
            state.delta_count += 1
        if (content or reasoning or tools_changed) and state.first_token_at is None:
            state.first_token_at = time.perf_counter()
        state._content.append(content)
        state._reasoning.append(reasoning)
        if len(state._content) > MAX_REPLY_CHARS or len(state._reasoning) > MAX_REPLY_CHARS:
            raise _too_long("The reply", MAX_REPLY_CHARS, state, self.model)
        if chunk.usage is not None:
            state.usage = chunk.usage
        if chunk.timings is not None:
            state.timings = chunk.timings
            if chunk.timings.source == "server":
                state.server_timings = chunk.timings
        blocks = chunk.metadata.get("thinking_blocks") if chunk.metadata else None
        if blocks and isinstance(blocks, list):
            state.thinking_blocks = blocks
        if chunk.model:
            state.answered_model = clean_surrogates(chunk.model)
        if chunk.stop_reason:
            state.stop_reason = clean_surrogates(chunk.stop_reason)
        if content or reasoning or tools_changed:
            self._notify(ReplyDelta(content, reasoning, tools_changed,
                                    tool_call_deltas=bool(chunk.tool_call_deltas)))

    def _flush_held(self) -> None:
        """The stream ended: a high surrogate still waiting for its partner becomes U+FFFD, shown
        and kept like any other delta."""
        content, reasoning = self._content_joiner.flush(), self._reasoning_joiner.flush()
        for part in self.state.partial_tool_calls.values():
            part.end()
        if content or reasoning:
            self.state._content.append(content)
            self.state._reasoning.append(reasoning)
            self._notify(ReplyDelta(content, reasoning))


def _clean_call(call: ToolCall) -> ToolCall:
    """A finished tool call whose name, id and arguments can be stored (see :mod:`victor_gui.core.text`)."""
    arguments = clean_json_strings(call.arguments)
    name, call_id = clean_surrogates(call.name), clean_surrogates(call.id)
    if arguments is call.arguments and name is call.name and call_id is call.id:
        return call
    return call.model_copy(update={"arguments": arguments, "name": name, "id": call_id})


def _too_long(what: str, limit: int, state: ReplyState, model: str) -> InvalidResponseError:
    return InvalidResponseError(f"{what} exceeded {limit // (1024 * 1024)} MiB; the server's reply was "
                                "stopped there", state.provider, model=model,
                                partial_content=state.content or None)


@contextlib.asynccontextmanager
async def _closing(stream: AsyncIterator[StreamChunk]) -> AsyncIterator[AsyncIterator[StreamChunk]]:
    """Close an async generator in this task on every exit, so httpx's response is released
    inside the loop (and the server sees us leave) rather than whenever the GC gets to it."""
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


__all__ = ["Generation", "Listener", "PartialToolCall", "ReplyDelta", "ReplyState", "ReplyStatus"]
