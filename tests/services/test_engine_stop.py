"""``victor-gui engine stop``: the engines running from the app's folder end, no other does.

Why it exists: on Windows a running ``llama-server.exe`` (an engine kept running after the app
closed) cannot be replaced, so the installer runs this before an upgrade or uninstall. Real
processes: copies of real executables named ``llama-server`` in a tmp "install folder" and
elsewhere; the CLI runs as a subprocess, as the installer runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.services.chat_cli_support import ROOT, Home
from victor_gui.services.engine_holders import engines_running_from, stop_engines_from

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX executables stand in for the engine")


def _engine_copy(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "llama-server"
    path = shutil.which(source)
    assert path is not None
    shutil.copy(path, target)
    target.chmod(0o755)
    return target


def _start(exe: Path, *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([str(exe), *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # as kept engines are
    deadline = time.monotonic() + 10
    while psutil.Process(proc.pid).exe() != str(exe.resolve()):  # exec done
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


def _stop_cli(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "victor_gui", "engine", "stop", *args], cwd=ROOT,
                          env=home.env(), capture_output=True, text=True, timeout=50, check=False)


def _gone(proc: subprocess.Popen[bytes]) -> bool:
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_the_cli_stops_the_apps_engines_and_leaves_the_users_own(tmp_path: Path, home: Home) -> None:
    install = tmp_path / "Victor GUI"
    ours = _start(_engine_copy(install / "_internal" / "engines" / "llama-server", "sleep"), "300")
    theirs = _start(_engine_copy(tmp_path / "my-llama" / "bin", "sleep"), "300")
    try:
        assert [pid for pid, _ in engines_running_from(install)] == [ours.pid]
        done = _stop_cli(home, "--folder", str(install), "--json")
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert [(s["pid"], s["killed"]) for s in doc["stopped"]] == [(ours.pid, False)]
        assert doc["stopped"][0]["exe"].startswith(str(install.resolve()))
        assert _gone(ours)
        assert theirs.poll() is None  # the user's own llama-server, run from elsewhere, still runs
        again = _stop_cli(home, "--folder", str(install))
        assert again.returncode == 0 and "No llama-server is running from" in again.stdout
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()


def test_an_engine_that_ignores_terminate_is_killed_after_the_grace(tmp_path: Path) -> None:
    install = tmp_path / "app"
    stubborn = _start(_engine_copy(install, "bash"), "-c", "trap '' TERM; while :; do sleep 0.1; done")
    try:
        started = time.monotonic()
        stopped = stop_engines_from(install, grace_s=0.5)
        assert [(s.pid, s.killed) for s in stopped] == [(stubborn.pid, True)]
        assert _gone(stubborn) and time.monotonic() - started < 5
        assert engines_running_from(install) == []
    finally:
        stubborn.kill()
        stubborn.wait()
