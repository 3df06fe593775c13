"""Tools from the window, end to end (issue 12): a real MCP server (the SDK test server over
stdio, named in mcp.json), the app's McpTools, the chat's tools menu, the approval prompt, the
tool loop against the llama.cpp simulator, the folded call, the store, and the rule kept in
settings; no server process outlives the tools."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.servers.base import Script, ScriptedToolCall
from tests.ui.conftest import stored_messages, wait_until
from victor_gui.services.mcp_tools import McpTools
from victor_gui.services.settings_service import SettingsService
from victor_gui.services.tool_types import ServerState
from victor_gui.ui.tool_views import ApprovalPrompt, ToolCallBlock

pytestmark = pytest.mark.usefixtures("keep_running_when_closed")
ROOT = Path(__file__).resolve().parents[2]


def _items(chat, kind):  # type: ignore[no-untyped-def]
    return [w for w in chat.transcript.items if isinstance(w, kind)]


async def test_a_tool_call_is_approved_in_the_window_runs_and_is_kept(sim, window, tmp_path: Path) -> None:
    mcp_json = tmp_path / "mcp.json"
    mcp_json.write_text(json.dumps({"mcpServers": {"echo": {
        "command": sys.executable, "args": ["-m", "tests.mcp.servers.echo_server"], "cwd": str(ROOT)}}}))
    settings = SettingsService(tmp_path / "settings.yaml")
    await settings.load()
    tools = McpTools(settings, path=mcp_json)
    chat = window.chat
    tools.subscribe(lambda host: chat.use_tools(host, tools.approvals))
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    try:
        await tools.start()
        assert [s.state for s in tools.host.statuses()] == [ServerState.STOPPED]  # lazily: no process
        await chat.start()
        await wait_until(lambda: chat.model_combo.currentText().strip())
        chat.tools_button.rebuild_menu()
        chat.tools_button.actions_by_name["server:echo"].trigger()  # the person turns the server on
        assert chat.tools_button.text() == "Tools: 1 server"
        sim.script(Script(text="", tool_calls=[ScriptedToolCall("add", {"a": 2, "b": 3}, id="c1")]),
                   Script(text="It is 5."))
        chat.input.setPlainText("2 + 3?")
        chat.send()
        await wait_until(lambda: _items(chat, ApprovalPrompt), limit_s=20)
        [prompt] = _items(chat, ApprovalPrompt)
        assert "add" in prompt.title.text() and '"a": 2' in prompt.arguments_view.toPlainText()
        clicked = time.perf_counter()
        prompt.always_tool_button.click()
        await wait_until(lambda: any(b.record.state.value == "done" for b in _items(chat, ToolCallBlock)),
                         limit_s=10)
        shown_s = time.perf_counter() - clicked
        await wait_until(lambda: not chat.running and not chat.session.busy, limit_s=10)
        assert chat.transcript.messages[-1].text == "It is 5."
        print(f"approval to result shown: {shown_s * 1000:.0f} ms")
        stored = await stored_messages(window)
        roles = [m.role for m in stored]
        assert roles == ["user", "assistant", "tool", "assistant"], roles
        assert stored[1].tool_calls and stored[1].tool_calls[0]["name"] == "add"
        tool = stored[2]
        assert tool.content == "5" and tool.meta is not None
        assert tool.meta["tool"]["server"] == "echo" and tool.meta["tool"]["state"] == "done"
        assert tool.meta["tool"]["approved_by"] == "always_tool"
        assert settings.settings.tool_approvals["echo"].tools == ["add"]  # kept for Settings → Tools
        # The request that continued the reply carried the result, paired with its call.
        second = sim.chat_requests()[-1].body["messages"]
        assert any(m.get("role") == "tool" and m.get("content") == "5" for m in second)
        # The rule covers the next call: it runs without asking.
        sim.script(Script(text="", tool_calls=[ScriptedToolCall("add", {"a": 1, "b": 1}, id="c2")]),
                   Script(text="It is 2."))
        chat.input.setPlainText("1 + 1?")
        chat.send()
        await wait_until(lambda: not chat.running and chat.transcript.messages[-1].text == "It is 2.",
                         limit_s=20)
        assert not _items(chat, ApprovalPrompt)
        # A reopened chat shows its calls as folded blocks and its tools switch.
        cid = chat.conversation_id
        chat.new_chat()
        await chat.open_conversation(cid)
        assert len(_items(chat, ToolCallBlock)) == 2
        await wait_until(lambda: chat.tools_button.selection == {"echo": None})
    finally:
        await tools.aclose()
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not left, f"MCP server processes left: {left}"
