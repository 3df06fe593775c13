"""The tool rounds of one reply, as a mixin of :class:`~victor_gui.services.chat_session.ChatSession`
(same object; kept apart so each file holds one responsibility): which tools a reply offers, the
bounds that come from the settings, running one turn's calls through approvals, and storing a
result row for every call, so the history keeps each call paired with its answer.

The loop that alternates model turns and tool turns is ``ReplyRunMixin._reply`` (:mod:`.reply_run`);
the approval and concurrency rules live in :mod:`victor_gui.services.tool_loop`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from victor_gui.providers.base import BaseProvider
from victor_gui.providers.protocols.tool_history import tool_images_left_out
from victor_gui.providers.types import ContentPart, TextPart, ToolCall
from victor_gui.services.reply_types import ReplyEvent
from victor_gui.services.tool_approvals import ToolApprovals
from victor_gui.services.tool_loop import (
    CANCELLED_TEXT,
    DEFAULT_MAX_ROUNDS,
    DEFAULT_TIMEOUT_S,
    ToolChoice,
    ToolRunner,
    ToolSet,
    build_toolset,
    read_tool_choice,
    store_tool_choice,
)
from victor_gui.services.tool_types import Asker, ToolCallRecord, ToolCallState, ToolSource
from victor_gui.storage.store import ConversationStore

log = logging.getLogger(__name__)

# Kinds of the notes the tool rounds store (``meta["kind"]``).
TOOLS_LEFT_OUT = "tools_left_out"
TOOL_ROUNDS = "tool_rounds"
TOOLS_UNAVAILABLE = "tools_unavailable"


class ToolRoundsMixin:
    """The tools half of a chat session; see the module doc. The attributes and the two
    methods below are the session's (set in ``ChatSession.__init__``)."""

    store: ConversationStore
    conversation_id: int
    provider: BaseProvider
    model: str
    tools: ToolSource | None
    asker: Asker | None
    approvals: ToolApprovals | None
    approve_tools: bool
    tool_runner: ToolRunner | None
    _max_rounds: int | None
    _timeout_s: float | None
    _left_out_told: tuple[str, ...]
    _emit: Callable[[ReplyEvent], None]

    async def _note(self, kind: str, text: str, extra: dict[str, Any] | None = None) -> int:
        raise NotImplementedError  # ChatSession's

    @property
    def tool_max_rounds(self) -> int:
        """Rounds of tool calls one reply may make: as given, else the settings' (read at each
        reply, so a change in Settings → Tools counts at once), else 10."""
        if self._max_rounds:
            return self._max_rounds
        if self.approvals is not None:
            return self.approvals.settings.settings.tool_max_rounds
        return DEFAULT_MAX_ROUNDS

    @property
    def tool_timeout_s(self) -> float:
        """How long one call may run: as given, else the settings', else 60 s."""
        if self._timeout_s:
            return self._timeout_s
        if self.approvals is not None:
            return self.approvals.settings.settings.tool_call_timeout_s
        return DEFAULT_TIMEOUT_S

    async def tool_choice(self) -> ToolChoice:
        """The conversation's tools switch (kept in its params, so it survives a restart)."""
        return await read_tool_choice(self.store, self.conversation_id)

    async def set_tool_choice(self, choice: ToolChoice) -> None:
        """Turn servers (and single tools) on or off for this conversation's next replies."""
        await store_tool_choice(self.store, self.conversation_id, choice)


    async def _toolset(self) -> ToolSet:
        """The tools offered in this reply (none when the conversation's switch is off)."""
        if self.tools is None:
            return ToolSet()
        choice = await self.tool_choice()
        if not choice.enabled:
            return ToolSet()
        from victor_gui.providers.capabilities import resolve_capabilities

        caps = await asyncio.to_thread(resolve_capabilities, self.provider.name, self.model)
        try:
            toolset = await build_toolset(self.tools, choice, caps.recommended_max_tools)
        except Exception as exc:  # a host that cannot list its tools: the reply goes on without them
            log.warning("listing tools failed: %s", exc)
            await self._note(TOOLS_UNAVAILABLE, f"The tools could not be listed ({exc}); this reply "
                             "has none.", {"error": str(exc)})
            return ToolSet()
        text = toolset.note()
        if text and tuple(toolset.left_out) != self._left_out_told:
            self._left_out_told = tuple(toolset.left_out)
            await self._note(TOOLS_LEFT_OUT, text, {"left_out": toolset.left_out,
                                                    "limit": caps.recommended_max_tools})
        return toolset

    async def _run_tools(self, calls: list[ToolCall], toolset: ToolSet, mid: int) -> None:
        """Approve and run one turn's calls and store one result row per call. A stop cancels
        the running calls; they are stored as cancelled before the cancel goes on."""
        assert self.tools is not None

        def told(record: ToolCallRecord) -> None:
            self._emit(ReplyEvent("tool_call", mid, record.tool, meta=event_meta(record)))

        runner = ToolRunner(self.tools, approvals=self.approvals, asker=self.asker,
                            timeout_s=self.tool_timeout_s, on_record=told, approve_all=self.approve_tools)
        self.tool_runner = runner
        try:
            await runner.run(calls, toolset)
        except asyncio.CancelledError:
            await asyncio.shield(self._store_results(calls, runner, toolset))
            raise
        await self._store_results(calls, runner, toolset)

    async def _store_results(self, calls: list[ToolCall], runner: ToolRunner, toolset: ToolSet) -> None:
        vision = self.provider.supports_vision(self.model)
        for call in calls:
            record = runner.records.get(call.id)
            if record is None:  # never reached (a stop while an earlier call waited): still answered
                server, tool = toolset.targets.get(call.name, ("", call.name))
                record = ToolCallRecord(call.id, server, tool, dict(call.arguments), ToolCallState.CANCELLED,
                                        CANCELLED_TEXT)
            content: str | list[ContentPart] = record.result
            outcome = runner.outcomes.get(call.id)
            if outcome is not None and outcome.images:
                if vision:
                    content = [TextPart(text=record.result), *outcome.images]
                else:
                    content = f"{record.result}\n{tool_images_left_out(len(outcome.images))}"
            await self.store.add_message(self.conversation_id, "tool", content, tool_call_id=call.id,
                                         meta={"tool": record.to_meta()})

    async def _store_skipped(self, calls: list[ToolCall], toolset: ToolSet, mid: int, text: str) -> None:
        """Answer calls that will not run, so the history keeps every call paired."""
        for call in calls:
            server, tool = toolset.targets.get(call.name, ("", call.name))
            record = ToolCallRecord(call.id, server, tool, dict(call.arguments), ToolCallState.ERROR, text)
            self._emit(ReplyEvent("tool_call", mid, tool, meta=event_meta(record)))
            await self.store.add_message(self.conversation_id, "tool", text, tool_call_id=call.id,
                                         meta={"tool": record.to_meta()})


def event_meta(record: ToolCallRecord) -> dict[str, Any]:
    """A ``tool_call`` event's meta: the stored form, with the result text the view shows."""
    return {**record.to_meta(), "result": record.result}
