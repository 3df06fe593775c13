"""Shared pieces of the MCP host tests: the test server's configs, a Streamable HTTP server in a
subprocess, and a process census for the orphan checks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from victor_gui.services.mcp_config import HttpServerConfig, StdioServerConfig

ROOT = Path(__file__).resolve().parents[2]
ECHO = "tests.mcp.servers.echo_server"


def echo_config(name: str = "echo", *extra: str) -> StdioServerConfig:
    """The test server over stdio (run from the repository root so ``tests`` imports)."""
    return StdioServerConfig(name=name, command=sys.executable, args=("-m", ECHO, *extra), cwd=str(ROOT))


# Processes that were already running when the test began (another tier's llama-server, started
# by a session fixture in the full run): not this test's, so never counted.
_preexisting: set[int] = set()


def descendants() -> list[psutil.Process]:
    """This test's live descendants (zombies count as gone): less the HTTP test server (a module
    fixture the host never starts) and whatever was already running when the test began."""
    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.pid in _preexisting:
                continue
            if proc.status() != psutil.STATUS_ZOMBIE and "--http" not in proc.cmdline():
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_gone(pids: list[int], timeout_s: float = 8.0) -> list[int]:
    """The pids still alive (not zombies) after waiting up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    alive = pids
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def http_echo() -> Iterator[HttpServerConfig]:
    """The test server over Streamable HTTP on a free port, in its own process."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", ECHO, "--http", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, "the HTTP test server exited"
                time.sleep(0.1)
        yield HttpServerConfig(name="web", url=f"http://127.0.0.1:{port}/mcp")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    """Every test must leave no MCP server process behind (the module's HTTP server aside)."""
    _preexisting.clear()
    _preexisting.update(p.pid for p in psutil.Process().children(recursive=True))
    before = {p.pid for p in descendants()}
    yield
    left = [p.pid for p in descendants() if p.pid not in before]
    assert not wait_gone(left), f"processes left behind: {left} (pid {os.getpid()})"
