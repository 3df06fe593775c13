"""Settings → Tools (issue 12): the MCP servers with their states (a failed one with its error
and stderr tail), Restart, mcp.json's path, Import, and the approval rules, where Revoke calls
the rules service and the row goes. Small real in-process parts stand in for the MCP host and
the approvals service."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.tool_parts import MemoryRules, StatusBoard
from tests.ui.conftest import wait_until
from victor_gui.services.tool_types import McpServerStatus, ServerState
from victor_gui.ui.settings_tools import ToolsContext, ToolsPage, rule_rows

pytestmark = pytest.mark.usefixtures("keep_running_when_closed")


STDERR = "\n".join(f"line {i}" for i in range(20)) + "\nModuleNotFoundError: No module named 'mcp_weather'"


@pytest.fixture
def board() -> StatusBoard:
    return StatusBoard([
        McpServerStatus("time", "stdio", ServerState.READY, tool_names=("get_current_time",), pid=1234),
        McpServerStatus("weather", "stdio", ServerState.FAILED, error="The server exited during start-up.",
                        stderr_tail=STDERR),
        McpServerStatus("search", "http", ServerState.STOPPED),
    ])


@pytest.fixture
def page(qtbot, board, tmp_path: Path):  # type: ignore[no-untyped-def]
    rules = MemoryRules({"time": {"all": True, "tools": []},
                         "files": {"all": False, "tools": ["read_file", "list_dir"]}})
    imported: list[Path] = []

    async def import_file(path: Path) -> str:
        imported.append(path)
        return f"Imported 2 servers from {path.name}."

    p = ToolsPage(ToolsContext(board, rules, tmp_path / "mcp.json", import_file), asyncio.ensure_future)
    p.rules_service, p.imported = rules, imported  # type: ignore[attr-defined]
    qtbot.addWidget(p)
    p.resize(700, 600)
    p.show()
    yield p
    p.close_page()


async def test_servers_are_listed_with_transport_state_and_a_failed_ones_stderr_tail(page, board) -> None:
    rows = page.server_rows
    assert list(rows) == ["time", "weather", "search"]
    assert rows["time"].title.text() == "time — stdio — ready · 1 tool · pid 1234"
    assert rows["search"].title.text() == "search — http — stopped"
    assert rows["time"].error.isHidden()
    weather = rows["weather"].error.text()
    assert "exited during start-up" in weather and "No module named 'mcp_weather'" in weather
    assert "line 0\n" not in weather  # only the tail
    assert rows["weather"].dot.accessibleName() == "State: failed"
    rows["weather"].restart_button.click()
    await wait_until(lambda: board.restarted == ["weather"])
    await wait_until(lambda: "weather — stdio — ready" in rows["weather"].title.text())
    assert rows["weather"].error.isHidden() and "weather restarted" in page.message.text()
    board.set(McpServerStatus("time", "stdio", ServerState.STARTING))  # followed live
    assert rows["time"].title.text() == "time — stdio — starting"


async def test_revoking_calls_the_rules_service_and_the_row_goes(page) -> None:
    await page.show_rules()
    assert list(page.rule_rows) == [("files", "read_file"), ("files", "list_dir"), ("time", None)]
    row = page.rule_rows[("files", "read_file")]
    label = row.layout().itemAt(0).widget()
    assert label.text() == "files — read_file"
    from PySide6.QtWidgets import QPushButton

    revoke = row.findChild(QPushButton, "revoke")
    assert revoke.accessibleName() == "Revoke the rule always allow files — read_file"
    revoke.click()
    await wait_until(lambda: ("files", "read_file") not in page.rule_rows)
    assert page.rules_service.revoked == [("files", "read_file")]
    assert list(page.rule_rows) == [("files", "list_dir"), ("time", None)]
    page.rule_rows[("time", None)].findChild(QPushButton, "revoke").click()
    await wait_until(lambda: ("time", None) not in page.rule_rows)
    assert page.rules_service.revoked[-1] == ("time", None) and "time" not in page.rules_service.table
    page.rule_rows[("files", "list_dir")].findChild(QPushButton, "revoke").click()
    await wait_until(lambda: not page.rule_rows)
    assert page.rules_empty.text() == "No rules: every call is asked about."


async def test_mcp_json_path_open_and_import(page, tmp_path: Path) -> None:
    assert page.path_label.text() == str(tmp_path / "mcp.json")
    assert page.open_config() is False and "does not exist yet" in page.message.text()
    claude = tmp_path / "claude_desktop_config.json"
    claude.write_text('{"mcpServers": {}}')
    await page.import_from(claude)
    assert page.imported == [claude]
    assert page.message.text() == "Imported 2 servers from claude_desktop_config.json."


def test_rule_rows_read_both_shapes() -> None:
    class Rule:
        def __init__(self, server: str, tool: str | None) -> None:
            self.server, self.tool = server, tool

    assert rule_rows({"b": {"all": True, "tools": ["x"]}, "a": {"tools": ["y"]}}) == [
        ("a", "y"), ("b", None), ("b", "x")]
    assert rule_rows([Rule("a", None), Rule("b", "t")]) == [("a", None), ("b", "t")]


async def test_the_settings_dialog_has_a_tools_page_that_says_when_no_host_runs(qtbot, window, tmp_path: Path,
                                                                                 monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    dialog = window.open_settings()
    titles = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert "Tools" in titles
    assert dialog.tools.servers_empty.text() == "The MCP host is not running."
    assert dialog.tools.path_label.text().endswith("mcp.json")
    await wait_until(lambda: dialog.tools.rules_empty.text() != "", limit_s=10)
    dialog.close()


async def test_rules_made_by_the_loop_are_revoked_in_settings_for_real(qtbot, tmp_path: Path) -> None:
    """The real parts: rules remembered by the tool loop's approvals service (in settings.yaml)
    are listed in Settings → Tools; Revoke removes them from the file, and the next call of that
    tool is asked about again."""
    from PySide6.QtWidgets import QPushButton

    from victor_gui.services.mcp_tools import McpTools
    from victor_gui.services.settings_service import SettingsService
    from victor_gui.services.tool_types import ApprovalAnswer
    from victor_gui.ui.settings_tools import ToolsContext, ToolsPage

    settings = SettingsService(tmp_path / "settings.yaml")
    await settings.load()
    tools = McpTools(settings, path=tmp_path / "mcp.json")
    await tools.start()
    await tools.approvals.remember("files", "read_file", ApprovalAnswer.ALWAYS_TOOL)
    await tools.approvals.remember("time", "get_current_time", ApprovalAnswer.ALWAYS_SERVER)
    await tools.approvals.remember("web", "fetch", ApprovalAnswer.RUN_ONCE)  # not remembered
    page = ToolsPage(ToolsContext(tools.host, tools.approvals, tools.config_path, tools.import_file),
                     lambda coro: asyncio.ensure_future(coro))
    qtbot.addWidget(page)
    await page.show_rules()
    assert list(page.rule_rows) == [("files", "read_file"), ("time", None)]
    page.rule_rows[("files", "read_file")].findChild(QPushButton, "revoke").click()
    await wait_until(lambda: ("files", "read_file") not in page.rule_rows)
    assert tools.approvals.decide("files", "read_file") is None  # asked again next time
    assert tools.approvals.decide("time", "anything") == "rule:server"
    again = SettingsService(tmp_path / "settings.yaml")  # the file itself says so
    assert "files" not in (await again.load()).tool_approvals
    page.close_page()
    await tools.aclose()
