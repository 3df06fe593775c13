"""The app's tools, in one owner: the MCP host over ``mcp.json``, the approval rules, and the
import of another client's file (which reloads the host so the new servers show at once).

The window hands :attr:`McpTools.host` to every chat pane and the Settings → Tools page; it
follows :meth:`subscribe` to learn when the host was replaced (after an import).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from victor_gui.errors import ConfigError
from victor_gui.services.mcp_config import ImportResult, SecretReader, SecretWriter, import_mcp_json
from victor_gui.services.mcp_host import McpHost
from victor_gui.services.settings_service import SettingsService
from victor_gui.services.tool_approvals import ToolApprovals

log = logging.getLogger(__name__)


class McpTools:
    """Owns the MCP host and the approval rules for the app's lifetime."""

    def __init__(self, settings: SettingsService, *, path: Path | None = None,
                 secrets: SecretReader | None = None, host_options: dict[str, Any] | None = None) -> None:
        self.path = path
        self.secrets = secrets
        self.host_options = dict(host_options or {})  # McpHost's options, e.g. init_timeout_s
        self.approvals = ToolApprovals(settings)
        self.host = McpHost([])
        self.problem: str | None = None  # why mcp.json could not be used at all, if so
        self._listeners: list[Callable[[McpHost], None]] = []

    async def start(self) -> McpHost:
        """Read mcp.json (off the loop) and serve its servers; a file that cannot be used leaves
        no servers and :attr:`problem` says why. Servers start on first use, not here."""
        try:
            host = await McpHost.from_config(self.path, secrets=self.secrets, **self.host_options)
            self.problem = None
        except ConfigError as exc:
            log.warning("mcp.json not used: %s", exc)
            self.problem = str(exc)
            host = McpHost([])
            host.config_path = self.path
        old, self.host = self.host, host
        for listener in list(self._listeners):
            listener(host)
        await old.aclose()
        return host

    def subscribe(self, listener: Callable[[McpHost], None]) -> Callable[[], None]:
        """Hear when the host is replaced (after an import); returns the call that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @property
    def config_path(self) -> Path | None:
        return self.host.config_path or self.path

    async def import_file(self, source: Path) -> str:
        """Merge another client's MCP file (Claude Desktop, Cursor, LM Studio) into mcp.json,
        secrets to the keyring, then serve the new servers; returns the sentence to show."""
        writer = cast("SecretWriter", self.secrets) if hasattr(self.secrets, "set_key") else None
        try:
            result = await asyncio.to_thread(import_mcp_json, source, self.config_path, secrets=writer)
        except ConfigError as exc:
            return f"Nothing was imported: {exc}"
        await self.start()
        return import_sentence(result)

    async def aclose(self) -> None:
        """Stop every MCP server (their whole process groups)."""
        await self.host.aclose()


def import_sentence(result: ImportResult) -> str:
    """What an import did, in one line."""
    parts = []
    if result.added:
        parts.append(f"added {', '.join(result.added)}")
    if result.replaced:
        parts.append(f"replaced {', '.join(result.replaced)}")
    if result.kept:
        parts.append(f"kept your own {', '.join(result.kept)}")
    if result.skipped:
        parts.append("skipped " + "; ".join(f"{k} ({v})" for k, v in result.skipped.items()))
    if result.secrets_moved:
        parts.append(f"{len(result.secrets_moved)} secret value(s) moved to the keyring")
    return ("Imported: " + ", ".join(parts) + ".") if parts else "The file holds no MCP servers."
