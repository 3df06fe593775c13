"""Screenshots of tools in the window (issue 12), in light and dark, under a real X server:

* ``tools-prompt-MODE.png``: a chat where the reply asked for a tool, and the inline approval
  prompt under it (a long argument folded), a second call of the same turn stacked below;
* ``tools-calls-MODE.png``: a reopened chat with folded tool calls (done, denied, failed) and
  one unfolded, showing its arguments and result;
* ``settings-tools-MODE.png``: Settings → Tools (a ready, a failed server with its stderr tail,
  a stopped one; mcp.json; approval rules with Revoke).

    python -m bench.screenshots_tools --out /tmp/shots-tools

Without ``DISPLAY`` it re-runs itself under ``xvfb-run -a``. The MCP host and the approvals
service are the tests' small in-process stand-ins (tests/support/tool_parts.py). Only for
people and the README; nothing here is a test.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from bench.xvfb import close_window, run_shots

WRITE_CONTENT = ("# Notes from the meeting\n\n" + "We agreed to move the release to Thursday, to run the "
                 "migration on the staging copy first, and to keep the old importer for one more "
                 "version so that people with custom scripts have time to switch. " * 3)
STDERR = ("Traceback (most recent call last):\n  File \"/opt/mcp/weather/server.py\", line 3, in <module>\n"
          "    import mcp_weather\nModuleNotFoundError: No module named 'mcp_weather'")


async def _fill(store) -> int:  # type: ignore[no-untyped-def]
    from victor_gui.services.tool_types import ToolCallRecord, ToolCallState

    conv = await store.create_conversation("What time is it in Tokyo?")
    await store.add_message(conv.id, "user", "What time is it in Tokyo, and save a note of the meeting?")
    calls = [{"id": "c1", "name": "get_current_time", "arguments": {"timezone": "Asia/Tokyo"}},
             {"id": "c2", "name": "write_file", "arguments": {"path": "notes.md"}},
             {"id": "c3", "name": "fetch", "arguments": {"url": "https://example.org"}}]
    await store.add_message(conv.id, "assistant", "Let me check the time and save the note.",
                            tool_calls=calls,
                            provider="llamacpp", model="qwen3-8b-instruct-q4_k_m")
    records = [
        (ToolCallRecord("c1", "time", "get_current_time", {"timezone": "Asia/Tokyo"}, ToolCallState.DONE,
                        duration_s=0.4, approved_by="rule:server"),
         '{\n  "timezone": "Asia/Tokyo",\n  "datetime": "2026-12-07T07:12:03+09:00",\n  "is_dst": false\n}'),
        (ToolCallRecord("c2", "files", "write_file", {"path": "notes.md", "content": WRITE_CONTENT},
                        ToolCallState.DENIED, approved_by="deny"),
         "The person denied this call."),
        (ToolCallRecord("c3", "web", "fetch", {"url": "https://example.org"}, ToolCallState.ERROR,
                        duration_s=60.0, approved_by="run_once"),
         "The tool did not answer within 60 s."),
    ]
    for record, result in records:
        await store.add_message(conv.id, "tool", result, tool_call_id=record.call_id,
                                meta={"tool": record.to_meta()})
    await store.add_message(conv.id, "assistant", "It is **07:12** in Tokyo (Saturday). I did not save the "
                            "note: writing files was denied, and the web fetch timed out.",
                            provider="llamacpp", model="qwen3-8b-instruct-q4_k_m")
    return conv.id


async def shoot(out: Path) -> list[Path]:
    from tests.support.tool_parts import MemoryRules, StatusBoard
    from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
    from victor_gui.services.provider_choices import ProviderPool
    from victor_gui.services.tool_types import ApprovalRequest, McpServerStatus, ServerState
    from victor_gui.storage import open_store
    from victor_gui.ui.main_window import MainWindow
    from victor_gui.ui.settings_dialog import SettingsContext, SettingsDialog
    from victor_gui.ui.settings_tools import ToolsContext
    from victor_gui.ui.theme import apply_theme
    from victor_gui.ui.tool_views import ToolCallBlock

    home = tempfile.TemporaryDirectory()
    os.environ["XDG_CONFIG_HOME"] = str(Path(home.name) / "config")  # no user settings read
    os.environ["XDG_DATA_HOME"] = str(Path(home.name) / "data")
    saved: list[Path] = []
    client = make_client(LOCAL_TIMEOUTS)
    pool = ProviderPool(client)
    store, _notice = await open_store(Path(home.name) / "chats")
    conv_id = await _fill(store)
    board = StatusBoard([
        McpServerStatus("time", "stdio", ServerState.READY, tool_names=("get_current_time", "convert_time"),
                        pid=48211),
        McpServerStatus("weather", "stdio", ServerState.FAILED, error="The server exited during start-up "
                        "(exit code 1).", stderr_tail=STDERR),
        McpServerStatus("search", "http", ServerState.STOPPED),
    ])
    async def import_file(path: Path) -> str:
        return f"Imported 2 servers from {path.name}."

    rules = MemoryRules({"time": {"all": True, "tools": []},
                         "files": {"all": False, "tools": ["read_file", "list_dir"]}})
    window = MainWindow(pool, store)
    window.resize(1100, 760)
    window.show()
    chat = window.chat
    chat.tools_button.set_source(board)
    chat.tools_button.set_selection({"time": None})

    def grab(widget, name: str) -> None:  # type: ignore[no-untyped-def]
        path = out / name
        widget.grab().save(str(path))
        saved.append(path)

    try:
        for mode in ("light", "dark"):
            apply_theme(mode)
            await chat.open_conversation(conv_id)
            await asyncio.sleep(0.4)
            blocks = [w for w in chat.transcript.items if isinstance(w, ToolCallBlock)]
            blocks[0].set_expanded(True)
            await asyncio.sleep(0.3)
            chat.transcript.scroll_to(blocks[0])
            await asyncio.sleep(0.3)
            grab(window, f"tools-calls-{mode}.png")

            # The prompt: a new turn's calls, asked about under the reply.
            chat.new_chat()
            chat.transcript.add_message("user", "You", "Save the meeting notes to notes.md and "
                                        "tell me the time in Tokyo.")
            chat.transcript.add_message("assistant", "llama.cpp · qwen3-8b-instruct-q4_k_m",
                                        "I will save the notes, then check the time.")
            write = {"path": "notes.md", "content": WRITE_CONTENT, "append": False}
            first = asyncio.ensure_future(chat.asker(ApprovalRequest("c1", "files", "write_file", write)))
            second = asyncio.ensure_future(chat.asker(ApprovalRequest(
                "c2", "time", "get_current_time", {"timezone": "Asia/Tokyo"})))
            await asyncio.sleep(0.6)
            grab(window, f"tools-prompt-{mode}.png")
            first.cancel()
            second.cancel()
            await asyncio.gather(first, second, return_exceptions=True)

            mcp_json = Path(home.name) / "config" / "victor_gui" / "mcp.json"
            context = SettingsContext(window.settings_service, None, chat, lambda: store, lambda s: None,
                                      lambda text: None,
                                      tools=ToolsContext(board, rules, mcp_json, import_file))
            dialog = SettingsDialog(context, window)
            dialog.resize(820, 620)
            dialog.tabs.setCurrentWidget(dialog.tools)
            dialog.show()
            await dialog.tools.show_rules()
            await asyncio.sleep(0.4)
            grab(dialog, f"settings-tools-{mode}.png")
            dialog.close()
    finally:
        await close_window(window, pool, client, store)
        home.cleanup()
    return saved


if __name__ == "__main__":
    raise SystemExit(run_shots("bench.screenshots_tools", __doc__, shoot))
