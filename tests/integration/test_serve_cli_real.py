"""``victor-gui serve PATH`` run as a user runs it (a subprocess), with the REAL llama-server:
prints the URL, a chat reply comes from it, Ctrl+C stops it; failures exit 1 and say why."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.services.chat_cli_support import ROOT, Home

pytestmark = pytest.mark.llamacpp


def _read_until(proc: subprocess.Popen[str], pattern: str, limit_s: float = 40.0) -> str:
    """stdout so far, once it matches ``pattern`` (raw reads: a buffered readline could hold
    the line select() no longer sees)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = ""
    deadline = time.monotonic() + limit_s
    while not re.search(pattern, seen):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"no {pattern!r} in: {seen}")
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            seen += os.read(fd, 65536).decode("utf-8", "replace")
    return seen


SERVING = r"Serving\s+(http://127\.0\.0\.1:\d+)/v1"


@contextmanager
def serving(home: Home, *args: str) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """``victor-gui serve ARGS`` as a subprocess, once it prints its URL: ``(proc, output, url)``.
    Killed on the way out if the test left it running."""
    home.home.mkdir(parents=True, exist_ok=True)
    env = {**home.env(), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "victor_gui", "serve", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        text = _read_until(proc, SERVING)
        yield proc, text, re.search(SERVING, text).group(1)  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stop_with_ctrl_c(proc: subprocess.Popen[str], url: str, timeout: float = 30) -> str:
    """Ctrl+C: the command says "Stopped.", exits 0, and nothing answers at ``url`` any more.
    Returns what it printed."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    assert "Stopped." in out
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=2)
    return out


def test_serve_prints_the_url_answers_and_stops_on_ctrl_c(tmp_path: Path, llama_binary: Path,
                                                          tiny_model) -> None:
    home = Home(tmp_path)
    home.write_settings({"llama_server_path": str(llama_binary)})  # the binary comes from Settings
    with serving(home, str(tiny_model()), "--ctx", "1024") as (proc, text, url):
        assert "-c 1024" in text and "--jinja" in text and str(llama_binary) in text
        reply = httpx.post(url + "/v1/chat/completions", timeout=30,
                           json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
        stop_with_ctrl_c(proc, url, timeout=20)


def test_serve_failures_exit_1_and_say_why(tmp_path: Path, llama_binary: Path, tiny_model) -> None:
    home = Home(tmp_path)
    missing = home.run("serve", str(tmp_path / "nope.gguf"), "--llama-server", str(llama_binary))
    assert missing.returncode == 1 and "nope.gguf" in missing.stderr
    no_binary = home.run("serve", str(tiny_model()), env={"PATH": "/nonexistent",
                                                          "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert no_binary.returncode == 1 and "No llama-server was found" in no_binary.stderr
    broken = tmp_path / "broken.gguf"
    data = tiny_model().read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    failed = home.run("serve", str(broken), "--ctx", "512", "--llama-server", str(llama_binary))
    assert failed.returncode == 1 and "exited with code" in failed.stderr
    usage = home.run("serve", str(broken), "--ctx", "-5")
    assert usage.returncode == 2


async def test_ctrl_c_that_cancels_serve_stops_the_server(tmp_path: Path, llama_binary: Path, tiny_model,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl+C on Windows: the loop takes no signal handlers, so asyncio.run cancels the main
    task. Before the fix the cancellation skipped the stop and llama-server.exe (in its own
    process group) kept running with its port after the CLI had exited (seen under Wine)."""
    import asyncio
    import io

    import psutil

    from victor_gui.__main__ import build_parser
    from victor_gui.cli.serve import serve_command

    home = Home(tmp_path)
    for key, value in home.env().items():
        monkeypatch.setenv(key, value)
    out = io.StringIO()
    # The real parser, so the arguments are the ones `victor-gui serve` gives (a hand-made
    # Namespace missed --router once it was added).
    args = build_parser().parse_args(["serve", str(tiny_model()), "--ctx", "1024",
                                      "--llama-server", str(llama_binary)])
    never = asyncio.Event()  # no SIGINT handler: the stop comes as a cancellation, as on Windows
    task = asyncio.ensure_future(serve_command(args, out, io.StringIO(), stop=never))
    deadline = time.monotonic() + 40
    while "Serving" not in out.getvalue():
        assert not task.done() and time.monotonic() < deadline, out.getvalue()
        await asyncio.sleep(0.1)
    url = re.search(r"Serving\s+(http://127\.0\.0\.1:\d+)/v1", out.getvalue()).group(1)  # type: ignore[union-attr]
    port = int(url.rsplit(":", 1)[1])
    pids = [p.pid for p in psutil.process_iter(["cmdline"])
            if str(llama_binary) in (p.info["cmdline"] or []) and str(port) in (p.info["cmdline"] or [])]
    assert len(pids) == 1, pids
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == psutil.STATUS_ZOMBIE
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url + "/health", timeout=2)
    assert "Stopped." in out.getvalue()
