"""The endpoint health dashboard: one card per watched endpoint (state, kind, URL, latency
sparkline, version, loaded models with context and memory, diagnosis), GPU and RAM bars, and
add / edit / remove / Refresh now.

The view renders :class:`~victor_gui.services.endpoints_service.EndpointsService` and keeps no
state of its own: it subscribes on construction and unsubscribes when closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from victor_gui.config.secrets import KeyringStore
from victor_gui.servers.status import EndpointState, EndpointStatus, ServerKind
from victor_gui.services.endpoints_service import EndpointsService
from victor_gui.sizing.hardware import GpuReport
from victor_gui.ui.endpoint_editor import EndpointEditor, forget_secrets
from victor_gui.ui.icons import set_icon
from victor_gui.ui.widgets.sparkline import Sparkline
from victor_gui.ui.widgets.stacked_bar import Segment, StackedBar, human_bytes

# White badge text on each reaches ≥ 4.5:1 (tests/ui/test_theme_contrast.py).
GREEN, AMBER, RED, GREY = "#187a33", "#9a5b00", "#b00020", "#6b6f76"
STATE_LOOK: dict[EndpointState, tuple[str, str]] = {
    EndpointState.UP: ("up", GREEN),
    EndpointState.LOADING: ("loading", AMBER),
    EndpointState.DEGRADED: ("degraded", AMBER),
    EndpointState.DOWN: ("down", GREY),
    EndpointState.UNAUTHORIZED: ("unauthorized", RED),
    EndpointState.NOT_INFERENCE: ("not an inference server", GREY),
    EndpointState.ERROR: ("error", RED),
    EndpointState.UNKNOWN: ("checking…", GREY),
}
def model_line(status: EndpointStatus) -> str:
    """Loaded models with context and memory: Ollama's GPU share, vLLM's KV-cache use."""
    parts = []
    for m in status.loaded_models:
        facts = []
        if m.context_length:
            facts.append(f"ctx {m.context_length:,}")
        if m.size_bytes:
            facts.append(human_bytes(m.size_bytes))
        share = m.gpu_fraction
        if share is not None:
            facts.append(f"{share:.0%} GPU")
        parts.append(m.name + (f" ({', '.join(facts)})" if facts else ""))
    line = "; ".join(parts)
    if status.kv_cache_usage is not None:
        line += f"{' — ' if line else ''}KV cache {status.kv_cache_usage:.0%} used"
    return line  # "no model loaded" is already in the diagnosis


class EndpointCard(QFrame):
    """One endpoint. ``render(status, name)`` replaces everything it shows."""

    def __init__(self, dashboard: Dashboard, base_url: str) -> None:
        super().__init__()
        self.setObjectName("endpointCard")
        self.base_url = base_url
        grid = QGridLayout(self)
        grid.setContentsMargins(10, 8, 10, 8)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(3)
        self.state_label = QLabel()
        self.state_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state_label.setFixedWidth(118)  # one column for every card, whatever the words
        self.state_label.setWordWrap(True)
        self.title = QLabel()
        self.title.setObjectName("cardTitle")
        self.url_label = QLabel(base_url)
        self.url_label.setObjectName("cardUrl")
        self.url_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.version_label = QLabel()
        self.version_label.setObjectName("cardUrl")
        self.sparkline = Sparkline()
        self.latency_label = QLabel()
        self.latency_label.setObjectName("cardUrl")
        self.models_label = QLabel()
        self.models_label.setObjectName("cardModels")
        self.models_label.setWordWrap(True)
        self.diagnosis = QLabel()
        self.diagnosis.setObjectName("cardDiagnosis")
        self.diagnosis.setWordWrap(True)
        self.diagnosis.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.edit_button = QPushButton("Edit…")
        self.remove_button = QPushButton("Remove")
        self.edit_button.setAccessibleName(f"Edit endpoint {base_url}")
        self.remove_button.setAccessibleName(f"Remove endpoint {base_url}")
        self.edit_button.clicked.connect(lambda: dashboard.open_endpoint_dialog(self.base_url))
        self.remove_button.clicked.connect(lambda: dashboard.confirm_remove(self.base_url))

        head = QHBoxLayout()
        head.setSpacing(12)
        head.addWidget(self.title)
        head.addWidget(self.url_label)
        head.addWidget(self.version_label)
        head.addStretch(1)
        head.addWidget(self.latency_label)
        head.addWidget(self.sparkline)
        grid.addWidget(self.state_label, 0, 0, 2, 1, Qt.AlignmentFlag.AlignTop)
        grid.addLayout(head, 0, 1)
        grid.addWidget(self.models_label, 1, 1)
        grid.addWidget(self.diagnosis, 2, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.edit_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        grid.addLayout(buttons, 0, 2, 3, 1)
        grid.setColumnStretch(1, 1)

    def show_status(self, status: EndpointStatus, name: str | None) -> None:
        text, color = STATE_LOOK[status.state]
        self.state_label.setText(text)
        self.state_label.setStyleSheet(f"background: {color}; color: white; border-radius: 4px; "
                                       "padding: 3px 6px; font-weight: bold;")
        self.state_label.setAccessibleName(f"State: {text}")
        kind = status.display_kind
        if status.kind is ServerKind.UNKNOWN and status.expected is None:
            kind = "no server" if status.state is EndpointState.DOWN else "not identified yet"
        self.title.setText(f"{name} — {kind}" if name else kind)
        self.version_label.setText(f"v{status.version}" if status.version else "")
        self.render_latency(status)
        line = model_line(status)
        self.models_label.setText(line)
        self.models_label.setVisible(bool(line))
        self.diagnosis.setText(status.diagnosis)
        self.setAccessibleName(f"{kind} at {status.base_url}: {text}")

    def render_latency(self, status: EndpointStatus) -> None:
        self.sparkline.set_values(status.latency_history)
        latency = status.latency_s
        self.latency_label.setText(f"{latency * 1000:.0f} ms" if latency is not None else "")

    @property
    def state_text(self) -> str:
        return self.state_label.text()

    @property
    def state_color(self) -> str:
        return next(c for t, c in STATE_LOOK.values() if t == self.state_label.text())


def _kind_value(kind: ServerKind | None) -> str:
    if kind in (ServerKind.OLLAMA, ServerKind.LMSTUDIO, ServerKind.VLLM, ServerKind.LLAMACPP):
        return kind.value
    return "openai-compatible"


class HardwarePanel(QWidget):
    """GPU and RAM bars from the service's :class:`GpuReport` ("no GPU found" when none)."""

    def __init__(self) -> None:
        super().__init__()
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.rows: list[tuple[QLabel, StackedBar]] = []
        self.notice = QLabel("Detecting GPUs…")
        self.notice.setObjectName("dashNotice")
        self.grid.addWidget(self.notice, 0, 0, 1, 2)

    def show_report(self, report: GpuReport | None, error: str | None) -> None:
        for label, bar in self.rows:
            label.deleteLater()
            bar.deleteLater()
        self.rows = []
        if report is None:
            self.notice.setText(error or "Detecting GPUs…")
            return
        rows: list[tuple[str, int, int]] = []
        for gpu in report.gpus:
            used = gpu.total - gpu.free
            note = "" if gpu.free_known else " (usage not reported)"
            rows.append((f"{gpu.name}: {human_bytes(used)} used of {human_bytes(gpu.total)}, "
                         f"{human_bytes(gpu.free)} free{note}", used, gpu.total))
        if report.ram is not None:
            used = report.ram.total - report.ram.available
            rows.append((f"RAM: {human_bytes(used)} used of {human_bytes(report.ram.total)}, "
                         f"{human_bytes(report.ram.available)} available", used, report.ram.total))
        notice = error or ("" if report.gpus else "No GPU found — models run on the CPU")
        if not report.gpus and report.notes:
            self.notice.setToolTip("\n".join(report.notes))
        self.notice.setText(notice)
        self.notice.setVisible(bool(notice))
        for i, (text, used, total) in enumerate(rows, start=1):
            label = QLabel(text)
            bar = StackedBar(name=text.split(":")[0] + " memory")
            bar.set_parts([Segment("used", used, "#7a8699")], total, "total")
            self.grid.addWidget(label, i, 0)
            self.grid.addWidget(bar, i, 1)
            self.rows.append((label, bar))
        self.grid.setColumnStretch(1, 1)


class Dashboard(QWidget):
    """Every watched endpoint's health, live, plus the machine's GPUs and RAM."""

    def __init__(self, service: EndpointsService, parent: QWidget | None = None, *,
                 keyring_store: Any = None) -> None:
        super().__init__(parent)
        self.service = service
        self.keyring_store = keyring_store  # None: the OS keyring (the editor makes a KeyringStore)
        self.setWindowTitle("Endpoints — Victor GUI")
        self.cards: dict[str, EndpointCard] = {}
        self.dialog: EndpointEditor | None = None
        self.confirm_box: QMessageBox | None = None

        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        title = QLabel("Local servers")
        title.setObjectName("sectionTitle")
        bar.addWidget(title)
        bar.addStretch(1)
        self.refresh_button = QPushButton("Refresh now")
        self.refresh_button.setAccessibleName("Refresh now")
        set_icon(self.refresh_button, "refresh")
        self.refresh_button.clicked.connect(self.refresh_now)
        self.add_button = QPushButton("Add endpoint…")
        self.add_button.setAccessibleName("Add endpoint")
        set_icon(self.add_button, "plus")
        self.add_button.clicked.connect(lambda: self.open_endpoint_dialog(None))
        # Endpoints the user hid (Remove on a default or discovered one) come back from here.
        self.unhide_button = QPushButton()
        self.unhide_button.setAccessibleName("Show the hidden endpoints again")
        self.unhide_button.clicked.connect(self.unhide_all)
        self.unhide_button.setVisible(False)
        bar.addWidget(self.unhide_button)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.add_button)
        layout.addLayout(bar)
        self.notice = QLabel()
        self.notice.setObjectName("dashNotice")
        self.notice.setWordWrap(True)
        layout.addWidget(self.notice)

        self.list_widget = QWidget()
        self.list_layout = QVBoxLayout(self.list_widget)
        self.list_layout.setContentsMargins(0, 0, 0, 0)
        self.list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.list_widget)
        layout.addWidget(scroll, 1)

        hw_title = QLabel("This machine")
        hw_title.setObjectName("sectionTitle")
        layout.addWidget(hw_title)
        self.hardware = HardwarePanel()
        layout.addWidget(self.hardware)

        self._unsubscribe: Any = service.subscribe(self._on_event)
        self.render_all()

    # -- rendering ------------------------------------------------------------------------------

    def render_all(self) -> None:
        statuses = self.service.statuses
        keys = [s.base_url for s in statuses]
        for key in [k for k in self.cards if k not in keys]:
            self.cards.pop(key).deleteLater()
        for index, status in enumerate(statuses):
            card = self.cards.get(status.base_url)
            if card is None:
                card = self.cards[status.base_url] = EndpointCard(self, status.base_url)
            self.list_layout.insertWidget(index, card)
            self._render_card(status)
        # Default ports nothing answers on: one line, not a card each (the registry folds them).
        folded = getattr(self.service, "not_running", [])
        idle = ("Not running: " + ", ".join(f"{m.name} ({m.key})" for m in folded) + ".") if folded else ""
        if not statuses:
            empty = "No endpoints yet: start a local server, or add one."
            self.notice.setText("Looking for local servers…" if self.service.discovering
                                else f"{idle} {empty}".strip())
        else:
            self.notice.setText("Looking for more local servers…" if self.service.discovering else idle)
        self.notice.setVisible(bool(self.notice.text()))
        hidden = sorted(getattr(self.service, "hidden", set()))
        self.unhide_button.setText(f"Show hidden ({len(hidden)})")
        self.unhide_button.setToolTip("Hidden: " + ", ".join(hidden) if hidden else "")
        self.unhide_button.setVisible(bool(hidden))
        self.hardware.show_report(self.service.gpu_report, self.service.hardware_error)

    def _render_card(self, status: EndpointStatus) -> None:
        card = self.cards.get(status.base_url)
        if card is not None:
            setting = self.service.setting_for(status.base_url)
            card.show_status(status, setting.name if setting else None)

    def _on_event(self, event: str, payload: Any) -> None:
        if event == "status" and payload.base_url in self.cards:
            self._render_card(payload)
        elif event == "tick":
            for status in self.service.statuses:
                card = self.cards.get(status.base_url)
                if card is not None:
                    card.render_latency(status)
        elif event == "hardware":
            self.hardware.show_report(self.service.gpu_report, self.service.hardware_error)
        elif event == "error":
            self.notice.setText(str(payload))
            self.notice.setVisible(True)
        else:
            self.render_all()

    # -- actions --------------------------------------------------------------------------------

    def refresh_now(self) -> asyncio.Task[Any]:
        return self.service.spawn(self.service.refresh_now())

    def unhide_all(self) -> asyncio.Task[Any]:
        """Watch every hidden endpoint again (saved: they stay shown after a restart)."""

        async def unhide() -> None:
            for url in sorted(getattr(self.service, "hidden", set())):
                await self.service.unhide(url)  # type: ignore[attr-defined]
            await self.service.monitor.refresh_now()

        return self.service.spawn(unhide())

    def open_endpoint_dialog(self, old_url: str | None) -> EndpointEditor:
        """The endpoint editor (shared with Settings → Endpoints) for ``old_url`` or a new one."""
        setting = self.service.setting_for(old_url) if old_url else None
        status = self.service.monitor.status(old_url) if old_url else None
        self.dialog = EndpointEditor(
            self, settings=self.service.settings_service, endpoints=self.service,
            keyring_store=self.keyring_store, original=setting, old_url=old_url,
            name=status.display_kind if status is not None and setting is None else "",
            kind=_kind_value(status.kind) if status is not None and setting is None else None)
        self.dialog.open()
        return self.dialog

    def confirm_remove(self, base_url: str) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Question, "Remove endpoint",
                          f"Stop watching {base_url}?" + (
                              " It is also removed from settings.yaml." if self.service.setting_for(base_url)
                              else " It stays hidden after a restart." if hasattr(self.service, "hide")
                              else ""), QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)

        def done(result: int) -> None:
            if result == QMessageBox.StandardButton.Yes:
                self.service.spawn(self._remove(base_url))

        box.finished.connect(done)
        self.confirm_box = box
        box.open()
        return box

    async def _remove(self, base_url: str) -> None:
        setting = self.service.setting_for(base_url)
        await self.service.remove_endpoint(base_url)
        if setting is not None:  # its key and secret headers go with it
            await forget_secrets(self.keyring_store or KeyringStore(), setting)

    def detach(self) -> None:
        """Stop listening to the service (the view is going away)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def closeEvent(self, event: QCloseEvent) -> None:
        self.detach()
        super().closeEvent(event)
