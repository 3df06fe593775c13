"""The tool loop end to end with the real llama-server and the generated tiny model (which emits
a ``get_weather`` call when given tools): the call is approved (run once), runs, its result goes
back, the final answer streams, and the store holds call, result and answer after a reopen."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.services.tool_sources import FunctionTools
from tests.support.llama_server import LlamaServer
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.resilience import RetryPolicy
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.reply_types import ReplyEvent
from victor_gui.services.tool_loop import ToolChoice, record_from_meta
from victor_gui.services.tool_types import ApprovalAnswer, ApprovalRequest, ToolCallRecord, ToolCallState
from victor_gui.storage import open_store

pytestmark = pytest.mark.llamacpp

ROOT = Path(__file__).resolve().parents[2]
NO_RETRY = RetryPolicy(max_retries=0, base_delay=0.0, max_delay=0.0, jitter=0.0)


async def test_real_tool_loop_end_to_end(llama_server: LlamaServer, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VICTOR_LLAMACPP_HOST", f"127.0.0.1:{llama_server.port}")
    provider = ProviderRegistry.create("llamacpp", retry_policy=NO_RETRY)
    store, _ = await open_store(tmp_path / "db")
    conv = await store.create_conversation("weather")
    asked: list[ApprovalRequest] = []
    events: list[ReplyEvent] = []
    moments: dict[str, float] = {}

    async def asker(request: ApprovalRequest) -> ApprovalAnswer:
        asked.append(request)
        moments["approved"] = time.perf_counter()
        return ApprovalAnswer.RUN_ONCE

    def on_event(event: ReplyEvent) -> None:
        events.append(event)
        if event.kind == "tool_call" and event.meta and event.meta["state"] == "done":
            moments.setdefault("result", time.perf_counter())

    tools = FunctionTools()
    session = ChatSession(store, conv.id, provider, "tiny", temperature=0, max_tokens=64, tools=tools,
                          asker=asker, on_event=on_event, tool_max_rounds=1)
    await session.set_tool_choice(ToolChoice(("weather",), off=("weather/add",)))  # only get_weather
    result = await session.send("What is the weather in Rome?")
    await provider.close()
    await store.close()
    assert result.status == "complete", result.error
    assert [(r.server, r.tool) for r in asked][:1] == [("weather", "get_weather")]
    assert tools.calls and tools.calls[0][:2] == ("weather", "get_weather")
    assert any(e.kind == "delta" and e.message_id == result.message_id for e in events), "the answer streamed"

    record, rounds = await _weather_loop_kept(tmp_path / "db", conv.id)  # a restart keeps the whole loop
    assert record.approved_by == "run_once"
    print(f"approval → result shown: {(moments['result'] - moments['approved']) * 1000:.2f} ms "
          f"(an in-process tool); rounds: {rounds}")


async def _weather_loop_kept(db: Path, conversation_id: int) -> tuple[ToolCallRecord, int]:
    """Reopen the store and check one get_weather round is kept whole: the call, its paired
    result, the answer; returns the result's record and how many tool rows there are."""
    store, _ = await open_store(db)
    stored = await store.get_messages(conversation_id)
    await store.close()
    roles = [m.role for m in stored]
    assert roles[:4] == ["user", "assistant", "tool", "assistant"], roles
    assert stored[1].tool_calls and stored[1].tool_calls[0]["name"] == "get_weather"
    assert stored[2].tool_call_id == stored[1].tool_calls[0]["id"] and "Sunny" in stored[2].content
    record = record_from_meta(stored[2].meta)
    assert record is not None and record.state is ToolCallState.DONE
    return record, roles.count("tool")


async def test_real_model_calls_a_real_mcp_server_over_stdio(llama_server: LlamaServer, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12's must-show, all real: llama-server + the tiny model call ``get_weather`` on an
    MCP server started by the app's host over stdio (the SDK on both sides); approved once, run,
    its result sent back, the answer streamed; the store holds call and result after a reopen, and
    no server process outlives the host."""
    import sys

    import psutil

    from victor_gui.services.mcp_config import StdioServerConfig
    from victor_gui.services.mcp_host import McpHost

    monkeypatch.setenv("VICTOR_LLAMACPP_HOST", f"127.0.0.1:{llama_server.port}")
    root = ROOT
    host = McpHost([StdioServerConfig(name="echo", command=sys.executable,
                                      args=("-m", "tests.mcp.servers.echo_server"), cwd=str(root))])
    provider = ProviderRegistry.create("llamacpp", retry_policy=NO_RETRY)
    store, _ = await open_store(tmp_path / "db")
    conv = await store.create_conversation("weather")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    moments: dict[str, float] = {}
    deltas: list[str] = []

    async def asker(request: ApprovalRequest) -> ApprovalAnswer:
        moments["approved"] = time.perf_counter()
        return ApprovalAnswer.RUN_ONCE

    def on_event(event: ReplyEvent) -> None:
        if event.kind == "tool_call" and event.meta and event.meta["state"] == "done":
            moments.setdefault("result", time.perf_counter())
        if event.kind == "delta" and event.text:
            deltas.append(event.text)

    try:
        session = ChatSession(store, conv.id, provider, "tiny", temperature=0, max_tokens=64, tools=host,
                              asker=asker, on_event=on_event, tool_max_rounds=1)
        only_weather = tuple(f"echo/{t}" for t in ("echo", "add", "slow", "crash", "big", "image", "fail"))
        await session.set_tool_choice(ToolChoice(("echo",), off=only_weather))
        result = await session.send("What is the weather in Rome?")
        assert result.status == "complete", result.error
    finally:
        await host.aclose()
        await provider.close()
    assert not ({p.pid for p in psutil.Process().children(recursive=True)} - before)
    await store.close()
    record, _rounds = await _weather_loop_kept(tmp_path / "db", conv.id)
    assert record.server == "echo"
    assert deltas, "the final answer streamed"
    shown_ms = (moments["result"] - moments["approved"]) * 1000
    print(f"approval → result shown (stdio MCP server): {shown_ms:.1f} ms")


def test_headless_chat_runs_the_same_loop_on_the_real_server(llama_server: LlamaServer, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`victor-gui chat --tools echo --approve-tools --json` against the real llama-server and the
    tiny model, the MCP server from mcp.json over stdio: the call runs and --json lists it."""
    import argparse
    import io
    import json
    import sys

    from victor_gui.cli.chat import add_chat_command, run_chat

    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    (config / "victor_gui").mkdir(parents=True)
    (config / "victor_gui" / "mcp.json").write_text(json.dumps({"mcpServers": {"echo": {
        "command": sys.executable, "args": ["-m", "tests.mcp.servers.echo_server", "--weather-only"],
        "cwd": str(ROOT)}}}))
    parser = argparse.ArgumentParser()
    add_chat_command(parser.add_subparsers())
    # The llama.cpp provider (its models call tools natively), found where the server runs.
    monkeypatch.setenv("VICTOR_LLAMACPP_HOST", f"127.0.0.1:{llama_server.port}")
    args = parser.parse_args(["chat", "What is the weather in Rome?", "--provider", "llamacpp",
                              "--model", "tiny", "--tools", "echo", "--approve-tools", "--json",
                              "--settings", str(tmp_path / "s.yaml"), "--data-dir", str(tmp_path / "d")])
    out, err = io.StringIO(), io.StringIO()
    code = run_chat(args, out, err)
    doc = json.loads(out.getvalue())
    assert code == 0, err.getvalue()
    calls = doc["tool_calls"]
    assert calls and calls[0]["server"] == "echo" and calls[0]["state"] in ("done", "error"), calls
    weather = [c for c in calls if c["tool"] == "get_weather"]
    assert weather and weather[0]["state"] == "done" and "Sunny" in weather[0]["result"], calls
    assert weather[0]["approved_by"] == "flag"
