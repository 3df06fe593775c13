"""Engines the app starts itself (Qt-free, async): ``llama-server`` for a local GGUF.

:class:`EngineRunner` is the one owner of the engines this app started. :meth:`EngineRunner.plan`
reads the file's header (in a thread), estimates its fit on this machine at the chosen context
and derives the flags (:func:`~victor_gui.services.engine_flags.llama_server_args`), so the
window can show the command before anything runs. :meth:`EngineRunner.start` then

* finds the binary (:mod:`.engine_binary`: Settings, PATH, the build cache, LM Studio / Jan),
* picks a free port on 127.0.0.1 (and tries another if the server could not bind it),
* starts the process with its output captured to a log file, bounded to ``log_limit`` bytes
  (the oldest half is dropped when it grows past that) and the last lines kept in memory,
* waits for ``GET /health`` to answer 200 (``503 Loading model`` meanwhile),
* registers the server in the :class:`~victor_gui.services.server_registry.ServerRegistry`, so
  the dashboard and the chat picker show it like any endpoint.

A server that exits on its own is reported (event ``"exited"`` with the log tail) and taken out
of the registry. :meth:`EngineRunner.close` stops every engine except those started with
``keep_running``, which are started in their own session so they outlive the app.

Events (``subscribe(listener) -> unsubscribe``, ``listener(event, payload)``): ``"engines"``
(the list or a state changed; payload the :class:`Engine`) and ``"exited"`` (an engine ended
without being asked; payload the :class:`Engine`, whose :attr:`Engine.error` says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import httpx

from victor_gui.core.listeners import Listeners
from victor_gui.core.tasks import TaskSet
from victor_gui.errors import EngineError, GGUFError
from victor_gui.servers.status import ServerKind
from victor_gui.services.engine_binary import BinarySearch, find_llama_server
from victor_gui.services.engine_flags import HOST, LaunchFlags, command_text, find_mmproj, llama_server_args
from victor_gui.sizing.architecture import ModelArchitecture, from_gguf
from victor_gui.sizing.fit import CTX_PAD, FitOptions, FitResult, Measured, estimate_fit
from victor_gui.sizing.gguf_reader import read_gguf_header
from victor_gui.sizing.hardware import GpuReport

log = logging.getLogger(__name__)

Listener = Callable[[str, Any], None]
DEFAULT_CTX = 8192
LOG_LIMIT = 2 << 20  # bytes of log kept on disk per engine
TAIL_LINES = 40  # lines kept in memory for the crash report
PORT_PLACEHOLDER = 0
_PROBE = httpx.Timeout(2.0, connect=0.5)
STOPPED, STARTING, RUNNING, EXITED = "stopped", "starting", "running", "exited"


class LaunchPlan(Protocol):
    """What :meth:`EngineRunner.start` runs: one model (:class:`EnginePlan`) or the router over
    several (:class:`~victor_gui.services.engine_router.RouterPlan`)."""

    @property
    def model(self) -> str:
        """The model's path, or a label for the router."""
        ...

    @property
    def estimate_bytes(self) -> int:
        """The memory the plan expects the server to use at most (shown beside the measure)."""
        ...

    def args(self, port: int = PORT_PLACEHOLDER) -> list[str]:
        """The flags after the binary."""
        ...

    async def prepare(self, folder: Path) -> None:
        """Write what the flags refer to (the router's preset file) under ``folder``."""
        ...

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """The server's environment, from the app's (``LLAMA_ARG_*`` already removed)."""
        ...


@dataclass
class EnginePlan:
    """What :meth:`EngineRunner.start` will run: the model, its fit at ``n_ctx`` and the flags."""

    model: str
    architecture: ModelArchitecture
    fit: FitResult
    options: FitOptions
    n_ctx: int
    mmproj: str | None = None
    binary: BinarySearch | None = None

    @property
    def max_context(self) -> int:
        """The model's trained context (the most the context field offers)."""
        return self.architecture.n_ctx_train or 131072

    @property
    def estimate_bytes(self) -> int:
        return int(self.fit.total.total)

    async def prepare(self, folder: Path) -> None:
        """Nothing to write: every flag is on the command line."""

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        return env

    def args(self, port: int = PORT_PLACEHOLDER) -> list[str]:
        """The flags for ``port`` (0 in the preview: the port is picked at start)."""
        return llama_server_args(self.fit, self.options,
                                 LaunchFlags(self.model, port, self.n_ctx, self.mmproj))

    def command(self, port: int | None = None) -> str:
        """The whole command line, as the window shows it before the start."""
        binary = str(self.binary.path) if self.binary is not None and self.binary.path else "llama-server"
        text = command_text(binary, self.args(port or PORT_PLACEHOLDER))
        return text if port else text.replace("--port 0", "--port (free port)")


@dataclass
class Engine:
    """One engine this app started (or tried to)."""

    plan: LaunchPlan
    binary: str
    port: int
    args: list[str]
    log_path: Path
    keep_running: bool = False
    state: str = STARTING
    exit_code: int | None = None
    error: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    ready_s: float | None = None
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES), repr=False)
    stopping: bool = False
    measured: Measured | None = None  # the process's memory once loaded, beside plan.fit

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:<port>`` (the registry's key)."""
        return f"http://{HOST}:{self.port}"

    @property
    def name(self) -> str:
        return Path(self.plan.model).name

    @property
    def command(self) -> str:
        return command_text(self.binary, self.args)

    @property
    def running(self) -> bool:
        return self.state in (STARTING, RUNNING)

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        """The last ``lines`` lines the server printed (from memory: no file read)."""
        return "\n".join(list(self.tail)[-lines:])


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now (the server may still lose it to a race: retried)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _server_env(env: Mapping[str, str]) -> dict[str, str]:
    # LLAMA_ARG_* variables would silently override the flags the plan chose.
    return {k: v for k, v in env.items() if not k.startswith("LLAMA_ARG_")}


def _resident(pid: int) -> Measured | None:
    """The process's resident memory plus its children's (a router's models run as children)."""
    import psutil

    try:
        process = psutil.Process(pid)
        rss = int(process.memory_info().rss)
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error, OSError):
                rss += int(child.memory_info().rss)
    except (psutil.Error, OSError):
        return None
    return Measured(vram_bytes=None, total_bytes=rss, source="process memory (RSS)")


def _append_bounded(path: Path, data: bytes, limit: int) -> None:
    """Append ``data`` to ``path``; past ``limit`` bytes keep only the newest half (blocking)."""
    with open(path, "ab") as out:
        out.write(data)
        size = out.tell()
    if size > limit:
        with open(path, "rb") as f:
            f.seek(size - limit // 2)
            keep = f.read()
        with open(path, "wb") as f:
            f.write(b"[... older log lines dropped ...]\n" + keep)


class EngineRunner:
    """Starts, watches and stops the app's own engines (see the module doc).

    ``registry``: the server registry the engines are added to (None: not registered, the CLI
    and tests of the runner alone). ``binary_setting`` returns the Settings path of the binary
    (read at each start, so a change in Settings applies at once). ``gpu_report`` returns the
    machine's GPUs and RAM for the plan (None: read from the registry, else no GPU).
    """

    def __init__(self, client: httpx.AsyncClient, *, log_dir: Path, registry: Any = None,
                 binary_setting: Callable[[], str | None] | None = None,
                 gpu_report: Callable[[], GpuReport | None] | None = None,
                 env: Mapping[str, str] | None = None, ready_timeout_s: float = 180.0,
                 log_limit: int = LOG_LIMIT, options: FitOptions | None = None) -> None:
        self._client = client
        self.log_dir = Path(log_dir)
        self._registry = registry
        self._binary_setting = binary_setting or (lambda: None)
        self._gpu_report = gpu_report
        self._env = dict(os.environ if env is None else env)
        self.ready_timeout_s = ready_timeout_s
        self.log_limit = log_limit
        self.options = options or FitOptions()
        self.engines: list[Engine] = []
        self._listeners: Listeners[[str, Any]] = Listeners(log, "engine listener failed")
        self._tasks = TaskSet("engine runner")

    # -- observers ------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._listeners.add(listener)

    def _emit(self, event: str, payload: Any = None) -> None:
        self._listeners.notify(event, payload)

    @property
    def running(self) -> list[Engine]:
        return [e for e in self.engines if e.running]

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` as a task the runner keeps (and cancels on close); for views' buttons."""
        return self._tasks.spawn(coro)

    # -- planning -------------------------------------------------------------------------------

    def gpu_report(self) -> GpuReport:
        """The GPUs and RAM plans are made for (empty when unknown: CPU only)."""
        report = self._gpu_report() if self._gpu_report is not None else None
        if report is None and self._registry is not None:
            report = getattr(self._registry, "gpu_report", None)
        return report or GpuReport()

    async def find_binary(self) -> BinarySearch:
        """The ``llama-server`` to run (file system search in a thread)."""
        return await asyncio.to_thread(find_llama_server, self._binary_setting(), self._env)

    async def plan(self, model: str | Path, n_ctx: int | None = None, *,
                   report: GpuReport | None = None, binary: BinarySearch | None = None) -> EnginePlan:
        """Read ``model``'s header and plan it at ``n_ctx`` (None: the largest context that fully
        offloads, capped at the trained one and at :data:`DEFAULT_CTX` without a GPU) on
        ``report`` (None: this machine's, :meth:`gpu_report`). ``binary``: a search already
        made (planning many models searches once)."""
        path = str(model)
        try:
            header = await read_gguf_header(path)
        except (GGUFError, OSError) as exc:
            raise EngineError(f"Cannot read {Path(path).name}: {getattr(exc, 'message', exc)}") from exc
        arch = from_gguf(header)
        mmproj = await asyncio.to_thread(find_mmproj, path)
        plan = EnginePlan(path, arch, estimate_fit(arch, [], None, self.options), self.options,
                          DEFAULT_CTX, mmproj, binary or await self.find_binary())
        return self.replan(plan, n_ctx if n_ctx else self.planned_context(arch, report), report)

    def planned_context(self, arch: ModelArchitecture, report: GpuReport | None = None) -> int:
        """The context a start uses unless the user sets one: what fully offloads (capped at the
        trained context), else :data:`DEFAULT_CTX` (capped the same way)."""
        report = report or self.gpu_report()
        trained = arch.n_ctx_train or None
        if report.gpus:
            from victor_gui.sizing.fit import max_full_offload_ctx

            best = max_full_offload_ctx(arch, report.gpus, self.options, limit=trained)
            if best:
                return best
        return min(DEFAULT_CTX, trained) if trained else DEFAULT_CTX

    def replan(self, plan: EnginePlan, n_ctx: int, report: GpuReport | None = None) -> EnginePlan:
        """``plan`` at another context (the window's context field): the fit and flags follow."""
        n_ctx = max(CTX_PAD, int(n_ctx))
        report = report or self.gpu_report()
        options = replace(self.options, n_ctx=n_ctx)
        return replace(plan, n_ctx=n_ctx, options=options,
                       fit=estimate_fit(plan.architecture, report.gpus, report.ram, options))

    # -- start / stop ---------------------------------------------------------------------------

    async def start(self, plan: LaunchPlan, *, keep_running: bool = False, port: int | None = None) -> Engine:
        """Start ``plan`` and return once the server answers ``/health`` (see the module doc).
        Raises :class:`EngineError` with the log tail when it cannot."""
        search = await self.find_binary()
        if search.path is None:
            raise EngineError(search.reason)
        await asyncio.to_thread(self.log_dir.mkdir, parents=True, exist_ok=True)
        await plan.prepare(self.log_dir)
        last: EngineError | None = None
        for _attempt in range(1 if port else 3):
            engine = await self._spawn(plan, str(search.path), port or free_port(), keep_running)
            try:
                await self._wait_ready(engine)
            except EngineError as exc:
                last = exc
                await self._end(engine)
                engine.state, engine.error = EXITED, exc.message
                self._emit("engines", engine)
                if port or "bind" not in exc.log_tail.lower():
                    raise
                continue
            engine.state, engine.ready_s = RUNNING, time.monotonic() - engine.started_at
            await self.measure(engine)
            self._register(engine)
            self._tasks.spawn(self._watch(engine))
            self._emit("engines", engine)
            return engine
        assert last is not None
        raise last

    async def _spawn(self, plan: LaunchPlan, binary: str, port: int, keep_running: bool) -> Engine:
        args = plan.args(port)
        log_path = self.log_dir / f"llama-server-{port}.log"
        await asyncio.to_thread(log_path.write_bytes, f"$ {command_text(binary, args)}\n".encode())
        engine = Engine(plan, binary, port, args, log_path, keep_running)
        options: dict[str, Any] = {}
        out: Any = asyncio.subprocess.PIPE
        if keep_running:
            # Not in the app's process group, and writing its log itself: a pipe to the app
            # would break (SIGPIPE) when the app exits. The file then grows unbounded.
            out = await asyncio.to_thread(open, log_path, "ab")
            if sys.platform == "win32":
                options["creationflags"] = 0x00000200  # CREATE_NEW_PROCESS_GROUP
            else:
                options["start_new_session"] = True
        try:
            engine.process = await asyncio.create_subprocess_exec(
                binary, *args, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=asyncio.subprocess.STDOUT, env=plan.environment(_server_env(self._env)),
                **options)
        except OSError as exc:
            raise EngineError(f"Cannot start {binary}: {exc.strerror or exc}") from exc
        finally:
            if out is not asyncio.subprocess.PIPE:
                out.close()  # the child holds its own copy
        self.engines.append(engine)
        self._emit("engines", engine)
        if engine.process.stdout is not None:
            self._tasks.spawn(self._pump(engine))
        return engine

    async def _pump(self, engine: Engine) -> None:
        """Copy the server's output to its bounded log file and the in-memory tail."""
        process = engine.process
        assert process is not None and process.stdout is not None
        pending = b""
        while True:
            chunk = await process.stdout.read(65536)
            if not chunk:
                break
            await asyncio.to_thread(_append_bounded, engine.log_path, chunk, self.log_limit)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            engine.tail.extend(line.decode("utf-8", "replace").rstrip("\r") for line in lines)
            pending = pending[-4096:]  # a line without end is not kept whole
        if pending:
            engine.tail.append(pending.decode("utf-8", "replace"))

    async def _tail(self, engine: Engine, lines: int = 15) -> str:
        """The last lines of the log: from memory, or from the file when the engine writes it
        itself (``keep_running``)."""
        if engine.tail:
            return engine.log_tail(lines)

        def read_end() -> str:
            with open(engine.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
                return f.read().decode("utf-8", "replace")

        try:
            text = await asyncio.to_thread(read_end)
        except OSError:
            return ""
        engine.tail.extend(text.splitlines()[-TAIL_LINES:])
        return engine.log_tail(lines)

    async def _wait_ready(self, engine: Engine) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout_s
        process = engine.process
        assert process is not None
        while True:
            if process.returncode is not None:
                await asyncio.sleep(0.05)  # let the pump take the last lines
                tail = await self._tail(engine)
                raise EngineError(f"llama-server exited with code {process.returncode} before it was "
                                  f"ready. Last lines of its log:\n{tail}", log_tail=tail)
            if loop.time() > deadline:
                tail = await self._tail(engine)
                raise EngineError(f"llama-server was not ready after {self.ready_timeout_s:.0f} s. "
                                  f"Last lines of its log:\n{tail}", log_tail=tail)
            with contextlib.suppress(httpx.HTTPError):
                reply = await self._client.get(engine.url + "/health", timeout=_PROBE)
                if reply.status_code == 200:
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), 0.1)

    async def _watch(self, engine: Engine) -> None:
        """Report an engine that ends without being asked to (crash, killed, out of memory)."""
        assert engine.process is not None
        code = await engine.process.wait()
        if engine.stopping:
            return
        await asyncio.sleep(0.05)  # the pump's last lines
        engine.state, engine.exit_code = EXITED, code
        engine.error = (f"llama-server for {engine.name} stopped on its own (exit code {code}). "
                        f"Last lines of its log:\n{await self._tail(engine)}")
        await self._unregister(engine)
        self._emit("engines", engine)
        self._emit("exited", engine)

    def _register(self, engine: Engine) -> None:
        if self._registry is not None:
            self._registry.watch_engine(engine.url, ServerKind.LLAMACPP, f"engine:{engine.name}")

    async def _unregister(self, engine: Engine) -> None:
        if self._registry is not None:
            await self._registry.unwatch(engine.url)

    async def stop(self, engine: Engine, grace_s: float = 5.0) -> int | None:
        """Stop ``engine`` (terminate, then kill after ``grace_s``) and take it out of the
        registry; returns its exit code."""
        engine.stopping = True
        await self._unregister(engine)
        code = await self._end(engine, grace_s)
        engine.state, engine.exit_code = STOPPED, code
        self._emit("engines", engine)
        return code

    async def _end(self, engine: Engine, grace_s: float = 5.0) -> int | None:
        process = engine.process
        if process is None:
            return None
        engine.stopping = True
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        return process.returncode

    async def measure(self, engine: Engine) -> Measured | None:
        """The engine's resident memory now (psutil, in a thread): shown beside the estimate.
        GPU memory per process is not read (no portable source); ``vram_bytes`` stays None."""
        process = engine.process
        if process is None or process.returncode is not None:
            return engine.measured
        engine.measured = await asyncio.to_thread(_resident, process.pid)
        return engine.measured

    async def read_log(self, engine: Engine) -> str:
        """The engine's whole log file (bounded by ``log_limit``), read in a thread."""
        try:
            data = await asyncio.to_thread(engine.log_path.read_bytes)
        except OSError as exc:
            return f"(the log cannot be read: {exc.strerror or exc})"
        return data.decode("utf-8", "replace")

    async def close(self) -> None:
        """Stop every engine except those started with ``keep_running`` (left running,
        their output no longer read)."""
        for engine in list(self.engines):
            if engine.running and not engine.keep_running:
                await self.stop(engine)
            elif engine.running:
                engine.stopping = True
        await self._tasks.aclose()
        self._listeners.clear()


__all__ = ["DEFAULT_CTX", "Engine", "EnginePlan", "EngineRunner", "LaunchPlan", "free_port"]
