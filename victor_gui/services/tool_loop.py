"""The tools of one reply: which definitions reach the model, and running a turn's calls.

Qt-free. :func:`build_toolset` turns the conversation's enabled servers into the definitions a
provider gets (names made unique across servers, bounded by the model's
``recommended_max_tools``); :class:`ToolRunner` takes one assistant turn's calls, asks for
approval (remembered rules first, then the person), runs the approved ones concurrently through
the :class:`~victor_gui.services.tool_types.ToolSource` with a per-call timeout, and hands back
one :class:`~victor_gui.services.tool_types.ToolCallRecord` per call. The rounds themselves
(store, ask the model again, the bound on rounds) belong to
:class:`~victor_gui.services.chat_session.ChatSession`.

Nothing runs without an approval that covers it: with no rule and no one to ask, the call is
denied with a sentence the model reads as the result.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from victor_gui.providers.types import ToolCall, ToolDefinition
from victor_gui.services.tool_approvals import ToolApprovals
from victor_gui.services.tool_types import (
    ApprovalAnswer,
    ApprovalRequest,
    Asker,
    ToolCallRecord,
    ToolCallState,
    ToolOutcome,
    ToolSource,
)
from victor_gui.storage.store import ConversationStore

log = logging.getLogger(__name__)

DEFAULT_MAX_ROUNDS = 10
DEFAULT_TIMEOUT_S = 60.0
# What the model reads back for calls that did not run.
DENIED_TEXT = "The user denied this call."
NO_ASKER_TEXT = ("The user denied this call: it is not allowed by a saved approval and no one "
                 "was there to approve it.")
CANCELLED_TEXT = "The call was cancelled (the user pressed Stop)."
# ``approved_by`` of calls run because the headless chat was given ``--approve-tools``.
APPROVED_BY_FLAG = "flag"
# The params key of a conversation holding its tools switch.
PARAMS_KEY = "tools"


@dataclass(frozen=True)
class ToolChoice:
    """A conversation's tools switch (``conversation.params["tools"]``): the servers that are
    on, and the tools of those servers turned off (``"server/tool"`` or a bare tool name)."""

    servers: tuple[str, ...] = ()
    off: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.servers)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> ToolChoice:
        """Read the switch from a conversation's params (anything malformed reads as off)."""
        raw = (params or {}).get(PARAMS_KEY)
        if not isinstance(raw, dict):
            return cls()
        servers = raw.get("servers")
        off = raw.get("off")
        return cls(tuple(s for s in servers if isinstance(s, str)) if isinstance(servers, list) else (),
                   tuple(s for s in off if isinstance(s, str)) if isinstance(off, list) else ())

    def to_params(self) -> dict[str, Any]:
        """The JSON-able form kept in the conversation's params."""
        return {"servers": list(self.servers), "off": list(self.off)}

    def is_off(self, server: str, tool: str) -> bool:
        return f"{server}/{tool}" in self.off or tool in self.off

    @classmethod
    def from_selection(cls, selection: Mapping[str, Sequence[str] | None],
                       tools_of: Callable[[str], Sequence[str]]) -> ToolChoice:
        """The switch as the window's tools menu gives it: ``{server: None}`` (all its tools) or
        ``{server: [tools on]}``; ``tools_of(server)`` names all of a server's tools."""
        off = [f"{server}/{tool}" for server, chosen in selection.items() if chosen is not None
               for tool in tools_of(server) if tool not in chosen]
        return cls(tuple(selection), tuple(off))

    def to_selection(self, tools_of: Callable[[str], Sequence[str]]) -> dict[str, list[str] | None]:
        """The inverse of :meth:`from_selection`, for showing a stored choice in the menu."""
        out: dict[str, list[str] | None] = {}
        for server in self.servers:
            tools = list(tools_of(server))
            kept = [t for t in tools if not self.is_off(server, t)]
            out[server] = None if len(kept) == len(tools) else kept
        return out


async def read_tool_choice(store: ConversationStore, conversation_id: int) -> ToolChoice:
    """A stored conversation's tools switch (off when it has none)."""
    conv = await store.get_conversation(conversation_id)
    return ToolChoice.from_params(conv.params if conv else None)


async def store_tool_choice(store: ConversationStore, conversation_id: int, choice: ToolChoice) -> None:
    """Keep ``choice`` in the conversation's params, the rest of them untouched."""
    conv = await store.get_conversation(conversation_id)
    params = dict(conv.params) if conv else {}
    params[PARAMS_KEY] = choice.to_params()
    await store.update_conversation(conversation_id, params=params)


@dataclass(frozen=True)
class ToolSet:
    """What one reply offers the model: the definitions (under the names the model sees), where
    each name leads (``targets[name] = (server, tool)``), and the names left out by the bound."""

    definitions: list[ToolDefinition] = field(default_factory=list)
    targets: dict[str, tuple[str, str]] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.definitions)

    def note(self) -> str | None:
        """The sentence telling the person which tools the model was not shown, or None."""
        if not self.left_out:
            return None
        shown = ", ".join(self.left_out[:10]) + (f" and {len(self.left_out) - 10} more"
                                                  if len(self.left_out) > 10 else "")
        return (f"{len(self.left_out)} tool(s) were left out because this model handles at most "
                f"{len(self.definitions)}: {shown}. Turn some servers or tools off to choose which.")


async def build_toolset(source: ToolSource, choice: ToolChoice, limit: int) -> ToolSet:
    """The definitions of the enabled servers' tools, at most ``limit`` of them (in server order,
    then the server's order). A tool keeps its own name when no other enabled server has one of
    the same name; else it is ``server__tool`` for all of them."""
    if not choice.enabled:
        return ToolSet()
    tools = [t for t in await source.tools(choice.servers) if not choice.is_off(t.server, t.definition.name)]
    counts: dict[str, int] = {}
    for t in tools:
        counts[t.definition.name] = counts.get(t.definition.name, 0) + 1
    definitions: list[ToolDefinition] = []
    targets: dict[str, tuple[str, str]] = {}
    left_out: list[str] = []
    for t in tools:
        name = t.definition.name if counts[t.definition.name] == 1 else f"{t.server}__{t.definition.name}"
        if name in targets:  # the same server listed twice: its first entry wins
            continue
        if len(definitions) >= max(0, limit):
            left_out.append(name)
            continue
        definitions.append(t.definition.model_copy(update={"name": name}))
        targets[name] = (t.server, t.definition.name)
    return ToolSet(definitions, targets, left_out)


def arguments_problem(call: ToolCall) -> str | None:
    """Why the model's arguments cannot be used, or None. The adapters keep text that is not a
    JSON object under ``_raw`` (or ``_value``) rather than failing the reply."""
    args = call.arguments
    if set(args) == {"_raw"}:
        return (f"The arguments for {call.name} were not valid JSON: {str(args['_raw'])[:200]!r}. "
                "Send a JSON object.")
    if set(args) == {"_value"}:
        return f"The arguments for {call.name} must be a JSON object, not {json.dumps(args['_value'])[:200]}."
    return None


OnRecord = Callable[[ToolCallRecord], None]


class ToolRunner:
    """Runs one turn's calls: approval in the calls' order, each approved call started at once
    (so they run concurrently), every state change told to ``on_record``.

    ``asker`` None: only calls a remembered rule allows run. ``approve_all``: every call runs
    (the headless ``--approve-tools``; recorded as approved by ``"flag"``). Cancelling
    :meth:`run` cancels the running calls; their records read ``cancelled``.
    """

    def __init__(self, source: ToolSource, *, approvals: ToolApprovals | None = None,
                 asker: Asker | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 on_record: OnRecord | None = None, approve_all: bool = False) -> None:
        self.source = source
        self.approvals = approvals
        self.asker = asker
        self.timeout_s = timeout_s
        self.on_record = on_record
        self.approve_all = approve_all
        # The records of the turn being run, by call id (read after a cancel to store them).
        self.records: dict[str, ToolCallRecord] = {}
        # Each finished call's outcome by call id (its images, for a model that takes them).
        self.outcomes: dict[str, ToolOutcome] = {}

    def _set(self, record: ToolCallRecord) -> ToolCallRecord:
        self.records[record.call_id] = record
        if self.on_record is not None:
            try:
                self.on_record(record)
            except Exception:  # a view's bug must not stop the tools
                log.exception("tool record listener failed")
        return record

    async def run(self, calls: Sequence[ToolCall], toolset: ToolSet) -> list[ToolCallRecord]:
        """Approve and run ``calls``; one record per call, in the calls' order."""
        self.records, self.outcomes = {}, {}
        tasks: list[asyncio.Task[ToolCallRecord]] = []
        order = [c.id for c in calls]
        try:
            for call in calls:
                server, tool = toolset.targets.get(call.name, ("", call.name))
                record = self._set(ToolCallRecord(call.id, server, tool, dict(call.arguments),
                                                  ToolCallState.WAITING))
                problem = (f"There is no tool named {call.name!r}." if call.name not in toolset.targets
                           else arguments_problem(call))
                if problem is not None:
                    self._set(replace(record, state=ToolCallState.ERROR, result=problem))
                    continue
                approved_by = await self._approve(record)
                if approved_by is None:
                    text = DENIED_TEXT if self.asker is not None else NO_ASKER_TEXT
                    self._set(replace(record, state=ToolCallState.DENIED, result=text))
                    continue
                record = self._set(replace(record, state=ToolCallState.RUNNING, approved_by=approved_by))
                tasks.append(asyncio.ensure_future(self._execute(record)))
            if tasks:
                await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for record in list(self.records.values()):
                if record.state in (ToolCallState.WAITING, ToolCallState.RUNNING):
                    self._set(replace(record, state=ToolCallState.CANCELLED, result=CANCELLED_TEXT))
            raise
        return [self.records[i] for i in order]

    async def _approve(self, record: ToolCallRecord) -> str | None:
        """Who allowed the call (an :class:`ApprovalAnswer` value, ``rule:…`` or ``flag``), or
        None when it must not run."""
        if self.approvals is not None:
            rule = self.approvals.decide(record.server, record.tool)
            if rule is not None:
                return rule
        if self.approve_all:
            return APPROVED_BY_FLAG
        if self.asker is None:
            return None
        answer = await self.asker(ApprovalRequest(record.call_id, record.server, record.tool,
                                                  dict(record.arguments)))
        if answer is ApprovalAnswer.DENY:
            return None
        if self.approvals is not None:
            try:
                await self.approvals.remember(record.server, record.tool, answer)
            except (OSError, ValueError) as exc:  # the call still runs; the rule is not kept
                log.warning("could not save the tool approval: %s", exc)
        return answer.value

    async def _execute(self, record: ToolCallRecord) -> ToolCallRecord:
        started = time.perf_counter()
        try:
            # The source bounds each call itself; this is a backstop for one that does not.
            outcome = await asyncio.wait_for(
                self.source.call(record.server, record.tool, dict(record.arguments),
                                 timeout_s=self.timeout_s),
                self.timeout_s + 5.0)
        except TimeoutError:
            outcome = ToolOutcome(f"The tool {record.tool} did not answer within {self.timeout_s:g} s.",
                                  is_error=True)
        except asyncio.CancelledError:
            self._set(replace(record, state=ToolCallState.CANCELLED, result=CANCELLED_TEXT,
                              duration_s=time.perf_counter() - started))
            raise
        except Exception as exc:  # the contract says outcomes, but a broken source must not end the reply
            log.exception("tool %s/%s failed", record.server, record.tool)
            outcome = ToolOutcome(f"The tool {record.tool} failed: {type(exc).__name__}: {exc}",
                                  is_error=True)
        duration = outcome.duration_s or (time.perf_counter() - started)
        state = ToolCallState.ERROR if outcome.is_error else ToolCallState.DONE
        done = self._set(replace(record, state=state, result=outcome.text, duration_s=duration))
        self.outcomes[record.call_id] = outcome
        return done


def record_from_meta(meta: Mapping[str, Any] | None) -> ToolCallRecord | None:
    """The :class:`ToolCallRecord` a tool-result row keeps in ``meta["tool"]``, or None."""
    raw = (meta or {}).get("tool")
    if not isinstance(raw, dict):
        return None
    try:
        return ToolCallRecord(str(raw["call_id"]), str(raw.get("server") or ""), str(raw.get("tool") or ""),
                              dict(raw.get("arguments") or {}), ToolCallState(raw.get("state", "done")),
                              str(raw.get("result") or ""), raw.get("duration_s"), raw.get("approved_by"))
    except (KeyError, ValueError, TypeError):
        return None


__all__ = [
    "APPROVED_BY_FLAG",
    "CANCELLED_TEXT",
    "DEFAULT_MAX_ROUNDS",
    "DEFAULT_TIMEOUT_S",
    "DENIED_TEXT",
    "NO_ASKER_TEXT",
    "PARAMS_KEY",
    "ToolChoice",
    "ToolRunner",
    "ToolSet",
    "arguments_problem",
    "build_toolset",
    "record_from_meta",
]
