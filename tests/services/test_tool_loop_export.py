"""A conversation with tool calls exports whole: JSON keeps the calls, the results and their
records (and imports back to the same), Markdown shows each call with its result."""

from __future__ import annotations

import json
from pathlib import Path

from tests.providers.openai_sims import make_provider, running
from tests.servers.base import Script, ScriptedToolCall
from tests.services.tool_sources import FunctionTools
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.tool_loop import ToolChoice
from victor_gui.services.tool_types import ApprovalAnswer, ApprovalRequest
from victor_gui.storage import open_store
from victor_gui.storage.export import export_json, export_markdown, import_json


async def run_once(_: ApprovalRequest) -> ApprovalAnswer:
    return ApprovalAnswer.RUN_ONCE


async def test_export_includes_calls_and_results(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path / "db")
    conv = await store.create_conversation("tools")
    with running("llamacpp") as server:
        provider = make_provider("llamacpp", server)
        session = ChatSession(store, conv.id, provider, "sim-model", tools=FunctionTools(), asker=run_once)
        await session.set_tool_choice(ToolChoice(("calc",)))
        add = ScriptedToolCall("add", {"a": 2, "b": 3}, id="c1")
        server.script(Script(text="Adding.", tool_calls=[add]), Script(text="It is 5."))
        await session.send("2 + 3?")
        await provider.close()
    doc = json.loads(await export_json(store, [conv.id]))
    messages = doc["conversations"][0]["messages"]
    assert doc["conversations"][0]["params"]["tools"] == {"servers": ["calc"], "off": []}
    assert messages[1]["tool_calls"][0]["name"] == "add"
    result = messages[2]
    assert (result["role"], result["tool_call_id"], result["content"]) == ("tool", "c1", "5")
    assert result["meta"]["tool"]["server"] == "calc" and result["meta"]["tool"]["approved_by"] == "run_once"
    assert result["meta"]["tool"]["state"] == "done"
    assert result["meta"]["tool"]["arguments"] == {"a": 2, "b": 3}
    [copy] = await import_json(store, await export_json(store, [conv.id]))
    assert (await export_json(store, [copy])) == (await export_json(store, [conv.id]))
    md = await export_markdown(store, [conv.id])
    await store.close()
    assert "Tool call `add` (`c1`)" in md
    assert "### Tool result · `calc/add` · done ·" in md and "approved by run_once" in md
    assert "Result:\n\n```\n5\n```" in md


async def test_markdown_result_fence_cannot_be_closed_by_the_result(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path / "db")
    conv = await store.create_conversation("fence")
    await store.add_message(conv.id, "tool", "```\n# not a heading\n```", tool_call_id="c1",
                            meta={"tool": {"call_id": "c1", "server": "s", "tool": "t", "arguments": {},
                                           "state": "error", "duration_s": None, "approved_by": None}})
    md = await export_markdown(store, [conv.id])
    await store.close()
    assert "````\n```\n# not a heading\n```\n````" in md
