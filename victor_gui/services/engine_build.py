"""Compiling llama-server with cmake: the tools check, the flags, and the build as progress events.

The build runs as asyncio subprocesses in a session of their own (its own process group), so a
Ctrl+C in the terminal reaches only us and a cancel kills the whole group -- cmake, make and
every compiler under them -- instead of leaving ``cc1plus`` processes running. Output is read in
bounded chunks (a compiler may print a very long line), every line goes to the log, and the
``[ 45%]`` (Makefiles) or ``[12/345]`` (Ninja) lines become percentages.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from victor_gui.errors import EngineInstallError, EngineToolsMissingError

#: Flags every build shares: CPU backend (Metal on macOS by llama.cpp's own default), static libs
#: so the one binary runs alone, no web UI, no curl/OpenSSL (the app gives the server local files).
_COMMON_FLAGS = (
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
)
OPT_LEVELS = ("O0", "O1", "O2", "O3")
TARGET = "llama-server"
_LINE_MAX = 4000
_TAIL = 40


@dataclass(frozen=True)
class EngineProgress:
    """One step of an engine install, as the CLI and the window show it.

    ``phase`` is ``check``, ``download``, ``verify``, ``extract``, ``configure``, ``build``,
    ``install`` or ``done``; ``percent`` is 0-100 where the phase has a measure (download bytes,
    the build's ``[ 45%]`` lines), else None; ``line`` is the text to show (a build output line);
    ``path`` is the installed binary, on the ``done`` event only.
    """

    phase: str
    percent: float | None
    line: str
    path: Path | None = None


def cmake_flags(opt: str = "O2", native: bool = True) -> tuple[str, ...]:
    """The cmake configure flags for an ``opt`` build (``O0``..``O3``); ``native`` tunes it for
    this CPU (``GGML_NATIVE``), right for a user's own machine, wrong for a cached test binary
    that must survive a CPU change."""
    if opt not in OPT_LEVELS:
        raise ValueError(f"optimisation level must be one of {OPT_LEVELS}, not {opt!r}")
    return (
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_C_FLAGS_RELEASE=-{opt} -DNDEBUG",
        f"-DCMAKE_CXX_FLAGS_RELEASE=-{opt} -DNDEBUG",
        _COMMON_FLAGS[0],
        f"-DGGML_NATIVE={'ON' if native else 'OFF'}",
        *_COMMON_FLAGS[1:],
    )


# -- tools -------------------------------------------------------------------------------------


def tools_hint(platform: str = sys.platform) -> str:
    """The one sentence that says which packages give the build tools on this OS."""
    if platform == "darwin":
        return ("Install Apple's command line tools with `xcode-select --install` and cmake with "
                "`brew install cmake`, then run `victor-gui engine install` again.")
    return ("Install cmake, make and a C/C++ compiler (Debian/Ubuntu: `sudo apt install cmake "
            "build-essential`; Fedora: `sudo dnf install cmake gcc-c++ make`), then run "
            "`victor-gui engine install` again.")


def _first(names: Sequence[str], path: str | None) -> str | None:
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def find_tools(path: str | None = None) -> dict[str, str | None]:
    """Where cmake, the build tool and the C/C++ compilers are on ``path`` (default ``$PATH``);
    None for each one missing. ``$CC``/``$CXX`` are honoured as cmake honours them."""
    generator = os.environ.get("CMAKE_GENERATOR", "")
    build_tool = ("ninja",) if "ninja" in generator.lower() else ("make", "gmake")
    cc = os.environ.get("CC")
    cxx = os.environ.get("CXX")
    return {
        "cmake": _first(("cmake",), path),
        build_tool[0]: _first(build_tool, path),
        "C compiler": _first((cc,) if cc else ("cc", "gcc", "clang"), path),
        "C++ compiler": _first((cxx,) if cxx else ("c++", "g++", "clang++"), path),
    }


def check_tools(path: str | None = None) -> dict[str, str]:
    """The tools, or :class:`EngineToolsMissingError` naming the missing ones with the hint."""
    tools = find_tools(path)
    missing = tuple(name for name, where in tools.items() if where is None)
    if missing:
        hint = tools_hint()
        raise EngineToolsMissingError(f"Building llama-server needs {', '.join(missing)}. {hint}",
                                      missing=missing, hint=hint)
    return {name: where for name, where in tools.items() if where is not None}


# -- progress ----------------------------------------------------------------------------------

_MAKE_PERCENT = re.compile(r"^\[\s*(\d{1,3})%\]")
_NINJA_STEP = re.compile(r"^\[(\d+)/(\d+)\]")


def parse_progress(line: str) -> float | None:
    """The percentage a build output line announces (``[ 45%] Building ...`` from Makefiles,
    ``[12/345] Building ...`` from Ninja), or None."""
    if m := _MAKE_PERCENT.match(line):
        return float(min(100, int(m.group(1))))
    if (m := _NINJA_STEP.match(line)) and int(m.group(2)) > 0:
        return round(100.0 * min(int(m.group(1)), int(m.group(2))) / int(m.group(2)), 1)
    return None


class BuildLog:
    """Every line of the build to a file (when given), the last few kept for the error message."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL)
        self._fh: IO[str] | None = None

    async def open(self) -> None:
        if self.path is not None:
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
            # Line-buffered: a user may follow the log (tail -f) while the build runs.
            self._fh = await asyncio.to_thread(open, self.path, "w", buffering=1, encoding="utf-8",
                                               errors="replace")

    async def add(self, line: str) -> None:
        self.tail.append(line)
        if self._fh is not None:
            await asyncio.to_thread(self._fh.write, line + "\n")

    async def close(self) -> None:
        if self._fh is not None:
            await asyncio.to_thread(self._fh.close)
            self._fh = None

    def failure(self, message: str) -> EngineInstallError:
        """A build error carrying the tail of this log."""
        return EngineInstallError(message, reason="build", log_tail=tuple(self.tail),
                                  log_path=str(self.path) if self.path else None)


async def _lines(stream: asyncio.StreamReader) -> AsyncIterator[str]:
    """Lines of ``stream`` split on ``\\n`` or ``\\r``, each cut to a bounded length."""
    pending = b""
    while chunk := await stream.read(1 << 16):
        pending += chunk
        *done, pending = re.split(rb"\r\n|\r|\n", pending)
        for raw in done:
            yield raw[:_LINE_MAX].decode("utf-8", "replace")
        if len(pending) > _LINE_MAX:  # one endless line: show its start, drop the rest until \n
            yield pending[:_LINE_MAX].decode("utf-8", "replace")
            pending = b""
    if pending:
        yield pending[:_LINE_MAX].decode("utf-8", "replace")


async def kill_group(proc: asyncio.subprocess.Process, grace_s: float = 3.0) -> None:
    """End ``proc`` and everything it started: SIGTERM to its process group (make then deletes
    the object files it was writing, so a resumed build never links a truncated one), SIGKILL
    after ``grace_s``, and a last SIGKILL for a compiler still running after the leader exited
    (the group id stays ours while any member lives)."""
    if sys.platform == "win32":  # pragma: no cover - the engine install is for Linux and macOS
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


async def run_step(cmd: Sequence[str], *, phase: str, log: BuildLog, cwd: Path | None = None,
                   ) -> AsyncIterator[EngineProgress]:
    """Run ``cmd`` and yield one event per output line; raise the log's failure on a non-zero
    exit. Cancelling (or closing) the iterator kills the process group."""
    await log.add("$ " + " ".join(cmd))
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=sys.platform != "win32")
    try:
        assert proc.stdout is not None
        async for line in _lines(proc.stdout):
            await log.add(line)
            yield EngineProgress(phase, parse_progress(line) if phase == "build" else None, line)
        rc = await proc.wait()
    finally:
        if proc.returncode is None:  # cancelled, closed, or our own reading failed
            await kill_group(proc)
    if rc != 0:
        raise log.failure(f"{phase} failed ({Path(cmd[0]).name} exited with {rc})")


async def cmake_build(src: Path, build_dir: Path, flags: Sequence[str], *, log: BuildLog,
                      jobs: int | None = None, target: str = TARGET) -> AsyncIterator[EngineProgress]:
    """Configure ``src`` into ``build_dir`` with ``flags`` and build ``target`` with ``jobs``
    parallel jobs (default: the CPU count); the binary lands in ``build_dir/bin/target``."""
    async for event in run_step(["cmake", "-S", str(src), "-B", str(build_dir), *flags],
                                phase="configure", log=log):
        yield event
    n = jobs or os.cpu_count() or 1
    async for event in run_step(["cmake", "--build", str(build_dir), "--target", target, "-j", str(n)],
                                phase="build", log=log):
        yield event


__all__ = [
    "OPT_LEVELS",
    "TARGET",
    "BuildLog",
    "EngineProgress",
    "check_tools",
    "cmake_build",
    "cmake_flags",
    "find_tools",
    "kill_group",
    "parse_progress",
    "run_step",
    "tools_hint",
]
