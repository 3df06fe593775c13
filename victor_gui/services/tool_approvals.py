"""Remembered tool approvals: which MCP servers and tools may run without asking.

Owned by the settings (``settings.tool_approvals``: ``{server: {"all": bool, "tools": [names]}}``)
through :class:`~victor_gui.services.settings_service.SettingsService`, so Settings → Tools
and the chat see one truth. Only "Always allow this tool" and "Always allow this server" are
remembered; "Run once" and "Deny" answer one call and are forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from victor_gui.config.settings import Settings, ToolApprovalRule
from victor_gui.services.settings_service import SettingsService
from victor_gui.services.tool_types import ApprovalAnswer

# ``ToolCallRecord.approved_by`` values for calls a remembered rule allowed.
RULE_TOOL = "rule:tool"
RULE_SERVER = "rule:server"


@dataclass(frozen=True)
class ApprovalRule:
    """One remembered rule as Settings → Tools lists it: a whole server, or one of its tools."""

    server: str
    tool: str | None  # None: every tool of the server


class ToolApprovals:
    """Decide, remember and revoke approvals, stored in the settings."""

    def __init__(self, settings: SettingsService) -> None:
        self.settings = settings

    def decide(self, server: str, tool: str) -> str | None:
        """``"rule:server"`` or ``"rule:tool"`` when a remembered rule allows the call; None:
        the person must be asked (or, with no one to ask, the call is denied)."""
        rule = self.settings.settings.tool_approvals.get(server)
        if rule is None:
            return None
        if rule.all:
            return RULE_SERVER
        return RULE_TOOL if tool in rule.tools else None

    async def remember(self, server: str, tool: str, answer: ApprovalAnswer) -> None:
        """Keep ``answer`` when it is one of the "always" answers; others are not remembered."""
        if answer not in (ApprovalAnswer.ALWAYS_TOOL, ApprovalAnswer.ALWAYS_SERVER):
            return

        def change(current: Settings) -> dict[str, Any]:
            rules = dict(current.tool_approvals)
            rule = rules.get(server, ToolApprovalRule())
            if answer is ApprovalAnswer.ALWAYS_SERVER:
                rule = rule.model_copy(update={"all": True})
            elif tool not in rule.tools:
                rule = rule.model_copy(update={"tools": [*rule.tools, tool]})
            rules[server] = rule
            return {"tool_approvals": {k: v.model_dump() for k, v in rules.items()}}

        await self.settings.update(change)

    async def revoke(self, server: str, tool: str | None = None) -> None:
        """Forget the server's rules (``tool`` None) or only the rule for one tool. Revoking one
        tool of an allowed server leaves the server rule: revoke the server for that."""

        def change(current: Settings) -> dict[str, Any]:
            rules = dict(current.tool_approvals)
            if tool is None:
                rules.pop(server, None)
            elif server in rules:
                rule = rules[server]
                rule = rule.model_copy(update={"tools": [t for t in rule.tools if t != tool]})
                if rule.all or rule.tools:
                    rules[server] = rule
                else:
                    rules.pop(server)
            return {"tool_approvals": {k: v.model_dump() for k, v in rules.items()}}

        await self.settings.update(change)

    def rules(self) -> list[ApprovalRule]:
        """Every remembered rule, servers in name order (a server-wide rule before its tools)."""
        out: list[ApprovalRule] = []
        for server in sorted(self.settings.settings.tool_approvals):
            rule = self.settings.settings.tool_approvals[server]
            if rule.all:
                out.append(ApprovalRule(server, None))
            out.extend(ApprovalRule(server, t) for t in sorted(rule.tools))
        return out


__all__ = ["RULE_SERVER", "RULE_TOOL", "ApprovalRule", "ToolApprovals"]
