"""llama-server processes running from a folder, and stopping them before that folder changes.

Why: an engine started with ``keep_running`` outlives the app (see
:mod:`~victor_gui.services.engine_runner`). On Windows a running ``llama-server.exe`` cannot be
replaced or deleted, so an upgrade or uninstall that meets the app's bundled engine still running
would leave a half-replaced install folder. The installer and uninstaller therefore run
``victor-gui-cli engine stop`` first (see packaging/installer.nsi), which stops exactly the
engines whose executable lives in the install folder — never a llama-server the user runs from
elsewhere.

Blocking (psutil walks the process table): call :func:`stop_engines_from` in a worker thread
from the event loop (:func:`stop_engines_from_async`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from victor_gui.services.engine_build import TARGET

if TYPE_CHECKING:
    import psutil

log = logging.getLogger(__name__)

# Seconds an engine is given to end after a polite terminate before it is killed: llama-server
# frees its model and ends within a second; a hung one must not hold the installer up.
GRACE_S = 5.0


@dataclass(frozen=True)
class StoppedEngine:
    """One engine that was running from the folder: its pid, executable and how it ended."""

    pid: int
    exe: str
    killed: bool  # True: it did not end within the grace period and was killed


def _is_under(path: str, folder: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(folder)
    except (OSError, ValueError):
        return False


def _executable(proc: psutil.Process) -> str:
    """The process's executable path, or "" when it cannot be read. Wine's process table has no
    image paths (``exe()`` and even ``name()`` raise a plain ``OSError`` there), but its command
    line starts with the path the engine was started by, which is absolute for ours."""
    import psutil

    try:
        return str(proc.exe())
    except (psutil.Error, OSError):
        pass
    try:
        argv = proc.cmdline()
    except (psutil.Error, OSError):
        return ""
    first = argv[0] if argv else ""
    return first if os.path.isabs(first) else ""


def engines_running_from(folder: Path) -> list[tuple[int, str]]:
    """``(pid, executable)`` of every llama-server whose executable is inside ``folder``.

    Processes of other users (access denied) and ones that end while we look are skipped."""
    import psutil

    root = folder.resolve()
    found: list[tuple[int, str]] = []
    for pid in psutil.pids():
        try:
            proc = psutil.Process(pid)
        except (psutil.Error, OSError):
            continue
        exe = _executable(proc)
        if exe and Path(exe).stem.lower() == TARGET and _is_under(exe, root):
            found.append((pid, exe))
    return found


def stop_engines_from(folder: Path, grace_s: float = GRACE_S) -> list[StoppedEngine]:
    """Stop every llama-server running from ``folder``: terminate, wait up to ``grace_s``, kill
    what is left. Returns what was stopped (empty when none ran). Blocking."""
    import psutil

    running = engines_running_from(folder)
    procs: list[psutil.Process] = []
    exes: dict[int, str] = {}
    for pid, exe in running:
        try:
            proc = psutil.Process(pid)
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
        except psutil.Error as exc:  # another user's: the installer cannot touch it either
            log.warning("cannot stop llama-server %s: %s", pid, exc)
            continue
        procs.append(proc)
        exes[pid] = exe
    alive = _wait_ended(procs, grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    _wait_ended(alive, grace_s)
    killed = {p.pid for p in alive}
    return [StoppedEngine(p.pid, exes[p.pid], p.pid in killed) for p in procs]


def _wait_ended(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait up to ``timeout_s`` for ``procs`` to end; returns those still running. A zombie has
    ended (only its exit status is left for its parent to collect), so it counts as ended."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for proc in procs:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.NoSuchProcess:
                continue
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


async def stop_engines_from_async(folder: Path, grace_s: float = GRACE_S) -> list[StoppedEngine]:
    """:func:`stop_engines_from` in a worker thread."""
    return await asyncio.to_thread(stop_engines_from, folder, grace_s)
