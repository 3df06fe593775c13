"""Start and stop a real ``llama-server`` process for tests.

:func:`start_llama_server` launches the binary on a free ``127.0.0.1`` port with the given model,
context size, KV cache types and extra arguments, sends its whole output to a log file, and
waits until ``GET /health`` answers 200. Every distinct ``/health`` answer seen on the way is
kept in :attr:`LlamaServer.health_trace`, which is how the tier observes the documented
``503 {"error":{"message":"Loading model"}}`` phase. :meth:`LlamaServer.stop` ends the process
with SIGTERM, then SIGKILL, each bounded in time.

This is test scaffolding run from synchronous pytest fixtures, so it uses blocking calls; the
async code under test talks to the server over HTTP like any client.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.servers.base import free_port
from tests.support.llama_build import find_binary, missing_reason


class LlamaServerError(RuntimeError):
    """The server did not come up; the message carries the tail of its log."""


@dataclass(frozen=True)
class HealthObservation:
    """One distinct answer of ``GET /health`` while waiting for readiness."""

    status: int | None  # None: connection refused (HTTP not listening yet)
    body: object  # parsed JSON, raw text, or None
    at_s: float  # seconds since the process was started


@dataclass
class LlamaServer:
    """A running ``llama-server`` process."""

    process: subprocess.Popen[bytes]
    port: int
    model: Path
    args: list[str]
    log_path: Path
    started_at: float
    ready_s: float = 0.0
    health_trace: list[HealthObservation] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no ``/v1``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL at once (for tests of a server dying mid-stream)."""
        if self.running:
            self.process.kill()
        self.process.wait(timeout=5)

    def stop(self, grace_s: float = 3.0) -> int:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL; returns the exit status."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(timeout=5)


def server_args(model: Path, port: int, *, ctx: int, cache_type_k: str, cache_type_v: str | None,
                threads: int, parallel: int, verbose: bool, extra_args: Sequence[str]) -> list[str]:
    """The command-line arguments (after the binary) :func:`start_llama_server` uses."""
    args = [
        "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
        "-c", str(ctx), "-t", str(threads), "-np", str(parallel),
        "-ctk", cache_type_k, "-ctv", cache_type_v or cache_type_k,
    ]
    if verbose:
        args += ["-lv", "4"]  # prints model / KV / compute buffer sizes (llama_memory parses them)
    return args + list(extra_args)


def start_llama_server(
    model: str | Path,
    *,
    ctx: int = 4096,
    cache_type_k: str = "f16",
    cache_type_v: str | None = None,
    threads: int = 2,
    parallel: int = 1,
    verbose: bool = False,
    extra_args: Sequence[str] = (),
    binary: str | Path | None = None,
    log_dir: str | Path | None = None,
    ready_timeout_s: float = 30.0,
    poll_s: float = 0.005,
) -> LlamaServer:
    """Start ``llama-server`` and return once ``/health`` is 200.

    ``cache_type_v`` defaults to ``cache_type_k``. ``-fa`` stays at the server's default
    (auto), which turns flash attention on where a quantized V cache needs it. Raises
    :class:`LlamaServerError` (with the log tail) if the process exits or is not ready within
    ``ready_timeout_s``; the process is stopped in that case.
    """
    exe = Path(binary) if binary else find_binary()
    if exe is None:
        raise LlamaServerError(missing_reason())
    model = Path(model)
    log_root = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="llama-server-"))
    log_root.mkdir(parents=True, exist_ok=True)
    last_error: LlamaServerError | None = None
    # free_port() can race with another process grabbing the port; a couple of retries cover it.
    for _attempt in range(3):
        port = free_port()
        args = server_args(model, port, ctx=ctx, cache_type_k=cache_type_k,
                           cache_type_v=cache_type_v, threads=threads, parallel=parallel,
                           verbose=verbose, extra_args=extra_args)
        log_path = log_root / f"llama-server-{port}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([str(exe), *args], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=_server_env(),
                                    preexec_fn=_die_with_parent())
        server = LlamaServer(proc, port, model, args, log_path, time.monotonic())
        try:
            _wait_ready(server, ready_timeout_s, poll_s)
            return server
        except LlamaServerError as exc:
            server.stop()
            last_error = exc
            if "bind" not in server.log_text().lower():
                raise
    assert last_error is not None
    raise last_error


@contextlib.contextmanager
def running_llama_server(model: str | Path, **kwargs: object) -> Iterator[LlamaServer]:
    """Context-manager form of :func:`start_llama_server` that always stops the server."""
    server = start_llama_server(model, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, have the kernel SIGTERM the server when the test process dies (a killed or
    timed-out pytest must not leave servers behind)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def arm() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return arm


def _server_env() -> dict[str, str]:
    # LLAMA_ARG_* variables from the developer's shell would silently change the server's
    # configuration under the tests; drop them.
    return {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_")}


def _wait_ready(server: LlamaServer, timeout_s: float, poll_s: float) -> None:
    deadline = server.started_at + timeout_s
    last: tuple[int | None, str] | None = None
    with httpx.Client(timeout=httpx.Timeout(2.0, connect=0.5)) as client:
        while True:
            now = time.monotonic()
            if not server.running:
                raise LlamaServerError(
                    f"llama-server exited with {server.process.returncode} before it was ready:\n"
                    + _tail(server.log_text()))
            if now > deadline:
                raise LlamaServerError(f"llama-server not ready after {timeout_s} s:\n"
                                       + _tail(server.log_text()))
            status, text = _probe(client, server.base_url + "/health")
            if (status, text) != last:
                server.health_trace.append(HealthObservation(status, _parse(text), now - server.started_at))
                last = (status, text)
            if status == 200:
                server.ready_s = now - server.started_at
                return
            time.sleep(poll_s)


def _probe(client: httpx.Client, url: str) -> tuple[int | None, str]:
    try:
        response = client.get(url)
    except httpx.TransportError:
        return None, ""
    return response.status_code, response.text


def _parse(text: str) -> object:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])
