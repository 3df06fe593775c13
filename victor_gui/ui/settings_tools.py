"""Settings → Tools (issue 12): the MCP servers (name, transport, state, error and stderr tail,
Restart), where ``mcp.json`` is (Open, and Import from a Claude Desktop / Cursor / LM Studio
file), and the approval rules per server (all tools, or listed tools) with Revoke.

The page works through the small protocols below (:class:`ServerControl`,
:class:`ApprovalRules`), which the MCP host and the approvals service fit; each may be absent
(the page then says so). Their methods may be plain or async: a result that can be awaited is.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from victor_gui.ui.tools_switch import DOT_COLOURS, ServerStatusSource
from victor_gui.ui.widgets.wrap_label import WrapLabel

# The stderr tail a failed server shows (the host keeps more; the page shows the end).
STDERR_LINES = 8


class ServerControl(ServerStatusSource, Protocol):
    """Lists MCP servers, follows their state, restarts one (the MCP host fits it)."""

    def restart(self, name: str) -> Any:
        """Restart server ``name`` (may be a coroutine)."""
        ...


class ApprovalRules(Protocol):
    """The stored approval rules (``tool_approvals`` in settings), listed and revoked."""

    def rules(self) -> Any:
        """``{server: {"all": bool, "tools": [...]}}``, or rows with ``server`` and ``tool``
        (None: every tool of the server); may be a coroutine (services.tool_approvals fits)."""
        ...

    def revoke(self, server: str, tool: str | None = None) -> Any:
        """Remove one rule (``tool`` None: the server's "all tools" rule); may be a coroutine."""
        ...


@dataclass
class ToolsContext:
    """What the Tools page works with; any part may be missing (the page says so)."""

    servers: ServerControl | None = None
    rules: ApprovalRules | None = None
    config_path: Path | None = None  # mcp.json (None: the app's config folder)
    # Import another client's file into mcp.json; returns the sentence to show.
    import_file: Callable[[Path], Awaitable[str]] | None = None


async def _settle(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def rule_rows(listing: Any) -> list[tuple[str, str | None]]:
    """The rules as ``(server, tool)`` rows (tool None: all tools), from the settings shape
    ``{server: {"all": bool, "tools": [...]}}`` or from objects with ``server``/``tool``."""
    rows: list[tuple[str, str | None]] = []
    if isinstance(listing, Mapping):
        for server, rule in sorted(listing.items()):
            rule = rule if isinstance(rule, Mapping) else {}
            if rule.get("all"):
                rows.append((str(server), None))
            rows.extend((str(server), str(t)) for t in rule.get("tools") or ())
    elif isinstance(listing, Iterable):
        for item in listing:
            server = getattr(item, "server", None)
            if server is not None:
                tool = getattr(item, "tool", None)
                rows.append((str(server), str(tool) if tool else None))
    return rows


def default_config_path() -> Path:
    """``mcp.json`` in the app's config folder (beside settings.yaml)."""
    from victor_gui.config.settings import settings_path

    return settings_path().parent / "mcp.json"


def _section(title: str) -> tuple[QGroupBox, QVBoxLayout]:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setSpacing(4)
    return box, layout


class ServerRow(QFrame):
    """One server: state dot, name, transport and state; the error and stderr tail; Restart."""

    def __init__(self, name: str, on_restart: Callable[[str], None]) -> None:
        super().__init__()
        self.name = name
        self.setObjectName("mcpServerRow")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        top = QHBoxLayout()
        self.dot = QLabel("●")
        self.title = WrapLabel(name)
        self.title.setAccessibleName(f"MCP server {name}")
        self.restart_button = QPushButton("Restart")
        self.restart_button.setAccessibleName(f"Restart the MCP server {name}")
        self.restart_button.setAutoDefault(False)
        self.restart_button.clicked.connect(lambda: on_restart(name))
        top.addWidget(self.dot)
        top.addWidget(self.title, 1)
        top.addWidget(self.restart_button)
        layout.addLayout(top)
        self.error = WrapLabel()
        self.error.setObjectName("mcpServerError")
        self.error.setAccessibleName(f"Why {name} failed")
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.error.font()
        font.setFamily("monospace")
        font.setStyleHint(font.StyleHint.Monospace)
        self.error.setFont(font)
        self.error.hide()
        layout.addWidget(self.error)

    def show_status(self, status: Any) -> None:
        """Show one :class:`~victor_gui.services.tool_types.McpServerStatus`."""
        state = str(status.state)
        self.dot.setStyleSheet(f"color: {DOT_COLOURS.get(state, '#8a8f98')};")
        self.dot.setAccessibleName(f"State: {state}")
        n = len(status.tool_names)
        tools = f" · {n} tool{'s' if n != 1 else ''}" if n else ""
        pid = f" · pid {status.pid}" if status.pid else ""
        self.title.setText(f"{status.name} — {status.transport} — {state}{tools}{pid}")
        tail = "\n".join(status.stderr_tail.splitlines()[-STDERR_LINES:]) if status.stderr_tail else ""
        text = "\n".join(x for x in (status.error or "", tail) if x)
        self.error.setText(text)
        self.error.setVisible(bool(text))


class ToolsPage(QWidget):
    """The Tools page of Settings over ``context`` (see :class:`ToolsContext`); ``spawn`` runs
    its coroutines (the dialog's task set)."""

    def __init__(self, context: ToolsContext, spawn: Callable[[Any], Any],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._spawn = spawn
        self.server_rows: dict[str, ServerRow] = {}
        self.rule_rows: dict[tuple[str, str | None], QWidget] = {}
        self._unsubscribe: Callable[[], None] | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        scroll.setWidget(inner)
        outer.addWidget(scroll)

        box, self._servers_box = _section("MCP servers")
        self.servers_empty = WrapLabel("")
        self.servers_empty.setAccessibleName("MCP servers")
        self._servers_box.addWidget(self.servers_empty)
        layout.addWidget(box)

        box, file_box = _section("mcp.json")
        path_row = QHBoxLayout()
        self.path_label = WrapLabel(str(context.config_path or default_config_path()))
        self.path_label.setAccessibleName("Path of mcp.json")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open")
        self.open_button.setAccessibleName("Open mcp.json in the file's usual editor")
        self.open_button.clicked.connect(self.open_config)
        self.import_button = QPushButton("Import from Claude Desktop / Cursor / LM Studio file…")
        self.import_button.setAccessibleName("Import MCP servers from another app's file")
        self.import_button.clicked.connect(self.ask_import)
        self.import_button.setEnabled(context.import_file is not None)
        for b in (self.open_button, self.import_button):
            b.setAutoDefault(False)
        path_row.addWidget(self.path_label, 1)
        path_row.addWidget(self.open_button)
        file_box.addLayout(path_row)
        file_box.addWidget(self.import_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(box)

        box, self._rules_box = _section("Approval rules")
        self._rules_box.addWidget(WrapLabel("Calls these rules cover run without asking. Revoke one "
                                            "and its calls are asked about again."))
        self.rules_empty = WrapLabel("")
        self.rules_empty.setAccessibleName("Approval rules")
        self._rules_box.addWidget(self.rules_empty)
        layout.addWidget(box)
        self.message = WrapLabel("")
        self.message.setAccessibleName("Tools message")
        layout.addWidget(self.message)
        layout.addStretch(1)
        if context.servers is not None:
            self._unsubscribe = context.servers.subscribe(lambda _status: self.show_servers())
        self.show_servers()

    # -- servers ---------------------------------------------------------------------------------

    def show_servers(self) -> None:
        """List the servers with their current states (called again on every change)."""
        source = self.context.servers
        statuses = list(source.statuses()) if source is not None else []
        names = {s.name for s in statuses}
        for name in [n for n in self.server_rows if n not in names]:
            gone = self.server_rows.pop(name)
            self._servers_box.removeWidget(gone)
            gone.deleteLater()
        for status in statuses:
            if status.name not in self.server_rows:
                self.server_rows[status.name] = ServerRow(status.name, self.restart)
                self._servers_box.addWidget(self.server_rows[status.name])
            self.server_rows[status.name].show_status(status)
        self.servers_empty.setText("" if statuses else (
            "No MCP servers configured: add them to mcp.json, or import another app's file."
            if source is not None else "The MCP host is not running."))
        self.servers_empty.setVisible(not statuses)

    def restart(self, name: str) -> Any:
        """Restart server ``name`` (in the background; its row follows its state)."""
        return self._spawn(self._restart(name))

    async def _restart(self, name: str) -> None:
        if self.context.servers is None:
            return
        self.message.setText(f"Restarting {name}…")
        try:
            await _settle(self.context.servers.restart(name))
        except Exception as exc:  # said on the page; the host's status says the rest
            self.message.setText(f"{name} could not be restarted: {exc}")
            return
        self.message.setText(f"{name} restarted.")
        self.show_servers()

    # -- mcp.json ----------------------------------------------------------------------------------

    def open_config(self) -> bool:
        """Open mcp.json with the desktop's handler for it (made empty first if missing)."""
        path = self.context.config_path or default_config_path()
        if not path.exists():
            self.message.setText(f"{path} does not exist yet: import a file, or create it with "
                                 '{"mcpServers": {}}.')
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def ask_import(self) -> QFileDialog:
        dialog = QFileDialog(self, "Import MCP servers from")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilter("MCP configuration (*.json);;All files (*)")
        dialog.fileSelected.connect(lambda p: self.import_from(Path(p)))
        dialog.open()
        return dialog

    def import_from(self, path: Path) -> Any:
        """Import ``path`` (Claude Desktop, Cursor or LM Studio's file) into mcp.json."""
        return self._spawn(self._import(path))

    async def _import(self, path: Path) -> None:
        if self.context.import_file is None:
            return
        try:
            self.message.setText(await self.context.import_file(path))
        except Exception as exc:  # a bad file: said, the page stays usable
            self.message.setText(f"{path.name} could not be imported: {exc}")
        self.show_servers()

    # -- approval rules ----------------------------------------------------------------------------

    def load_rules(self) -> Any:
        """List the rules (in the background)."""
        return self._spawn(self.show_rules())

    async def show_rules(self) -> None:
        """List the approval rules, one row each with Revoke."""
        rules = self.context.rules
        rows = rule_rows(await _settle(rules.rules())) if rules is not None else []
        for key in [k for k in self.rule_rows if k not in rows]:
            widget = self.rule_rows.pop(key)
            self._rules_box.removeWidget(widget)
            widget.deleteLater()
        for server, tool in rows:
            if (server, tool) not in self.rule_rows:
                self.rule_rows[(server, tool)] = self._rule_row(server, tool)
        self.rules_empty.setText("" if rows else "No rules: every call is asked about.")
        self.rules_empty.setVisible(not rows)

    def _rule_row(self, server: str, tool: str | None) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        what = f"{server} — all tools" if tool is None else f"{server} — {tool}"
        label = WrapLabel(what)
        label.setAccessibleName(f"Rule: always allow {what}")
        revoke = QPushButton("Revoke")
        revoke.setObjectName("revoke")
        revoke.setAutoDefault(False)
        revoke.setAccessibleName(f"Revoke the rule always allow {what}")
        revoke.clicked.connect(lambda: self.revoke(server, tool))
        layout.addWidget(label, 1)
        layout.addWidget(revoke)
        self._rules_box.addWidget(row)
        return row

    def revoke(self, server: str, tool: str | None) -> Any:
        """Revoke one rule; its row goes once the rules service no longer lists it."""
        return self._spawn(self._revoke(server, tool))

    async def _revoke(self, server: str, tool: str | None) -> None:
        if self.context.rules is None:
            return
        try:
            await _settle(self.context.rules.revoke(server, tool))
        except Exception as exc:  # a settings write failed: said, the rule stays listed
            self.message.setText(f"The rule could not be revoked: {exc}")
            return
        self.message.setText(f"Revoked: {server} — {tool or 'all tools'}. Its calls are asked about again.")
        await self.show_rules()

    def close_page(self) -> None:
        """Stop following the servers (the dialog closes)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
