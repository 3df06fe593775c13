"""Small real in-process stand-ins for the MCP host's status side and the approvals service,
for the tools views' tests and screenshots (issue 12): they keep state and call back like the
real ones, through the views' protocols (ui.tools_switch.ServerStatusSource,
ui.settings_tools.ServerControl / ApprovalRules)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from victor_gui.services.tool_types import McpServerStatus, ServerState


class StatusBoard:
    """A real, tiny server-status source: what the MCP host offers the views."""

    def __init__(self, statuses: list[McpServerStatus]) -> None:
        self._statuses = statuses
        self._listeners: list[Callable[[McpServerStatus], None]] = []
        self.restarted: list[str] = []

    def statuses(self) -> list[McpServerStatus]:
        return list(self._statuses)

    def subscribe(self, callback: Callable[[McpServerStatus], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def set(self, status: McpServerStatus) -> None:
        self._statuses = [status if s.name == status.name else s for s in self._statuses]
        for cb in list(self._listeners):
            cb(status)

    async def restart(self, name: str) -> None:
        self.restarted.append(name)
        old = next(s for s in self._statuses if s.name == name)
        self.set(McpServerStatus(name, old.transport, ServerState.READY, tool_names=old.tool_names, pid=4242))


class MemoryRules:
    """Approval rules in the settings shape ``{server: {"all": bool, "tools": [...]}}``."""

    def __init__(self, rules: dict[str, dict[str, Any]]) -> None:
        self.table = rules
        self.revoked: list[tuple[str, str | None]] = []

    def rules(self) -> dict[str, dict[str, Any]]:
        return json.loads(json.dumps(self.table))

    async def revoke(self, server: str, tool: str | None = None) -> None:
        await asyncio.sleep(0)  # an async settings write, as the real one is
        self.revoked.append((server, tool))
        rule = self.table.get(server, {})
        if tool is None:
            rule["all"] = False
        else:
            rule["tools"] = [t for t in rule.get("tools", []) if t != tool]
        if not rule.get("all") and not rule.get("tools"):
            self.table.pop(server, None)
