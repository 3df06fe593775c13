"""``victor-gui chat --tools … [--approve-tools] --json``: the same tool loop headless, with the
test ToolSource given through ``ChatRequest.tool_source`` (and through ``build_tool_source`` for
the command line), against the llama.cpp simulator."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.providers.openai_sims import running
from tests.servers.base import Script, ScriptedToolCall, SimServer
from tests.services.tool_sources import FunctionTools
from victor_gui.cli.chat import add_chat_command, run_chat
from victor_gui.services import headless_chat
from victor_gui.services.headless_chat import ChatRequest, HeadlessChat
from victor_gui.services.settings_service import SettingsService
from victor_gui.services.tool_approvals import ToolApprovals
from victor_gui.services.tool_types import ApprovalAnswer


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    monkeypatch.setattr(headless_chat, "_read_keyring", lambda names: ({}, None))
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
    tools, closed = FunctionTools(), []

    async def build() -> tuple[FunctionTools, Any]:
        async def close() -> None:
            closed.append(True)
        return tools, close

    monkeypatch.setattr(headless_chat, "build_tool_source", build)
    parser = argparse.ArgumentParser()
    add_chat_command(parser.add_subparsers())
    args = parser.parse_args(["chat", "2 + 3?", "--endpoint", sim.url + "/v1", "--model", "sim-model",
                              "--tools", "calc,weather", "--approve-tools", "--json",
                              "--settings", str(tmp_path / "s.yaml"), "--data-dir", str(tmp_path / "d")])
    assert args.tools == ["calc", "weather"]
    script_add(sim)
    out, err = io.StringIO(), io.StringIO()
    assert run_chat(args, out, err) == 0, err.getvalue()
    doc = json.loads(out.getvalue())
    assert doc["text"] == "It is 5." and [c["tool"] for c in doc["tool_calls"]] == ["add"]
    assert closed == [True]
    # An ad-hoc endpoint's model has no native tool calls in the capabilities table: the adapter
    # describes the tools in the prompt (names made unique across the two servers).
    first = sim.chat_requests()[0].body
    prompt = json.dumps(first.get("tools") or first["messages"])
    assert all(name in prompt for name in ("calc__add", "weather__add", "get_weather"))


def test_approve_tools_without_tools_is_a_usage_error(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_chat_command(parser.add_subparsers())
    args = parser.parse_args(["chat", "hi", "--approve-tools"])
    err = io.StringIO()
    assert run_chat(args, io.StringIO(), err) == 2 and "--tools" in err.getvalue()
