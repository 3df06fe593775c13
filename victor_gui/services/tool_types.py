"""The contract between the chat's tool loop, the MCP host that runs tools, and the views.

Qt-free plain data and protocols only, so the three sides (``services.mcp_host``: MCP servers and
their tools; ``services.tool_loop``: a reply's rounds of calls, approvals and results; ``ui``: the
tools switch, the approval prompt, the folded calls) can be built and tested apart.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from victor_gui.providers.types import ImagePart, ToolDefinition


class ServerState(enum.StrEnum):
    """Where one MCP server is in its life."""

    STOPPED = "stopped"  # configured, not started (servers start lazily, on first use)
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"  # with ``McpServerStatus.error`` and the stderr tail


@dataclass(frozen=True)
class McpServerStatus:
    """One configured MCP server as the views list it."""

    name: str
    transport: str  # "stdio" or "http"
    state: ServerState
    error: str | None = None
    stderr_tail: str = ""
    tool_names: tuple[str, ...] = ()
    pid: int | None = None


@dataclass(frozen=True)
class ServerTool:
    """A tool one server offers: ``definition.name`` is the server's own name for it."""

    server: str
    definition: ToolDefinition


@dataclass(frozen=True)
class ToolOutcome:
    """What running a tool gave: its text (errors as text too), images, and how long it took."""

    text: str
    images: tuple[ImagePart, ...] = ()
    is_error: bool = False
    duration_s: float = 0.0


class ToolSource(Protocol):
    """Lists and runs tools (the MCP host). Every call is bounded by ``timeout_s``; a failure of
    the server (crash, no answer, a 10 MB result) comes back as an outcome with ``is_error``
    and a sentence, never as an exception other than :class:`asyncio.CancelledError`."""

    async def tools(self, servers: Sequence[str]) -> list[ServerTool]: ...

    async def call(self, server: str, tool: str, arguments: dict[str, Any], *,
                   timeout_s: float) -> ToolOutcome: ...


class ApprovalAnswer(enum.StrEnum):
    """The person's answer to one tool call (or the rule that answered for them)."""

    RUN_ONCE = "run_once"
    ALWAYS_TOOL = "always_tool"
    ALWAYS_SERVER = "always_server"
    DENY = "deny"


@dataclass(frozen=True)
class ApprovalRequest:
    """One call waiting for the person: the tool, its server, the model's arguments."""

    call_id: str
    server: str
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)


Asker = Callable[[ApprovalRequest], Awaitable[ApprovalAnswer]]
"""Asks the person (the window's approval prompt; headless: ``--approve-tools`` or deny)."""


class ToolCallState(enum.StrEnum):
    """Where one call is, as the transcript shows it."""

    WAITING = "waiting"  # for approval
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"  # ran and failed (timeout, crash, the tool's own error)
    DENIED = "denied"
    CANCELLED = "cancelled"  # Stop


@dataclass(frozen=True)
class ToolCallRecord:
    """One call as stored with the message (``meta["tool"]`` of the tool-result row) and shown
    as a folded block: name, server, arguments, result, time, state, who approved it."""

    call_id: str
    server: str
    tool: str
    arguments: dict[str, Any]
    state: ToolCallState
    result: str = ""
    duration_s: float | None = None
    approved_by: str | None = None  # an ApprovalAnswer value, or "rule:tool" / "rule:server" / "flag"

    def to_meta(self) -> dict[str, Any]:
        """The JSON-able form stored in a message's ``meta``."""
        return {"call_id": self.call_id, "server": self.server, "tool": self.tool,
                "arguments": self.arguments, "state": self.state.value, "duration_s": self.duration_s,
                "approved_by": self.approved_by}
