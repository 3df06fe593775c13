"""Side-by-side compare: one prompt to 2–4 provider/model slots, each with its own history.

Qt-free; :mod:`victor_gui.ui.compare_view` renders it. Scheduling rule: requests to *different*
endpoints run in parallel, requests to the *same local endpoint* run one at a time. A local server
(llama-server with one slot, Ollama with ``OLLAMA_NUM_PARALLEL=1``, LM Studio) generates one
reply at a time anyway; sending two at once only splits its speed between them (or makes one
wait inside the server while our timer runs), which would make the TTFT and tokens/s shown side
by side wrong. So each local endpoint gets an :class:`asyncio.Lock` keyed by its base URL
(:func:`endpoint_key`), and a slot waits for it in FIFO order. Cloud endpoints serve many
requests at once and are not locked.

Example::

    session = CompareSession()
    a, b = session.add_slot(), session.add_slot()
    session.send("Hello", {a.id: target_for(pool, llama_choice, "qwen3-8b"),
                           b.id: target_for(pool, vllm_choice, "Qwen/Qwen3-8B")})
    await session.wait()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from victor_gui.providers.base import BaseProvider
from victor_gui.providers.endpoint_access import is_loopback_or_private
from victor_gui.providers.types import ContentPart, Message
from victor_gui.services import costs
from victor_gui.services.generation import Generation, ReplyState, ReplyStatus
from victor_gui.services.provider_choices import ProviderChoice, ProviderPool
from victor_gui.services.reply_types import reply_timings
from victor_gui.storage.store import ConversationStore

log = logging.getLogger(__name__)

MIN_SLOTS = 2
MAX_SLOTS = 4

_LOOPBACK_NAMES = {"localhost", "0.0.0.0", "::", "::1", "127.0.0.1"}


def endpoint_key(base_url: str | None, *, local: bool) -> str | None:
    """The key a request waits on: ``host:port`` of a local server, None for a cloud endpoint.

    A URL on a loopback or private address counts as local whatever the provider (an
    OpenAI-compatible entry pointed at a LAN box is still one GPU). ``localhost`` and
    ``127.0.0.1`` are the same server, so they share a key.
    """
    if not base_url:
        return "local:default" if local else None
    try:
        url = httpx.URL(base_url if "://" in base_url else f"http://{base_url}")
    except httpx.InvalidURL:
        return base_url if local else None
    host = (url.host or "").lower()
    port = url.port or (443 if url.scheme == "https" else 80)
    # The one rule for "local" (the registry and the key checks use it too).
    private = is_loopback_or_private(host.strip("[]"))
    if not (local or private):
        return None
    if host in _LOOPBACK_NAMES:
        host = "127.0.0.1"
    return f"{host}:{port}"


@dataclass(frozen=True)
class CompareTarget:
    """Where one slot's request goes: the provider, the model and the endpoint key."""

    provider: BaseProvider
    model: str
    key: str | None  # endpoint_key(); None: no queue (cloud)
    local: bool = False


def target_for(pool: ProviderPool, choice: ProviderChoice, model: str) -> CompareTarget:
    """The target for ``choice``/``model`` (the provider instance comes from ``pool``)."""
    provider = pool.get(choice)
    base_url = getattr(provider, "base_url", None) or choice.base_url
    return CompareTarget(provider, model, endpoint_key(base_url, local=choice.is_local),
                         choice.is_local)


class EndpointQueue:
    """One FIFO lock per local endpoint: a request holds it from sending until the reply ended."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def lock_for(self, key: str | None) -> asyncio.Lock | None:
        if key is None:
            return None
        return self._locks.setdefault(key, asyncio.Lock())

    def busy(self, key: str | None) -> bool:
        lock = self._locks.get(key) if key is not None else None
        return lock is not None and lock.locked()


@dataclass(frozen=True)
class ReplyRecord:
    """What is known about one assistant turn of a slot, kept for saving it to the store."""

    state: ReplyState
    cost: float | None
    endpoint: str | None


@dataclass
class CompareSlot:
    """One pane's side of the comparison: its own history and its current reply."""

    id: int
    history: list[Message] = field(default_factory=list)
    generation: Generation | None = None
    target: CompareTarget | None = None
    waiting: bool = False  # queued behind another request to the same endpoint
    cost: float | None = None  # USD of the last reply; None when unknown
    task: asyncio.Task[None] | None = None
    # history index of each assistant turn -> its figures (usage, timings, cost)
    records: dict[int, ReplyRecord] = field(default_factory=dict)
    ended: bool = True  # set just before the "finished" event (the task ends right after)

    @property
    def running(self) -> bool:
        """True from send until the reply ended (waiting in the queue included)."""
        return self.task is not None and not self.ended and not self.task.done()

    @property
    def state(self) -> ReplyState | None:
        return self.generation.state if self.generation is not None else None

    def stop(self) -> None:
        """Stop this slot: cancel its reply (partial kept) or leave the queue."""
        if self.generation is not None:
            self.generation.cancel()
        elif self.task is not None and not self.task.done():
            self.task.cancel()


# A listener gets (slot, event): "queued", "started" (slot.generation is set) or "finished".
SlotListener = Callable[[CompareSlot, str], None]


class CompareSession:
    """The slots of one comparison and the queue their requests share."""

    def __init__(self, queue: EndpointQueue | None = None) -> None:
        self.queue = queue or EndpointQueue()
        self.slots: list[CompareSlot] = []
        self._next_id = 1
        self._listeners: list[SlotListener] = []

    def add_listener(self, listener: SlotListener) -> None:
        self._listeners.append(listener)

    def _emit(self, slot: CompareSlot, event: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(slot, event)
            except Exception:  # a broken view must not stop the others
                log.exception("compare listener failed")

    # -- slots ------------------------------------------------------------------------------------

    def add_slot(self) -> CompareSlot:
        """A new empty slot (at most :data:`MAX_SLOTS`)."""
        if len(self.slots) >= MAX_SLOTS:
            raise ValueError(f"at most {MAX_SLOTS} panes")
        slot = CompareSlot(self._next_id)
        self._next_id += 1
        self.slots.append(slot)
        return slot

    def remove_slot(self, slot: CompareSlot) -> None:
        """Stop ``slot`` and forget it."""
        slot.stop()
        if slot in self.slots:
            self.slots.remove(slot)

    def slot(self, slot_id: int) -> CompareSlot:
        return next(s for s in self.slots if s.id == slot_id)

    @property
    def running(self) -> bool:
        return any(s.running for s in self.slots)

    # -- sending ----------------------------------------------------------------------------------

    def send(self, text: str, targets: Mapping[int, CompareTarget],
             contents: Mapping[int, list[ContentPart]] | None = None) -> list[asyncio.Task[None]]:
        """Append ``text`` as a user turn to every targeted slot and start their replies.

        Each slot sends its own history; slots not in ``targets`` are left alone. ``contents``
        gives a slot its turn as parts instead (the same attachments, prepared for its protocol)."""
        tasks = []
        for slot in self.slots:
            target = targets.get(slot.id)
            if target is None or slot.running:
                continue
            content = (contents or {}).get(slot.id)
            slot.history.append(Message(role="user", content=content if content is not None else text))
            tasks.append(self._start(slot, target))
        return tasks

    def retry(self, slot: CompareSlot, target: CompareTarget) -> asyncio.Task[None] | None:
        """Ask again for the last reply of ``slot`` (its history ends with the user turn)."""
        if slot.running or not slot.history or slot.history[-1].role != "user":
            return None
        return self._start(slot, target)

    def _start(self, slot: CompareSlot, target: CompareTarget) -> asyncio.Task[None]:
        slot.target = target
        slot.generation = None
        slot.cost = None
        slot.ended = False
        slot.task = asyncio.get_running_loop().create_task(self._run(slot, target),
                                                           name=f"compare:{slot.id}")
        return slot.task

    async def _run(self, slot: CompareSlot, target: CompareTarget) -> None:
        lock = self.queue.lock_for(target.key)
        acquired = False
        try:
            if lock is not None:
                if lock.locked():
                    slot.waiting = True
                    self._emit(slot, "queued")
                await lock.acquire()
                acquired = True
            slot.waiting = False
            generation = Generation(target.provider, slot.history, model=target.model)
            slot.generation = generation
            generation.start()
            self._emit(slot, "started")
            # Holds the lock until the stream is closed, a stop included (run() waits for it).
            state = await generation.run()
            slot.cost = await _cost(target, state)
            if state.status is not ReplyStatus.ERROR and (state.content or state.tool_calls):
                slot.history.append(state.to_message())
                slot.records[len(slot.history) - 1] = ReplyRecord(
                    state, slot.cost, getattr(target.provider, "base_url", None))
        except asyncio.CancelledError:
            slot.waiting = False  # stopped while queued: nothing was sent
        finally:
            if acquired and lock is not None:
                lock.release()
        slot.ended = True
        self._emit(slot, "finished")

    def stop_all(self) -> None:
        """Stop every slot (Esc): replies keep what arrived, queued ones never start."""
        for slot in self.slots:
            slot.stop()

    async def wait(self) -> None:
        """Wait until every slot's reply ended."""
        tasks = [s.task for s in self.slots if s.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        self.stop_all()
        await self.wait()


async def save_slot(store: ConversationStore, slot: CompareSlot, title: str = "") -> int:
    """Store ``slot``'s conversation as a new one (each reply with its provider, model, usage,
    timings and cost, as :class:`~victor_gui.services.chat_session.ChatSession` stores them);
    returns its id. "Continue with this one" opens it as the main chat."""
    first = next((m.text for m in slot.history if m.role == "user"), "")
    conversation = await store.create_conversation(title or _title_from(first))
    for index, message in enumerate(slot.history):
        record = slot.records.get(index)
        if record is None:
            await store.add_message(conversation.id, message.role, message.content)
            continue
        state = record.state
        ended = state.finished_at if state.finished_at is not None else time.perf_counter()
        timings = reply_timings(state.started_at or ended, state.first_token_at, ended, state.usage,
                                state.server_timings, tokens=state.completion_tokens)
        status = "interrupted" if state.status is ReplyStatus.INTERRUPTED else "complete"
        await store.add_message(
            conversation.id, "assistant", message.content, reasoning=message.reasoning or "",
            tool_calls=message.tool_calls, provider=state.provider, model=state.model,
            endpoint=record.endpoint, status=status, usage=state.usage, timings=timings,
            cost=record.cost)
    return conversation.id


def _title_from(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


async def _cost(target: CompareTarget, state: ReplyState) -> float | None:
    """USD of one reply: 0 on a local server, the price table's figure otherwise (None: unknown)."""
    if target.local:
        return 0.0
    if state.usage is None:
        return None
    if not costs.loaded():
        await costs.load_prices()  # parsed in a thread, once
    return costs.cost_of(target.provider.name, target.model, state.usage)


__all__ = [
    "MAX_SLOTS",
    "MIN_SLOTS",
    "CompareSession",
    "CompareSlot",
    "CompareTarget",
    "EndpointQueue",
    "ReplyRecord",
    "SlotListener",
    "endpoint_key",
    "save_slot",
    "target_for",
]
