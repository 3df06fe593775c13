"""A tiny launcher that keeps an MCP server from outliving the app (POSIX).

``python -m victor_gui.services.mcp_reaper --ppid PID -- CMD ARGS...`` runs ``CMD`` as its child
with the same stdin/stdout/stderr (the MCP pipes pass straight through), leading the process
group the server and its own children live in. When the app goes away, even by SIGKILL, the
reaper notices (``PR_SET_PDEATHSIG`` on Linux, and a poll of its parent pid everywhere) and
kills the whole group. When the server exits on its own, the reaper ends the rest of the group
and exits with the server's code. On Windows the SDK already puts the server in a Job object,
so the host starts the command directly there.

It imports only the standard library (it starts for every server) and never writes to stdout
(that is the MCP channel). Its first stderr line, ``victor-mcp-reaper pid=N``, tells the host
the group id; the host strips it from the server's stderr tail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

MARKER = "victor-mcp-reaper pid="
_POLL_S = 0.2
_GRACE_S = 1.0
_PR_SET_PDEATHSIG = 1


def _set_parent_death_signal() -> None:
    """Linux: have the kernel send SIGTERM when the parent dies (the poll covers the rest).

    The kernel ties this to the thread that forked us, not the process: the host spawns from
    its event-loop thread, which lives as long as the host does."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _kill_group(child: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to the group, a short grace, then SIGKILL (which ends this process too)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pgid = os.getpgrp()
    try:
        os.killpg(pgid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + _GRACE_S
    while child is not None and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(pgid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    """Run the command under watch; returns its exit code."""
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: mcp_reaper --ppid PID -- CMD [ARGS...]", file=sys.stderr)
        return 2
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    ppid = int(options[options.index("--ppid") + 1]) if "--ppid" in options else os.getppid()
    if os.getpgrp() != os.getpid():
        os.setsid()  # lead a group of our own, so killing it never reaches the app
    _set_parent_death_signal()
    if os.getppid() != ppid:  # the app died before the death signal was armed
        return 1
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, _frame: object) -> None:
        _kill_group(child)
        os._exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, on_signal)
    sys.stderr.write(f"{MARKER}{os.getpid()}\n")
    sys.stderr.flush()
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        print(f"could not start {command[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    while True:
        code = child.poll()
        if code is not None:
            # The server ended; whatever it started goes with it (a SIGTERM round is enough
            # here, and SIGKILL would also end this process before it could pass the code on).
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                os.killpg(os.getpgrp(), signal.SIGTERM)
            except OSError:
                pass
            return code if code >= 0 else 128 - code
        if os.getppid() != ppid:
            _kill_group(child)
            return 1
        time.sleep(_POLL_S)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
