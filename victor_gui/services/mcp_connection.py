"""One MCP server's connection: the dedicated task that holds its transport and session, the
queue its calls come through, its state, and the tail of its stderr.

Each server lives in one asyncio task that enters the official ``mcp`` SDK's transport (a stdio
process, under :mod:`victor_gui.services.mcp_reaper` on POSIX so its whole process group goes
with the app, or streamable HTTP) and ``ClientSession`` context managers and exits them in that
same task (anyio's task-group rule); calls reach it through a queue and run concurrently inside
its task group. A result is converted and bounded here (:func:`convert_result`). The servers
together, their statuses and the tool calls' entry points are
:class:`~victor_gui.services.mcp_host.McpHost`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from victor_gui.providers.types import ImagePart, ToolDefinition
from victor_gui.services.mcp_config import (
    HttpServerConfig,
    McpServerConfig,
    SecretReader,
    StdioServerConfig,
    resolve_secrets,
)
from victor_gui.services.mcp_reaper import MARKER
from victor_gui.services.tool_types import McpServerStatus, ServerState, ToolOutcome

if TYPE_CHECKING:
    from mcp.client.session import ClientSession


log = logging.getLogger(__name__)

INIT_TIMEOUT_S = 20.0
MAX_RESULT_CHARS = 1024 * 1024
MAX_IMAGE_BYTES = 8 * 1024 * 1024  # base64 characters, all images of one result together
STDERR_TAIL_BYTES = 4096
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
STOP_TIMEOUT_S = 8.0  # the SDK's own shutdown is bounded by ~6 s (grace, TERM, KILL)
# After a failed start, uses within this many seconds get the same failure at once instead of a
# fresh try: a server that never answers initialize would otherwise cost the whole init timeout
# (20 s) on every tool listing and every call of every reply. Long enough to spare a chat turn or
# two, short enough that a server fixed meanwhile comes back by itself; Restart always tries now.
RETRY_AFTER_FAILED_START_S = 30.0


class ServerGone(Exception):
    """The server's connection ended (the process exited or the HTTP session broke)."""


@dataclass(eq=False)  # hashed by identity: the server task keeps a set of the calls in flight
class ToolRequest:
    tool: str
    arguments: dict[str, Any]
    timeout_s: float
    future: asyncio.Future[ToolOutcome]
    cancel: Callable[[], None] | None = None


@dataclass
class _StderrTail:
    """The last few KB of a server's stderr, read from a pipe by a daemon thread."""

    limit: int = STDERR_TAIL_BYTES
    data: bytearray = field(default_factory=bytearray)
    pid: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def feed(self, chunk: bytes) -> None:
        with self.lock:
            self.data += chunk
            if self.pid is None and MARKER.encode() in self.data:
                head, _, rest = bytes(self.data).partition(MARKER.encode())
                number, _, rest = rest.partition(b"\n")
                with contextlib.suppress(ValueError):
                    self.pid = int(number)
                self.data = bytearray(head + rest)
            if len(self.data) > self.limit * 2:
                del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        with self.lock:
            return bytes(self.data[-self.limit:]).decode("utf-8", "replace").strip()


def _read_pipe(fd: int, tail: _StderrTail, on_eof: Callable[[], None]) -> None:
    try:
        while chunk := os.read(fd, 65536):
            tail.feed(chunk)
    except OSError:
        pass
    finally:
        os.close(fd)
        on_eof()


def _child_pids() -> set[int]:
    """The pids of this process's children now (blocking; run in a thread)."""
    import psutil

    return {child.pid for child in psutil.Process().children()}


def _spawned_child(before: set[int], taken: set[int], args: list[str]) -> int | None:
    """The pid of the server the SDK has just started without a reaper (its ``stdio_client`` does
    not expose the process; on Windows it starts the command directly): this process's child
    that is new since ``before``, not another server's (``taken``), and, when several are new
    (servers starting at once), the one whose command line ends with the server's ``args``.
    ``None`` when none is found (the server already exited). Blocking; run in a thread."""
    import psutil

    new = [c for c in psutil.Process().children() if c.pid not in before and c.pid not in taken]
    if len(new) > 1:
        matching = []
        for child in new:
            with contextlib.suppress(psutil.Error):
                if child.cmdline()[-len(args):] == args or not args:
                    matching.append(child)
        new = matching or new
    return min((c.pid for c in new), default=None)


def _leaf(exc: BaseException) -> BaseException:
    """The first non-group exception inside anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    exc = _leaf(exc)
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_connection_loss(exc: BaseException) -> bool:
    exc = _leaf(exc)
    import anyio

    lost = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, ConnectionError)
    if isinstance(exc, lost):
        return True
    return "connection closed" in str(exc).lower()


def convert_result(result: Any, *, max_chars: int = MAX_RESULT_CHARS, duration_s: float = 0.0) -> ToolOutcome:
    """An SDK ``CallToolResult`` as a :class:`ToolOutcome`: text blocks joined, images kept (up to a
    byte cap), other blocks named, the text cut at ``max_chars`` with a note of what was left out."""
    from mcp.types import EmbeddedResource, ImageContent, ResourceLink, TextContent

    parts: list[str] = []
    images: list[ImagePart] = []
    image_bytes = 0
    for block in getattr(result, "content", None) or []:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, ImageContent):
            if image_bytes + len(block.data) > MAX_IMAGE_BYTES:
                parts.append(f"[an image of {len(block.data) * 3 // 4} bytes was left out: too large]")
                continue
            try:
                images.append(ImagePart(data=block.data, media_type=block.mime_type))
                image_bytes += len(block.data)
            except ValueError:
                parts.append("[an image with invalid data was left out]")
        elif isinstance(block, EmbeddedResource):
            text = getattr(block.resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[binary resource {block.resource.uri}]")
        elif isinstance(block, ResourceLink):
            parts.append(f"[resource link: {block.uri}]")
        else:
            parts.append(f"[{getattr(block, 'type', 'unknown')} content left out]")
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False))
    text = "\n".join(parts)
    if len(text) > max_chars:
        left = len(text) - max_chars
        text = (text[:max_chars] + f"\n[result cut: {left} more characters of {len(text)} were left out]")
    return ToolOutcome(text=text, images=tuple(images), is_error=bool(getattr(result, "is_error", False)),
                       duration_s=duration_s)


class ConnectionOwner(Protocol):
    """What a connection needs of the host that owns it (:class:`~victor_gui.services.mcp_host.McpHost`):
    its settings, where state changes go, and the process ids its other servers hold."""

    secrets: SecretReader | None
    init_timeout_s: float
    retry_after_s: float
    max_result_chars: int
    use_reaper: bool

    def notify(self, status: McpServerStatus) -> None: ...

    def server_pids(self, besides: McpConnection) -> set[int]: ...


class McpConnection:
    """One configured server: its state and the task that holds its session (owned by its
    :class:`~victor_gui.services.mcp_host.McpHost`, whose settings and subscribers it uses)."""

    def __init__(self, config: McpServerConfig, host: ConnectionOwner) -> None:
        self.config = config
        self.host = host
        self.state = ServerState.STOPPED
        self.error: str | None = None
        self.tools: list[ToolDefinition] = []
        self.tail = _StderrTail()
        self.task: asyncio.Task[None] | None = None
        self.ready: asyncio.Future[None] | None = None
        self.queue: asyncio.Queue[ToolRequest | None] = asyncio.Queue()
        self.generation = 0
        self.stopping = False
        self.lock = asyncio.Lock()  # one start or restart at a time
        self.failed_start_at: float | None = None  # monotonic time of the last failed start
        self.start_error = ""  # why that start failed (without the retry note)

    def status(self) -> McpServerStatus:
        alive = self.state in (ServerState.STARTING, ServerState.READY)
        return McpServerStatus(name=self.config.name, transport=self.config.transport, state=self.state,
                               error=self.error, stderr_tail=self.tail.text(),
                               tool_names=tuple(t.name for t in self.tools),
                               pid=self.tail.pid if alive else None)

    def set_state(self, state: ServerState, error: str | None = None) -> None:
        self.state, self.error = state, error
        self.host.notify(self.status())

    # ---- life --------------------------------------------------------------------------

    async def ensure_ready(self) -> None:
        """Start the server unless it is running; wait until it is READY or raises ``ServerGone``."""
        async with self.lock:
            if self.state is ServerState.READY and self.task is not None and not self.task.done():
                return
            if self.ready is None or self.ready.done():
                left = self.retry_in()
                if left is not None:  # its last start failed a moment ago: the same answer, at once
                    raise ServerGone(f"{self.start_error}; retrying after {left:.0f} s")
                # Never started, stopped, or FAILED: this use starts it afresh.
                await self.stop()
                self.start()
            ready = self.ready
        assert ready is not None
        await asyncio.shield(ready)

    def retry_in(self) -> float | None:
        """Seconds until a use may try to start the server again after a failed start; None when
        it may try now (or its last start did not fail)."""
        if self.state is not ServerState.FAILED or self.failed_start_at is None:
            return None
        left = self.failed_start_at + self.host.retry_after_s - time.monotonic()
        return max(left, 1.0) if left > 0 else None

    async def restart(self) -> None:
        """Stop and start again now, back-off or not (the waiting is left to the caller)."""
        async with self.lock:
            self.failed_start_at = None
            await self.stop()
            self.start()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.generation += 1
        self.stopping = False
        self.tools = []
        self.tail = _StderrTail()
        self.queue = asyncio.Queue()
        self.ready = loop.create_future()
        self.set_state(ServerState.STARTING)
        self.task = loop.create_task(self._run(self.ready, self.queue, self.generation),
                                     name=f"mcp-server:{self.config.name}")

    async def stop(self) -> None:
        """Stop the server task (bounded); the state becomes STOPPED unless it had FAILED."""
        task, self.task = self.task, None
        self.stopping = True
        if task is None or task.done():
            return
        self.queue.put_nowait(None)
        done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT_S)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_TIMEOUT_S)

    def _fail(self, generation: int, error: str) -> None:
        if generation == self.generation and not self.stopping and self.state in (ServerState.STARTING,
                                                                                  ServerState.READY):
            self.set_state(ServerState.FAILED, error)
            self.queue.put_nowait(None)

    def _fail_idle(self, generation: int) -> None:
        # While STARTING the server task itself says why (initialize fails or times out).
        if self.state is ServerState.READY:
            self._fail(generation, self._server_gone_text())

    def _server_gone_text(self) -> str:
        tail = self.tail.text()
        return "the server stopped" + (f": {tail[-1500:]}" if tail else " (it wrote nothing to stderr)")

    async def _run(self, ready: asyncio.Future[None], queue: asyncio.Queue[ToolRequest | None],
                   generation: int) -> None:
        # The SDK's first import takes most of a second (pydantic models, starlette): done in a
        # thread, or a server's first start freezes the window that long.
        await asyncio.to_thread(_import_sdk)
        import anyio
        from mcp.client.session import ClientSession

        loop = asyncio.get_running_loop()
        in_flight: set[ToolRequest] = set()
        try:
            async with contextlib.AsyncExitStack() as stack:
                streams = await self._open_transport(stack, loop, generation)
                session = await stack.enter_async_context(ClientSession(*streams))
                try:
                    with anyio.fail_after(self.host.init_timeout_s):
                        await session.initialize()
                        self.tools = await self._list_tools(session)
                except TimeoutError:
                    raise ServerGone(
                        f"did not answer initialize within {self.host.init_timeout_s:g} s") from None
                self.failed_start_at = None
                self.set_state(ServerState.READY)
                if not ready.done():
                    ready.set_result(None)
                async with anyio.create_task_group() as tg:
                    while (request := await queue.get()) is not None:
                        if request.future.done():
                            continue
                        in_flight.add(request)
                        tg.start_soon(self._serve, session, request, generation, in_flight)
                    tg.cancel_scope.cancel()
        except BaseException as exc:
            leaf = _leaf(exc)
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                error = "stopped"
            elif isinstance(leaf, ServerGone) and "initialize" in str(leaf):
                error = f"{leaf}" + (f"; stderr: {self.tail.text()[-1500:]}" if self.tail.text() else "")
            elif isinstance(leaf, ServerGone):
                error = str(leaf)
            elif self.state is ServerState.STARTING and isinstance(self.config, HttpServerConfig):
                error = f"could not reach {self.config.url} ({_describe(exc)})"
            elif self.state is ServerState.STARTING:
                # Name the command: Windows' "[WinError 2] File not found" names no file (POSIX
                # goes through the reaper, whose stderr names it).
                what = f" {self.config.command!r}" if isinstance(self.config, StdioServerConfig) else ""
                error = f"could not start{what} ({_describe(exc)})"
                if self.config.transport == "stdio" and _is_connection_loss(exc):
                    tail = self.tail.text()[-1500:]
                    error = "it stopped before it answered initialize" + (
                        f": {tail}" if tail else " (it wrote nothing to stderr)")
            else:
                error = self._server_gone_text()
            if (not ready.done() and error != "stopped" and generation == self.generation
                    and not self.stopping):
                # A failed start: uses in the next RETRY_AFTER_FAILED_START_S get this at once.
                self.failed_start_at = time.monotonic()
                self.start_error = error
                error = f"{error}; retrying after {self.host.retry_after_s:g} s"
            if not ready.done():
                ready.set_exception(ServerGone(error))
                ready.exception()  # retrieved: no "never retrieved" warning when nobody waits
            self._fail(generation, error)
            if isinstance(exc, asyncio.CancelledError):
                raise
            if not isinstance(exc, Exception):
                raise
        finally:
            for request in in_flight:
                if not request.future.done():
                    request.future.set_result(ToolOutcome(text=self.error or self._server_gone_text(),
                                                          is_error=True))
            while not queue.empty():
                pending = queue.get_nowait()
                if pending is not None and not pending.future.done():
                    pending.future.set_result(ToolOutcome(text=self.error or "the server stopped",
                                                          is_error=True))
            if generation == self.generation and self.state is not ServerState.FAILED:
                self.set_state(ServerState.STOPPED)

    async def _open_transport(self, stack: contextlib.AsyncExitStack, loop: asyncio.AbstractEventLoop,
                              generation: int) -> Any:
        secrets = self.host.secrets
        values, missing = await asyncio.to_thread(resolve_secrets, self.config, secrets)
        if missing:
            raise ServerGone(f"the keyring holds no value for {', '.join(missing)}; "
                              "set it in Settings → Tools")
        if isinstance(self.config, HttpServerConfig):
            from mcp.client.streamable_http import streamable_http_client

            # The SDK's own client factory (its MCP timeouts); private, but what its session group
            # uses too: the one way to give a Streamable HTTP server its headers without httpx2 here.
            from mcp.shared._httpx_utils import create_mcp_http_client

            client = await stack.enter_async_context(create_mcp_http_client(headers=values))
            streams = await stack.enter_async_context(
                streamable_http_client(self.config.url, http_client=client))
            return streams[0], streams[1]
        from mcp.client.stdio import StdioServerParameters, stdio_client

        config: StdioServerConfig = self.config
        command, args = config.command, list(config.args)
        reaper = self.host.use_reaper and os.name == "posix"
        if reaper:
            args = ["-m", "victor_gui.services.mcp_reaper", "--ppid", str(os.getpid()), "--", command, *args]
            command = sys.executable
        before = set() if reaper else await asyncio.to_thread(_child_pids)
        params = StdioServerParameters(command=command, args=args, env=values, cwd=config.cwd)
        read_fd, write_fd = os.pipe()
        tail = self.tail

        def eof() -> None:
            # The last holder of the stderr pipe is gone: the server (and its group) exited.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._fail_idle, generation)

        threading.Thread(target=_read_pipe, args=(read_fd, tail, eof), daemon=True,
                         name=f"mcp-stderr:{self.config.name}").start()
        errlog = os.fdopen(write_fd, "w")
        try:
            streams = await stack.enter_async_context(stdio_client(params, errlog=errlog))
        finally:
            errlog.close()  # the child holds its own copy; ours would keep the reader from EOF
        if not reaper:  # no reaper reports a pid (Windows, or use_reaper=False): find the child
            taken = self.host.server_pids(besides=self)
            tail.pid = await asyncio.to_thread(_spawned_child, before, taken, args)
        return streams[0], streams[1]

    @staticmethod
    async def _list_tools(session: ClientSession) -> list[ToolDefinition]:
        from mcp.types import PaginatedRequestParams

        tools: list[ToolDefinition] = []
        cursor: str | None = None
        for _ in range(100):  # a server that pages forever is cut off
            page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
            tools.extend(ToolDefinition(name=t.name, description=t.description or "",
                                        parameters=dict(t.input_schema or _EMPTY_SCHEMA))
                         for t in page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    async def _serve(self, session: ClientSession, request: ToolRequest, generation: int,
                     in_flight: set[ToolRequest]) -> None:
        import anyio

        started = time.monotonic()
        try:
            with anyio.CancelScope() as scope:
                request.cancel = scope.cancel
                with anyio.move_on_after(request.timeout_s) as timer:
                    result = await session.call_tool(request.tool, request.arguments)
                if timer.cancelled_caught:
                    outcome = ToolOutcome(text=f"timed out after {request.timeout_s:g} s", is_error=True,
                                          duration_s=time.monotonic() - started)
                else:
                    outcome = convert_result(result, max_chars=self.host.max_result_chars,
                                             duration_s=time.monotonic() - started)
            if scope.cancelled_caught and not request.future.done():
                request.future.cancel()
            elif not request.future.done():
                request.future.set_result(outcome)
        except Exception as exc:
            duration = time.monotonic() - started
            if _is_connection_loss(exc):
                # Give the stderr reader a moment to take in the last words of the dying server.
                await anyio.sleep(0.2)
                text = self._server_gone_text()
                self._fail(generation, text)
            else:
                text = f"the server answered with an error: {_describe(exc)}"
            if not request.future.done():
                request.future.set_result(ToolOutcome(text=text, is_error=True, duration_s=duration))
        finally:
            if not request.future.done():  # cancelled with the server's task group (stop, crash)
                text = self.error or "the server was stopped during the call"
                request.future.set_result(ToolOutcome(text=text, is_error=True,
                                                      duration_s=time.monotonic() - started))
            in_flight.discard(request)


def _import_sdk() -> None:
    """Import the parts of the ``mcp`` SDK the host uses (in a worker thread; see ``_run``)."""
    import mcp.client.session
    import mcp.client.stdio
    import mcp.client.streamable_http
    import mcp.types  # noqa: F401
