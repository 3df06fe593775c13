"""The parent side of the attack run: the list of attacks, their deadlines, and one measured
child process per attack.

Each attack runs in its own process (``python -m bench.attack.child``), started from the
repository root so the checkout's ``victor_gui`` is the one attacked. The parent serves the
hostile HTTP servers from its own threads, polls the child's RSS every 20 ms with psutil, and
kills it at a hard cap: RSS over :data:`KILL_RSS` or three times the attack's deadline. The
child also runs under ``RLIMIT_AS`` (:data:`ADDRESS_LIMIT`), so even an allocation burst between
two polls cannot take the machine down. Peak RSS is the larger of the polled peak and the
kernel's ``ru_maxrss`` for that child (``os.wait4``).

Verdicts (all must hold): ended within 2x its deadline, peak RSS <= 300 MB, ended with a typed
:mod:`victor_gui.errors` error or a clean result (never a raw exception or a kill), and nothing
lost (text shown but not stored, history moved aside or unreadable, a sound file not loaded).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.attack import hostile

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
RSS_BUDGET = 300 * MB  # the verdict
KILL_RSS = 1536 * MB  # the hard cap: the child is killed here
ADDRESS_LIMIT = 2560 * MB  # RLIMIT_AS of the child: allocation fails past it
POLL_S = 0.02


@dataclass(frozen=True)
class Attack:
    """One attack: its deadline (seconds) and how its scene is set."""

    name: str
    deadline_s: float
    what: str
    # () -> context manager yielding the URLs the child attacks (hostile servers), or None.
    servers: Callable[[], contextlib.AbstractContextManager[list[str]]] | None = None
    # Needs a user + mount namespace (unshare -rm) for a tmpfs: a full / read-only disk.
    namespace: bool = False


@contextlib.contextmanager
def _serve(*servers: hostile.HostileServer) -> Iterator[list[str]]:
    started = [s.start() for s in servers]
    try:
        yield [s.url for s in started]
    finally:
        for s in started:
            s.stop()


@contextlib.contextmanager
def _discovery_scene() -> Iterator[list[str]]:
    from tests.servers.ollama import make_server

    healthy = make_server(model="sim-model").start()
    try:
        with _serve(hostile.HostileServer(hostile.wrong_shape_ollama),
                    hostile.HostileServer(hostile.wrong_shape_llamacpp),
                    hostile.HostileServer(hostile.wrong_shape_vllm),
                    hostile.HostileServer(hostile.wrong_shape_lmstudio)) as urls:
            yield [*urls, healthy.url]
    finally:
        healthy.stop()


def _one(behaviour: hostile.Behaviour, cap_s: float, **kw: Any) -> Callable[[], Any]:
    return lambda: _serve(hostile.HostileServer(behaviour, max_seconds=cap_s, **kw))


ATTACKS: dict[str, Attack] = {a.name: a for a in [
    Attack("gzip_bomb", 5, "chat reply: 10 MB of gzip that inflates to 10 GB",
           _one(hostile.send_gzip_bomb, 30)),
    Attack("endless_error_body", 5, "HTTP 500 whose body never ends (stream)",
           _one(hostile.endless_error_body, 30)),
    Attack("huge_line", 5, "200 event-stream, one 4 GB line without a newline",
           _one(hostile.huge_line, 30)),
    Attack("silent_server", 4, "accepts, reads the request, never answers (read timeout 2 s)",
           _one(hostile.silent, 30)),
    Attack("slow_loris", 6, "one byte every 0.5 s, never a whole event (read timeout 2 s)",
           _one(hostile.slow_loris, 30)),
    Attack("split_surrogates", 5, "emoji sent as UTF-16 halves in separate events, into a real store",
           _one(hostile.split_surrogates(), 30)),
    Attack("wrong_shape_chat", 5, "chat, stream and model list of the wrong JSON shape",
           lambda: _serve(hostile.HostileServer(hostile.wrong_shape_chat,
                                                stream_behaviour=hostile.wrong_shape_stream),
                          hostile.HostileServer(hostile.wrong_shape_llamacpp))),
    Attack("wrong_shape_discovery", 6, "discovery: four wrong-shape servers (Ollama, llama.cpp, vLLM, "
           "LM Studio)"
           " beside a healthy Ollama sim",
           _discovery_scene),
    Attack("db_locked_start", 12, "open_store while another process holds an exclusive lock",
           namespace=False),
    Attack("db_full_start", 5, "open_store (crash recovery must write) on a full disk", namespace=True),
    Attack("db_readonly_start", 5, "open_store on a read-only file system", namespace=True),
    Attack("db_locked_midstream", 16, "an exclusive lock for 12 s while a reply streams",
           _one(hostile.steady_stream(), 40)),
    Attack("db_full_midstream", 8, "the disk is full for 1.5 s while a reply streams",
           _one(hostile.steady_stream(), 30), namespace=True),
    Attack("config_100mb", 5, "SettingsService.load on a 100 MB settings.yaml"),
    Attack("yaml_bomb", 5, "load_profiles on a billion-laughs alias bomb in profiles.yaml"),
]}


@dataclass
class AttackResult:
    """What one run measured and what the child said."""

    name: str
    deadline_s: float
    wall_s: float
    peak_rss_mb: float
    killed: str = ""  # "" or "killed at <why>"
    outcome: str = ""  # ok | typed | raw | killed | skipped
    error: str = ""
    lost: bool | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    stderr_tail: str = ""

    @property
    def verdicts(self) -> dict[str, bool]:
        """Each verdict of the issue, by name."""
        return {
            "time": not self.killed and self.wall_s <= 2 * self.deadline_s,
            "memory": self.peak_rss_mb * MB <= RSS_BUDGET,
            "typed": self.outcome in ("ok", "typed"),
            "nothing_lost": self.lost is not True and not self.killed and self.outcome != "",
        }

    @property
    def passed(self) -> bool:
        return all(self.verdicts.values())

    def failures(self) -> list[str]:
        return [name for name, ok in self.verdicts.items() if not ok]


def namespaces_available() -> bool:
    """Whether ``unshare -rm`` (an unprivileged user + mount namespace) works here."""
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _limit_child() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))
    os.setsid()  # its own process group: the kill takes its helpers (a lock holder) too


def run_attack(name: str, *, python: str | None = None) -> AttackResult:
    """Run one attack in a child process and measure it (see the module docstring)."""
    attack = ATTACKS[name]
    if attack.namespace and not namespaces_available():
        return AttackResult(name, attack.deadline_s, 0.0, 0.0, outcome="skipped",
                            detail="needs unshare -rm (user and mount namespaces)")
    with tempfile.TemporaryDirectory(prefix=f"attack-{name}-") as tmp, \
            (attack.servers() if attack.servers else contextlib.nullcontext([])) as urls:
        work = Path(tmp) / "work"
        cmd = [python or sys.executable, "-m", "bench.attack.child", name, str(work),
               str(attack.deadline_s), *urls]
        if attack.namespace:
            cmd = ["unshare", "-rm", *cmd]
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            result = _measure(cmd, attack, out, err)
        result.stderr_tail = err_path.read_text("utf-8", "replace")[-1500:]
        _read_report(result, out_path.read_text("utf-8", "replace"))  # its traceback wins
        with contextlib.suppress(OSError):  # a tmpfs the child mounted dies with its namespace
            shutil.rmtree(work, ignore_errors=True)
    return result


def _measure(cmd: list[str], attack: Attack, out: Any, err: Any) -> AttackResult:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, env=env, preexec_fn=_limit_child)
    ps = psutil.Process(proc.pid)
    peak = 0
    killed = ""
    cap_s = 3 * attack.deadline_s
    status = 0
    rusage = None
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        with contextlib.suppress(psutil.Error):
            peak = max(peak, ps.memory_info().rss)
        elapsed = time.perf_counter() - started
        if not killed and peak > KILL_RSS:
            killed = f"killed at RSS {peak / MB:.0f} MB after {elapsed:.1f} s"
        elif not killed and elapsed > cap_s:
            killed = f"killed at {cap_s:g} s (3x deadline)"
        if killed:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(POLL_S)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
    # ru_maxrss is in KiB on Linux.
    peak = max(peak, rusage.ru_maxrss * 1024 if rusage is not None else 0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # helpers left behind by a killed child
    return AttackResult(attack.name, attack.deadline_s, round(wall, 2), round(peak / MB, 1), killed=killed,
                        outcome="killed" if killed else "")


def _read_report(result: AttackResult, stdout: str) -> None:
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.startswith("ATTACK-RESULT ")), None)
    if line is None:
        if not result.killed:
            result.outcome = "raw"
            result.error = "the child printed no result (it crashed)"
        return
    report = json.loads(line[len("ATTACK-RESULT "):])
    result.outcome = result.outcome or report.get("outcome", "")
    result.error = report.get("error", "")
    result.lost = report.get("lost")
    result.checks = report.get("checks", {})
    result.detail = report.get("detail", "")
    if report.get("traceback"):
        result.stderr_tail = report["traceback"]


def table(results: list[AttackResult]) -> str:
    """A Markdown table of the results."""
    rows = ["| attack | deadline | time | peak RSS | outcome | lost | verdict |",
            "|---|---:|---:|---:|---|---|---|"]
    for r in results:
        outcome = r.killed or (f"{r.outcome}: {r.error}" if r.error else r.outcome or "?")
        if r.detail and not r.killed:
            outcome += f" — {r.detail}"
        verdict = "skipped" if r.outcome == "skipped" else (
            "PASS" if r.passed else "FAIL (" + ", ".join(r.failures()) + ")")
        lost = "-" if r.lost is None else ("YES" if r.lost else "no")
        rows.append(f"| {r.name} | {r.deadline_s:g} s | {r.wall_s:.2f} s | {r.peak_rss_mb:.0f} MB | "
                    f"{outcome.replace('|', '/')[:220]} | {lost} | {verdict} |")
    return "\n".join(rows)
