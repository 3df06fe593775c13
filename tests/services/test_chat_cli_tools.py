"""``victor-gui chat --tools … [--approve-tools] --json``: the same tool loop headless, against the
llama.cpp simulator: with the test ToolSource given through ``ChatRequest.tool_source``, and from
the command line with a real MCP server named in mcp.json."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.providers.openai_sims import running
from tests.servers.base import Script, ScriptedToolCall, SimServer
from tests.services.tool_sources import FunctionTools
from victor_gui.cli.chat import add_chat_command, run_chat
from victor_gui.services import headless_target
from victor_gui.services.headless_chat import ChatRequest, HeadlessChat
from victor_gui.services.settings_service import SettingsService
from victor_gui.services.tool_approvals import ToolApprovals
from victor_gui.services.tool_types import ApprovalAnswer


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    monkeypatch.setattr(headless_target, "_read_keyring", lambda names: ({}, None))
    with running("llamacpp") as server:
        yield server


def script_add(server: SimServer) -> None:
    server.script(Script(text="Adding.", tool_calls=[ScriptedToolCall("add", {"a": 2, "b": 3}, id="c1")]),
                  Script(text="It is 5."))


def request(tmp_path: Path, server: SimServer, **kwargs: Any) -> ChatRequest:
    return ChatRequest(prompt="2 + 3?", endpoint=server.url + "/v1", model="sim-model",
                       settings_path=tmp_path / "settings.yaml", data_dir=tmp_path / "data", **kwargs)


async def test_approve_tools_runs_the_loop_and_lists_the_calls(tmp_path: Path, sim: SimServer) -> None:
    tools = FunctionTools()
    script_add(sim)
    text: list[str] = []
    chat = HeadlessChat(request(tmp_path, sim, tools=["calc"], approve_tools=True, tool_source=tools),
                        on_text=text.append)
    outcome = await chat.run()
    assert outcome.status == "complete" and outcome.text == "It is 5."
    assert "".join(text).endswith("It is 5.") and tools.calls == [("calc", "add", {"a": 2, "b": 3})]
    [call] = outcome.to_json()["tool_calls"]
    assert call["server"] == "calc" and call["tool"] == "add" and call["arguments"] == {"a": 2, "b": 3}
    assert call["state"] == "done" and call["result"] == "5" and call["approved_by"] == "flag"
    assert call["duration_s"] is not None and not outcome.warnings


async def test_without_approve_only_saved_rules_run(tmp_path: Path, sim: SimServer) -> None:
    tools = FunctionTools()
    script_add(sim)
    outcome = await HeadlessChat(request(tmp_path, sim, tools=["calc"], tool_source=tools)).run()
    assert tools.calls == [] and outcome.tool_calls and outcome.tool_calls[0]["state"] == "denied"
    assert any("calc/add did not run" in w and "--approve-tools" in w for w in outcome.warnings)
    # Once allowed in Settings → Tools, the same call runs headless without the flag.
    service = SettingsService(tmp_path / "settings.yaml")
    await service.load()
    await ToolApprovals(service).remember("calc", "add", ApprovalAnswer.ALWAYS_TOOL)
    script_add(sim)
    outcome = await HeadlessChat(request(tmp_path, sim, tools=["calc"], tool_source=tools)).run()
    assert tools.calls == [("calc", "add", {"a": 2, "b": 3})]
    assert outcome.tool_calls and outcome.tool_calls[0]["approved_by"] == "rule:tool" and not outcome.warnings


def test_command_line_tools_json(tmp_path: Path, sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real thing headless: mcp.json in the config folder names a real MCP server (the test
    server, over stdio, through the SDK); `chat --tools echo --approve-tools --json` runs the
    model's call on it, lists it, and leaves no server process behind."""
    import psutil

    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    (config / "victor_gui").mkdir(parents=True)
    (config / "victor_gui" / "mcp.json").write_text(json.dumps({"mcpServers": {"echo": {
        "command": sys.executable, "args": ["-m", "tests.mcp.servers.echo_server"],
        "cwd": str(Path(__file__).resolve().parents[2])}}}), encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_chat_command(parser.add_subparsers())
    args = parser.parse_args(["chat", "2 + 3?", "--endpoint", sim.url + "/v1", "--model", "sim-model",
                              "--tools", "echo", "--approve-tools", "--json",
                              "--settings", str(tmp_path / "s.yaml"), "--data-dir", str(tmp_path / "d")])
    assert args.tools == ["echo"]
    script_add(sim)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    out, err = io.StringIO(), io.StringIO()
    assert run_chat(args, out, err) == 0, err.getvalue()
    doc = json.loads(out.getvalue())
    assert doc["text"] == "It is 5."
    [call] = doc["tool_calls"]
    assert (call["server"], call["tool"], call["arguments"], call["state"], call["result"]) == (
        "echo", "add", {"a": 2, "b": 3}, "done", "5")
    assert call["approved_by"] == "flag" and call["duration_s"] is not None
    # The tools the model was offered came from the server's own listing.
    first = sim.chat_requests()[0].body
    offered = json.dumps(first.get("tools") or first["messages"])
    assert all(name in offered for name in ("echo", "add", "slow"))
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not left, f"MCP server processes left behind: {left}"


def test_a_tools_name_mcp_json_lacks_is_a_usage_error(tmp_path: Path, sim: SimServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    parser = argparse.ArgumentParser()
    add_chat_command(parser.add_subparsers())
    args = parser.parse_args(["chat", "hi", "--endpoint", sim.url + "/v1", "--model", "sim-model",
                              "--tools", "nosuch", "--settings", str(tmp_path / "s.yaml"),
                              "--data-dir", str(tmp_path / "d")])
    out, err = io.StringIO(), io.StringIO()
    assert run_chat(args, out, err) == 2, err.getvalue()
    assert "no MCP server named 'nosuch'" in err.getvalue() and "mcp.json" in err.getvalue()


def test_approve_tools_without_tools_is_a_usage_error(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_chat_command(parser.add_subparsers())
    args = parser.parse_args(["chat", "hi", "--approve-tools"])
    err = io.StringIO()
    assert run_chat(args, io.StringIO(), err) == 2 and "--tools" in err.getvalue()
