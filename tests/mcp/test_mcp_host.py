"""McpHost against real MCP servers (the SDK's server API over stdio and Streamable HTTP, and the
published ``mcp-server-time``): listing, calls, the bounds, failures and restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import psutil
import pytest

from tests.mcp.conftest import ECHO, descendants, echo_config
from tests.support.wine_gaps import UNDER_WINE
from victor_gui.services.mcp_config import HttpServerConfig, StdioServerConfig
from victor_gui.services.mcp_host import McpHost
from victor_gui.services.tool_types import McpServerStatus, ServerState


def status_of(host: McpHost, name: str) -> McpServerStatus:
    return next(s for s in host.statuses() if s.name == name)


async def test_stdio_lists_and_calls_echo_and_add_lazily() -> None:
    host = McpHost([echo_config()])
    seen: list[ServerState] = []
    host.subscribe(lambda status: seen.append(status.state))
    try:
        assert status_of(host, "echo").state is ServerState.STOPPED
        assert not descendants(), "nothing may start before first use"
        tools = await host.tools(["echo"])
        names = {t.definition.name for t in tools}
        assert {"echo", "add", "slow", "crash", "big", "image"} <= names
        echo = next(t for t in tools if t.definition.name == "echo")
        assert echo.server == "echo" and echo.definition.parameters["required"] == ["text"]
        status = status_of(host, "echo")
        assert status.state is ServerState.READY and status.pid is not None
        assert "echo server starting" in status.stderr_tail
        assert "victor-mcp-reaper" not in status.stderr_tail
        outcome = await host.call("echo", "echo", {"text": "héllo"}, timeout_s=10)
        assert (outcome.text, outcome.is_error) == ("héllo", False)
        assert outcome.duration_s > 0
        outcome = await host.call("echo", "add", {"a": 2, "b": 40}, timeout_s=10)
        assert outcome.text == "42"
        assert seen[:2] == [ServerState.STARTING, ServerState.READY]
    finally:
        await host.aclose()
    assert status_of(host, "echo").state is ServerState.STOPPED


async def test_first_use_by_call_starts_the_server() -> None:
    host = McpHost([echo_config()])
    try:
        outcome = await host.call("echo", "add", {"a": 1, "b": 1}, timeout_s=10)
        assert outcome.text == "2" and not outcome.is_error
    finally:
        await host.aclose()


async def test_streamable_http_lists_and_calls(http_echo: HttpServerConfig) -> None:
    host = McpHost([http_echo])
    try:
        tools = await host.tools(["web"])
        assert "add" in {t.definition.name for t in tools}
        assert (await host.call("web", "add", {"a": 3, "b": 4}, timeout_s=10)).text == "7"
        assert (await host.call("web", "echo", {"text": "over http"}, timeout_s=10)).text == "over http"
        assert status_of(host, "web").transport == "http"
    finally:
        await host.aclose()


async def test_reference_time_server_runs_get_current_time() -> None:
    host = McpHost([StdioServerConfig(name="time", command=sys.executable, args=("-m", "mcp_server_time"))])
    try:
        tools = await host.tools(["time"])
        assert {"get_current_time", "convert_time"} <= {t.definition.name for t in tools}
        outcome = await host.call("time", "get_current_time", {"timezone": "Europe/Paris"}, timeout_s=10)
        assert not outcome.is_error and "Europe/Paris" in outcome.text
    finally:
        await host.aclose()


async def test_server_that_never_answers_initialize_fails_within_bound() -> None:
    # Under Wine a Windows Python child needs more than 2 s just to start and say so on stderr.
    bound = 20 if UNDER_WINE else 2
    host = McpHost([echo_config("mute", "--no-init")], init_timeout_s=bound)
    try:
        started = time.monotonic()
        assert await host.tools(["mute"]) == []
        assert time.monotonic() - started < bound + 8
        status = status_of(host, "mute")
        assert status.state is ServerState.FAILED
        assert status.error and f"did not answer initialize within {bound} s" in status.error
        assert "never answering initialize" in status.stderr_tail
        outcome = await host.call("mute", "echo", {"text": "x"}, timeout_s=5)
        assert outcome.is_error and "did not answer initialize" in outcome.text
    finally:
        await host.aclose()


async def test_missing_command_fails_with_its_stderr() -> None:
    host = McpHost([StdioServerConfig(name="ghost", command="/nonexistent/mcp-server")])
    try:
        outcome = await host.call("ghost", "x", {}, timeout_s=5)
        assert outcome.is_error and "the server 'ghost' is not available" in outcome.text
        status = status_of(host, "ghost")
        assert status.state is ServerState.FAILED and "nonexistent" in (status.error or "")
    finally:
        await host.aclose()


async def test_call_timeout_then_server_still_usable() -> None:
    host = McpHost([echo_config()])
    try:
        await host.tools(["echo"])  # started first: the bound is the call's, not the start's
        started = time.monotonic()
        outcome = await host.call("echo", "slow", {"seconds": 30}, timeout_s=1)
        assert outcome.is_error and outcome.text == "timed out after 1 s"
        assert time.monotonic() - started < 8
        assert (await host.call("echo", "add", {"a": 1, "b": 2}, timeout_s=10)).text == "3"
    finally:
        await host.aclose()


async def test_crash_mid_call_fails_with_stderr_and_next_use_restarts() -> None:
    host = McpHost([echo_config()])
    try:
        await host.tools(["echo"])
        first_pid = status_of(host, "echo").pid
        outcome = await host.call("echo", "crash", {}, timeout_s=10)
        assert outcome.is_error and outcome.text.startswith("the server stopped")
        assert "crashing on purpose" in outcome.text
        status = status_of(host, "echo")
        assert status.state is ServerState.FAILED and "crashing on purpose" in status.stderr_tail
        outcome = await host.call("echo", "add", {"a": 5, "b": 5}, timeout_s=10)
        assert outcome.text == "10" and not outcome.is_error
        assert status_of(host, "echo").pid not in (None, first_pid)
    finally:
        await host.aclose()


async def test_ten_megabyte_result_is_cut_with_a_note() -> None:
    host = McpHost([echo_config()])
    try:
        outcome = await host.call("echo", "big", {"mb": 10}, timeout_s=30)
        assert not outcome.is_error
        assert len(outcome.text) < 1024 * 1024 + 200
        assert "[result cut: 9437184 more characters of 10485760 were left out]" in outcome.text
    finally:
        await host.aclose()


async def test_image_result_and_tool_error() -> None:
    host = McpHost([echo_config()])
    try:
        outcome = await host.call("echo", "image", {}, timeout_s=10)
        assert not outcome.is_error and len(outcome.images) == 1
        assert outcome.images[0].media_type == "image/png"
        outcome = await host.call("echo", "fail", {}, timeout_s=10)
        assert outcome.is_error and "this tool always fails" in outcome.text
        outcome = await host.call("echo", "nope", {}, timeout_s=10)
        assert outcome.is_error and "no tool named 'nope'" in outcome.text
        outcome = await host.call("nobody", "echo", {}, timeout_s=10)
        assert outcome.is_error and "no MCP server named 'nobody'" in outcome.text
    finally:
        await host.aclose()


async def test_restart_gives_a_new_process_and_stop_ends_it() -> None:
    host = McpHost([echo_config()])
    try:
        await host.tools(["echo"])
        pid = status_of(host, "echo").pid
        await host.restart("echo")
        status = status_of(host, "echo")
        assert status.state is ServerState.READY and status.pid not in (None, pid)
        await host.stop("echo")
        assert status_of(host, "echo").state is ServerState.STOPPED
        assert not descendants()
        assert (await host.call("echo", "add", {"a": 0, "b": 1}, timeout_s=10)).text == "1"
    finally:
        await host.aclose()


async def test_parallel_calls_run_concurrently() -> None:
    host = McpHost([echo_config()])
    try:
        await host.tools(["echo"])
        started = time.monotonic()
        outcomes = await asyncio.gather(*(host.call("echo", "slow", {"seconds": 1}, timeout_s=10)
                                          for _ in range(4)))
        assert all(o.text == "slept 1.0" for o in outcomes)
        assert time.monotonic() - started < 3
    finally:
        await host.aclose()


async def test_missing_keyring_secret_fails_clearly() -> None:
    config = HttpServerConfig(name="web", url="http://127.0.0.1:9/mcp", secret_headers=("Authorization",))
    host = McpHost([config], secrets=None)
    try:
        outcome = await host.call("web", "x", {}, timeout_s=5)
        assert outcome.is_error and "keyring holds no value for Authorization" in outcome.text
    finally:
        await host.aclose()


@pytest.mark.parametrize("seconds", [0.3])
async def test_event_loop_never_stalls_while_a_tool_runs(seconds: float) -> None:
    host = McpHost([echo_config()])
    try:
        await host.tools(["echo"])
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        await host.call("echo", "slow", {"seconds": seconds}, timeout_s=10)
        await host.call("echo", "big", {"mb": 2}, timeout_s=10)
        tick.cancel()
        assert max(gaps) < 0.5, max(gaps)
    finally:
        await host.aclose()


async def test_idle_crash_is_seen_and_next_use_restarts() -> None:
    host = McpHost([echo_config()])
    states: list[ServerState] = []
    host.subscribe(lambda status: states.append(status.state))
    try:
        await host.tools(["echo"])
        pid = status_of(host, "echo").pid
        assert pid is not None
        if os.name == "posix":
            os.killpg(pid, signal.SIGKILL)  # the reaper's whole group dies while nothing runs
        else:
            psutil.Process(pid).kill()  # Windows has no reaper: the pid is the server's own
        for _ in range(100):
            if status_of(host, "echo").state is ServerState.FAILED:
                break
            await asyncio.sleep(0.05)
        status = status_of(host, "echo")
        assert status.state is ServerState.FAILED and (status.error or "").startswith("the server stopped")
        outcome = await host.call("echo", "add", {"a": 20, "b": 22}, timeout_s=10)
        assert outcome.text == "42"
        assert states[-1] is ServerState.READY
    finally:
        await host.aclose()


async def test_concurrent_first_uses_start_one_process() -> None:
    host = McpHost([echo_config()])
    try:
        results = await asyncio.gather(host.tools(["echo"]), host.tools(["echo"]),
                                       host.call("echo", "add", {"a": 1, "b": 2}, timeout_s=10))
        assert results[2].text == "3"  # type: ignore[union-attr]
        statuses = [s for s in host.statuses() if s.name == "echo"]
        assert len(statuses) == 1 and statuses[0].pid is not None
        if os.name == "posix":
            assert len(descendants()) == 2  # one reaper, one server
        else:  # no reaper; Windows gives a console program a conhost.exe of its own
            servers = [p for p in descendants() if p.pid == statuses[0].pid or _runs_echo(p)]
            assert [p.pid for p in servers] == [statuses[0].pid]
    finally:
        await host.aclose()


async def test_http_server_that_is_down_fails_clearly() -> None:
    host = McpHost([HttpServerConfig(name="down", url="http://127.0.0.1:9/mcp")], init_timeout_s=5)
    try:
        started = time.monotonic()
        outcome = await host.call("down", "x", {}, timeout_s=5)
        assert time.monotonic() - started < 10
        assert outcome.is_error and "could not reach http://127.0.0.1:9/mcp" in outcome.text
        assert status_of(host, "down").state is ServerState.FAILED
    finally:
        await host.aclose()


async def test_unsubscribe_stops_notifications() -> None:
    host = McpHost([echo_config()])
    seen: list[McpServerStatus] = []
    unsubscribe = host.subscribe(seen.append)
    unsubscribe()
    try:
        await host.tools(["echo"])
        assert seen == []
    finally:
        await host.aclose()


async def test_failed_start_is_not_retried_at_once_but_restart_tries_again() -> None:
    host = McpHost([echo_config("mute", "--no-init")], init_timeout_s=1.5)
    try:
        started = time.monotonic()
        first = await host.call("mute", "echo", {"text": "x"}, timeout_s=5)
        first_s = time.monotonic() - started
        assert first.is_error and "did not answer initialize within 1.5 s" in first.text
        assert first_s >= 1.5
        status = status_of(host, "mute")
        assert status.state is ServerState.FAILED
        assert status.error and "retrying after 30 s" in status.error
        assert not descendants()  # the failed start left no process to back off with
        # The next uses, within the back-off: the same failure, at once, and no new process.
        started = time.monotonic()
        again = await host.call("mute", "echo", {"text": "x"}, timeout_s=5)
        assert await host.tools(["mute"]) == []
        again_s = time.monotonic() - started
        assert again_s < 0.3, again_s
        assert again.is_error and "did not answer initialize within 1.5 s" in again.text
        assert "retrying after" in again.text
        assert not descendants()
        # Restart (the person's button) always tries at once: a new start, the whole timeout.
        states: list[ServerState] = []
        host.subscribe(lambda s: states.append(s.state))
        started = time.monotonic()
        await host.restart("mute")
        assert time.monotonic() - started >= 1.5
        assert states[0] is ServerState.STARTING and states[-1] is ServerState.FAILED
        assert "did not answer initialize" in (status_of(host, "mute").error or "")
    finally:
        await host.aclose()


async def test_failed_start_is_tried_again_once_the_back_off_is_over() -> None:
    host = McpHost([echo_config("mute", "--no-init")], init_timeout_s=1, retry_after_s=1.5)
    states: list[ServerState] = []
    host.subscribe(lambda s: states.append(s.state))
    try:
        await host.tools(["mute"])
        assert states == [ServerState.STARTING, ServerState.FAILED]
        await host.tools(["mute"])
        assert states == [ServerState.STARTING, ServerState.FAILED]  # backed off: not tried
        await asyncio.sleep(1.6)
        await host.tools(["mute"])
        assert states == [ServerState.STARTING, ServerState.FAILED] * 2  # tried again
    finally:
        await host.aclose()


async def test_crash_of_a_running_server_is_not_backed_off() -> None:
    host = McpHost([echo_config()], retry_after_s=600)
    try:
        outcome = await host.call("echo", "crash", {}, timeout_s=10)
        assert outcome.is_error and status_of(host, "echo").state is ServerState.FAILED
        started = time.monotonic()
        assert (await host.call("echo", "add", {"a": 1, "b": 1}, timeout_s=10)).text == "2"
        assert time.monotonic() - started < 10
    finally:
        await host.aclose()


def _runs_echo(proc: psutil.Process) -> bool:
    try:
        return ECHO in proc.cmdline()
    except (psutil.Error, OSError):  # Wine cannot read some processes (a console host)
        return False


def _pid_in_stderr(status: McpServerStatus) -> int:
    """The pid the echo server printed itself ("echo server starting pid=N")."""
    line = next(x for x in status.stderr_tail.splitlines() if "echo server starting pid=" in x)
    return int(line.rsplit("=", 1)[1])


async def test_without_a_reaper_the_status_names_each_servers_own_process() -> None:
    # Windows starts the command directly (no reaper to report a pid), as use_reaper=False does
    # everywhere: the host still finds each server's process, even for two starting at once.
    host = McpHost([echo_config("a"), echo_config("b", "--weather-only")], use_reaper=False)
    try:
        await host.tools(["a", "b"])
        a, b = status_of(host, "a"), status_of(host, "b")
        assert a.pid is not None and a.pid == _pid_in_stderr(a)
        assert b.pid is not None and b.pid == _pid_in_stderr(b)
        assert psutil.Process(b.pid).cmdline()[-1] == "--weather-only"
        psutil.Process(a.pid).kill()  # the pid is the live server: killing it is seen
        for _ in range(100):
            if status_of(host, "a").state is ServerState.FAILED:
                break
            await asyncio.sleep(0.05)
        assert status_of(host, "a").state is ServerState.FAILED
        assert status_of(host, "b").state is ServerState.READY
    finally:
        await host.aclose()
