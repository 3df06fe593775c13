"""The per-conversation tools switch beside the model picker (issue 12): a menu of the MCP
servers with state dots, each on/off, and each server's tools checkable.

Qt only (service types under TYPE_CHECKING): it is built with the chat pane, before the first
paint, which must not import the provider stack. Codes against the small
:class:`ServerStatusSource` protocol, which the MCP host fits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPixmap
from PySide6.QtWidgets import QMenu, QPushButton, QWidget

from victor_gui.ui.icons import set_icon

if TYPE_CHECKING:
    from victor_gui.services.tool_types import McpServerStatus

# Server state (a ServerState value) → its dot's colour.
DOT_COLOURS = {"ready": "#2e9d4a", "starting": "#d9a441", "failed": "#d93025", "stopped": "#8a8f98"}

ToolSelection = dict[str, list[str] | None]
"""The tools a conversation has on: server name → its chosen tool names, or None for all of
them; servers left out are off (what the chat controller stores in ``params["tools"]``)."""


class ServerStatusSource(Protocol):
    """What lists MCP servers and follows their state (the MCP host fits it)."""

    def statuses(self) -> Sequence[McpServerStatus]: ...

    def subscribe(self, callback: Callable[[McpServerStatus], None]) -> Callable[[], None]:
        """Call ``callback(status)`` after any state change; returns the unsubscribe function
        (services.mcp_host.McpHost fits)."""
        ...


def _dot(colour: str) -> QIcon:
    # Imported here: QPainter's enums (composition modes, hints) need not be built before the
    # first paint, and the dots are drawn when the menu first opens.
    from PySide6.QtGui import QPainter

    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(colour))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(1, 1, 10, 10)
    painter.end()
    return QIcon(pixmap)


class ToolsButton(QPushButton):
    """The per-conversation tools switch beside the model picker: a menu of the MCP servers with
    state dots, each on/off, and each server's tools checkable. Emits ``selection_changed`` with
    the :data:`ToolSelection` (the chat controller stores it in the conversation's
    ``params["tools"]``)."""

    selection_changed = Signal(object)  # a ToolSelection

    # A push button, not a tool button: it keeps room for its menu arrow beside the text.

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source: ServerStatusSource | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.selection: ToolSelection = {}
        self._submenus: list[QMenu] = []
        # The menu's checkable actions: "server:NAME" and "tool:SERVER:TOOL".
        self.actions_by_name: dict[str, QAction] = {}
        self.setAutoDefault(False)
        self.setAccessibleName("Tools for this conversation")
        self.setToolTip("Which MCP servers and tools this conversation may use")
        set_icon(self, "tools")
        self.menu_ = QMenu(self)
        self.menu_.aboutToShow.connect(self.rebuild_menu)
        self.setMenu(self.menu_)
        self._show_text()

    def set_source(self, source: ServerStatusSource | None) -> None:
        """List ``source``'s servers (followed live), or none."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.source = source
        if source is not None:
            self._unsubscribe = source.subscribe(self._status_changed)
        self.rebuild_menu()

    def _status_changed(self, _status: object) -> None:
        # The host outlives the window's widgets at shutdown: a state change after Qt deleted
        # this button (or its menu) is dropped, not redrawn into a dead object.
        from shiboken6 import isValid

        if isValid(self) and isValid(self.menu_):
            self.rebuild_menu()
        else:
            self.detach()

    def detach(self) -> None:
        """Stop following the source (the pane is closing: the widget may already be gone, so
        nothing is redrawn)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.source = None

    def set_selection(self, selection: ToolSelection | None) -> None:
        """Show a conversation's stored choice (no signal: nothing changed by the person)."""
        self.selection = dict(selection or {})
        self.rebuild_menu()

    def _show_text(self) -> None:
        n = len(self.selection)
        self.setText("Tools: off" if n == 0 else f"Tools: {n} server{'s' if n > 1 else ''}")

    def rebuild_menu(self) -> None:
        """The menu from the servers' current states and this chat's selection."""
        menu = self.menu_
        menu.clear()
        for sub in self._submenus:  # clear() leaves submenus alive: they go too
            sub.deleteLater()
        self._submenus.clear()
        self.actions_by_name.clear()
        statuses = list(self.source.statuses()) if self.source is not None else []
        if not statuses:
            none = menu.addAction("No MCP servers (add them in mcp.json: Settings → Tools)")
            none.setEnabled(False)
        for status in statuses:
            on = status.name in self.selection
            chosen = self.selection.get(status.name)
            action = menu.addAction(_dot(DOT_COLOURS.get(str(status.state), "#8a8f98")),
                                    f"{status.name} — {status.state.value}")
            action.setCheckable(True)
            action.setChecked(on)
            action.setObjectName(f"server:{status.name}")
            self.actions_by_name[action.objectName()] = action
            action.toggled.connect(lambda checked, name=status.name: self.set_server(name, checked))
            if status.tool_names:
                sub = menu.addMenu(f"    {status.name}'s tools")
                self._submenus.append(sub)
                for tool in status.tool_names:
                    t = sub.addAction(tool)
                    t.setCheckable(True)
                    t.setObjectName(f"tool:{status.name}:{tool}")
                    self.actions_by_name[t.objectName()] = t
                    t.setChecked(on and (chosen is None or tool in chosen))
                    t.toggled.connect(lambda checked, s=status.name, n=tool: self.set_tool(s, n, checked))
        self._show_text()

    def _tools_of(self, server: str) -> tuple[str, ...]:
        for status in self.source.statuses() if self.source is not None else []:
            if status.name == server:
                return status.tool_names
        return ()

    def set_server(self, server: str, on: bool) -> None:
        """Turn a server on (all its tools) or off for this conversation."""
        if on:
            self.selection[server] = None
        else:
            self.selection.pop(server, None)
        self._changed()

    def set_tool(self, server: str, tool: str, on: bool) -> None:
        """Turn one tool of a server on or off (the server is on while any of its tools is)."""
        every = list(self._tools_of(server))
        chosen = self.selection.get(server)
        current = [] if server not in self.selection else (list(every) if chosen is None else list(chosen))
        if on and tool not in current:
            current.append(tool)
        elif not on and tool in current:
            current.remove(tool)
        if not current:
            self.selection.pop(server, None)
        else:
            everything = set(current) >= set(every)
            self.selection[server] = None if everything else [t for t in every if t in current]
        self._changed()

    def _changed(self) -> None:
        self._show_text()
        self.selection_changed.emit(dict(self.selection))

    def close(self) -> bool:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        return super().close()
