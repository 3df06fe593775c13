"""No MCP server process outlives its host: after aclose, after a call cancelled mid-way, and
after the hosting process is SIGKILLed (processes counted with psutil)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.mcp.conftest import ROOT, descendants, echo_config, wait_gone
from victor_gui.services.mcp_host import McpHost

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the reaper is the POSIX mechanism")


def _pids(child_file: Path) -> list[int]:
    return [int(p) for p in child_file.read_text(encoding="utf-8").split()]


async def test_aclose_ends_server_and_its_children(tmp_path: Path) -> None:
    child_file = tmp_path / "pids"
    host = McpHost([echo_config("echo", "--child-file", str(child_file))])
    await host.tools(["echo"])
    server_pid, grandchild_pid = _pids(child_file)
    alive = {p.pid for p in descendants()}
    assert {server_pid, grandchild_pid} <= alive and len(alive) == 3  # reaper, server, grandchild
    await host.aclose()
    assert not await asyncio.to_thread(wait_gone, [server_pid, grandchild_pid], 5.0)
    assert not descendants()


async def test_cancelled_call_then_close_leaves_nothing(tmp_path: Path) -> None:
    child_file = tmp_path / "pids"
    host = McpHost([echo_config("echo", "--child-file", str(child_file))])
    await host.tools(["echo"])
    call = asyncio.create_task(host.call("echo", "slow", {"seconds": 30}, timeout_s=60))
    await asyncio.sleep(1.0)  # the call is now running on the server
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # The server is still usable after the cancelled call, then closes cleanly.
    assert (await host.call("echo", "add", {"a": 1, "b": 1}, timeout_s=10)).text == "2"
    await host.aclose()
    assert not await asyncio.to_thread(wait_gone, _pids(child_file), 5.0)
    assert not descendants()


def test_sigkill_of_the_host_process_takes_its_servers_along(tmp_path: Path) -> None:
    child_file = tmp_path / "pids"
    host = subprocess.Popen([sys.executable, "-m", "tests.mcp.host_child", str(child_file)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None
        line = host.stdout.readline()
        assert line.startswith("READY"), line
        server_pid, grandchild_pid, reaper_pid = (int(p) for p in line.split()[1:])
        group = [reaper_pid, server_pid, grandchild_pid]
        assert all(psutil.pid_exists(pid) for pid in group)
        os.kill(host.pid, signal.SIGKILL)
        host.wait(5)
        # The reaper notices its parent is gone (death signal, or its poll) and kills the group.
        # They are no longer our children (re-parented), so liveness is checked by pid.
        assert not wait_gone(group, 5.0), "MCP server processes survived the SIGKILL of their host"
    finally:
        if host.poll() is None:
            host.kill()
            host.wait(5)
