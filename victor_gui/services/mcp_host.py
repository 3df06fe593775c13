"""The MCP host: starts the configured MCP servers on first use and runs their tools.

Implements :class:`victor_gui.services.tool_types.ToolSource` on the official ``mcp`` SDK
(imported lazily: it is an optional extra and start-up time is measured). Each server is one
:class:`~victor_gui.services.mcp_connection.McpConnection` (its own task, transport, session and
request queue); the host holds them, reports their statuses and routes listings and calls.

Every failure comes back as a :class:`ToolOutcome` with ``is_error`` and a sentence: a call past
its ``timeout_s``, a server that crashes mid-call (state FAILED with the stderr tail; the next
use starts it again), a server that fails to start (uses within ``RETRY_AFTER_FAILED_START_S``
get that failure at once; :meth:`McpHost.restart` always tries), a result over the size cap (cut,
with a note of how much was left out).
Stdio servers run under :mod:`victor_gui.services.mcp_reaper` on POSIX, so their whole process
group goes with the app, even when the app is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from victor_gui.errors import ConfigError
from victor_gui.services.mcp_config import (
    McpServerConfig,
    SecretReader,
    default_mcp_path,
    load_mcp_config,
)
from victor_gui.services.mcp_connection import (
    INIT_TIMEOUT_S,
    MAX_RESULT_CHARS,
    RETRY_AFTER_FAILED_START_S,
    STOP_TIMEOUT_S,
    McpConnection,
    ServerGone,
    ToolRequest,
)
from victor_gui.services.tool_types import McpServerStatus, ServerTool, ToolOutcome

log = logging.getLogger(__name__)
StatusCallback = Callable[[McpServerStatus], None]


class McpHost:
    """Runs the configured MCP servers' tools; implements :class:`~victor_gui.services.tool_types.ToolSource`.

    Servers start lazily, on the first :meth:`tools` or :meth:`call` that names them. Views read
    :meth:`statuses` and :meth:`subscribe` to state changes. Call :meth:`aclose` on exit.
    """

    def __init__(self, servers: Sequence[McpServerConfig], *, secrets: SecretReader | None = None,
                 init_timeout_s: float = INIT_TIMEOUT_S, max_result_chars: int = MAX_RESULT_CHARS,
                 use_reaper: bool = True, retry_after_s: float = RETRY_AFTER_FAILED_START_S) -> None:
        self.secrets = secrets
        self.init_timeout_s = init_timeout_s
        self.retry_after_s = retry_after_s
        self.max_result_chars = max_result_chars
        self.use_reaper = use_reaper
        self._servers: dict[str, McpConnection] = {}
        for config in servers:
            self._servers[config.name] = McpConnection(config, self)
        self._subscribers: list[StatusCallback] = []
        self._closed = False
        self.problems: dict[str, ConfigError] = {}  # mcp.json entries left out, by name
        self.config_path: Path | None = None

    @classmethod
    async def from_config(cls, path: Path | None = None, *, secrets: SecretReader | None = None,
                          **options: Any) -> McpHost:
        """A host for the servers of ``mcp.json`` (default: the app's config folder), read off the
        loop. A bad entry is logged and kept in :attr:`problems`; the good ones are served. A file
        that cannot be used at all raises :class:`ConfigError`."""
        config = await asyncio.to_thread(load_mcp_config, path)
        for name, problem in config.problems.items():
            log.warning("MCP server %r left out: %s", name, problem)
        host = cls(list(config.servers.values()), secrets=secrets, **options)
        host.problems = dict(config.problems)
        host.config_path = path or default_mcp_path()
        return host

    # ---- views -----------------------------------------------------------------------------

    def statuses(self) -> list[McpServerStatus]:
        """Every configured server with its state, in configuration order."""
        return [server.status() for server in self._servers.values()]

    def subscribe(self, callback: StatusCallback) -> Callable[[], None]:
        """Call ``callback(status)`` on each state change; returns the function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def server_pids(self, besides: McpConnection) -> set[int]:
        """The process ids the servers other than ``besides`` run as (a starting stdio server
        tells its own child from theirs)."""
        return {s.tail.pid for s in self._servers.values() if s is not besides and s.tail.pid}

    def notify(self, status: McpServerStatus) -> None:
        """Tell the subscribers of a server's new state (its connection calls it)."""
        for callback in list(self._subscribers):
            try:
                callback(status)
            except Exception:
                log.exception("an MCP status subscriber failed")

    # ---- ToolSource --------------------------------------------------------------------------

    async def tools(self, servers: Sequence[str]) -> list[ServerTool]:
        """The tools of ``servers`` (started as needed, concurrently). A server that cannot start
        contributes none; its status says why. Unknown names are ignored."""
        chosen = [self._servers[name] for name in dict.fromkeys(servers) if name in self._servers]
        results = await asyncio.gather(*(self._ready(server) for server in chosen))
        return [ServerTool(server=server.config.name, definition=tool)
                for server, error in zip(chosen, results, strict=True) if error is None
                for tool in server.tools]

    async def _ready(self, server: McpConnection) -> str | None:
        """None once ``server`` is READY, else the sentence saying why not."""
        if self._closed:
            return "the tools host is closed"
        try:
            await asyncio.wait_for(server.ensure_ready(), timeout=self.init_timeout_s + STOP_TIMEOUT_S + 5)
        except ServerGone as exc:
            return str(exc)
        except TimeoutError:
            return f"did not start within {self.init_timeout_s:g} s"
        return None

    async def call(self, server: str, tool: str, arguments: dict[str, Any], *,
                   timeout_s: float) -> ToolOutcome:
        """Run ``tool`` of ``server`` (started as needed), bounded by ``timeout_s``. Failures come
        back as outcomes with ``is_error``; cancelling the caller cancels the call on the server."""
        started = time.monotonic()
        entry = self._servers.get(server)
        if entry is None:
            return ToolOutcome(text=f"no MCP server named '{server}' is configured", is_error=True)
        error = await self._ready(entry)
        if error is not None:
            return ToolOutcome(text=f"the server '{server}' is not available: {error}", is_error=True,
                               duration_s=time.monotonic() - started)
        if entry.tools and tool not in {t.name for t in entry.tools}:
            return ToolOutcome(text=f"the server '{server}' has no tool named '{tool}'", is_error=True)
        future: asyncio.Future[ToolOutcome] = asyncio.get_running_loop().create_future()
        request = ToolRequest(tool=tool, arguments=arguments, timeout_s=timeout_s, future=future)
        entry.queue.put_nowait(request)
        try:
            # The server task enforces timeout_s; the margin here only guards against a stuck task.
            outcome = await asyncio.wait_for(asyncio.shield(future), timeout=timeout_s + 10)
        except TimeoutError:
            if request.cancel is not None:
                request.cancel()
            return ToolOutcome(text=f"timed out after {timeout_s:g} s", is_error=True,
                               duration_s=time.monotonic() - started)
        except asyncio.CancelledError:
            if request.cancel is not None:
                request.cancel()
            elif not future.done():
                future.cancel()
            raise
        if outcome.duration_s == 0.0:
            outcome = ToolOutcome(text=outcome.text, images=outcome.images, is_error=outcome.is_error,
                                  duration_s=time.monotonic() - started)
        return outcome

    # ---- control ------------------------------------------------------------------------------

    async def restart(self, name: str) -> None:
        """Stop ``name`` and start it again now (waiting until READY or FAILED)."""
        server = self._servers[name]
        await server.restart()
        await self._ready(server)

    async def stop(self, name: str) -> None:
        """Stop ``name`` (its process group goes with it); it starts again on its next use."""
        server = self._servers[name]
        async with server.lock:
            server.failed_start_at = None
            await server.stop()

    async def aclose(self) -> None:
        """Stop every server (concurrently, each bounded). The host runs nothing afterwards."""
        self._closed = True

        async def stop(server: McpConnection) -> None:
            async with server.lock:  # a start under way finishes first, then is stopped
                await server.stop()

        await asyncio.gather(*(stop(server) for server in self._servers.values()))
