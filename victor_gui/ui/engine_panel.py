"""Running a local GGUF with the app's own ``llama-server``, in the model manager.

:class:`RunEngineDialog` ("Run with llama-server") shows the fit plan's verdict and the exact
command it will start, with the context editable (the flags follow it), and "Keep running after
Victor GUI closes". :class:`EnginesPanel` lists the engines started from the app, with Stop and
Show log; an engine that stops on its own is reported there with its log's last lines.

All state is the :class:`~victor_gui.services.engine_runner.EngineRunner`'s; dialogs open with
``open()`` (never a nested event loop under qasync).
"""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from victor_gui.errors import EngineError
from victor_gui.services.engine_runner import Engine, EnginePlan, EngineRunner, LaunchPlan
from victor_gui.sizing.fit import CTX_PAD
from victor_gui.ui.fit_badges import badge_text
from victor_gui.ui.icons import set_icon
from victor_gui.ui.widgets.stacked_bar import human_bytes

ENGINE_COLUMNS = ("Model", "Address", "State", "Memory (estimated / used)")
MEASURE_EVERY_MS = 3000


def memory_text(engine: Engine) -> str:
    """``1.2 GiB / 1.1 GiB``: the plan's estimate beside what the process uses once loaded
    (RAM; GPU memory per process has no portable source)."""
    estimate = engine.plan.estimate_bytes
    measured = engine.measured.total_bytes if engine.measured is not None else None
    used = human_bytes(measured) if measured is not None else "—"
    return f"{human_bytes(estimate)} / {used}"


class StartDialog(QDialog):
    """What every "start a server" dialog shares: the command it will run, "Keep running", a
    status box, Start and Close; :meth:`start` runs :attr:`plan` through the runner and
    :attr:`engine` holds the started engine (None until then). Subclasses fill :attr:`plan`."""

    starting_text = "Starting… (waiting for the model to load)"

    def __init__(self, runner: EngineRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.plan: LaunchPlan | None = None
        self.engine: Engine | None = None
        self.task: asyncio.Task[Any] | None = None

    def add_start_controls(self, v: QVBoxLayout, flags_height: int = 90) -> None:
        """The command box, "Keep running", the status box and the buttons, at the bottom of ``v``."""
        v.addWidget(QLabel("It will run:"))
        self.flags_text = QPlainTextEdit()
        self.flags_text.setReadOnly(True)
        self.flags_text.setAccessibleName("The command it will run")
        self.flags_text.setMaximumHeight(flags_height)
        v.addWidget(self.flags_text)
        self.keep_box = QCheckBox("Keep running after Victor GUI closes")
        v.addWidget(self.keep_box)
        self.status = QPlainTextEdit()
        self.status.setReadOnly(True)
        self.status.setAccessibleName("Start status")
        self.status.setMaximumHeight(140)
        self.status.hide()
        v.addWidget(self.status)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.setEnabled(False)
        set_icon(self.start_button, "server")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Close")
        self.cancel_button.clicked.connect(self.reject)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        v.addLayout(buttons)

    def _say(self, text: str) -> None:
        self.status.setPlainText(text)
        self.status.show()

    def start(self) -> None:
        """Start the planned server (the Start button)."""
        if self.plan is None or not self.start_button.isEnabled():
            return
        self.start_button.setEnabled(False)
        self._say(self.starting_text)
        self.task = self.runner.spawn(self._start(self.plan, self.keep_box.isChecked()))

    async def _start(self, plan: LaunchPlan, keep: bool) -> None:
        try:
            self.engine = await self.runner.start(plan, keep_running=keep)
        except EngineError as exc:
            self._say(exc.message)
            self.start_failed()
            return
        self._say(f"Running at {self.engine.url}. It is in the chat's server list.")
        self.started(self.engine)
        self.accept()

    def start_failed(self) -> None:
        """The start failed (its reason is in the status box): Start may be tried again."""
        self.start_button.setEnabled(True)

    def started(self, engine: Engine) -> None:
        """The server answers; the dialog closes next."""


class RunEngineDialog(StartDialog):
    """Plan, show the flags, start. :attr:`engine` holds the started engine (None until then)."""

    plan: EnginePlan | None

    def __init__(self, runner: EngineRunner, model: str, parent: QWidget | None = None) -> None:
        super().__init__(runner, parent)
        self.model = model
        self.setWindowTitle("Run with llama-server — Victor GUI")
        self.setMinimumWidth(640)
        v = QVBoxLayout(self)
        self.title = QLabel(model)
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: bold;")
        v.addWidget(self.title)
        self.verdict = QLabel("Reading the file's header…")
        self.verdict.setAccessibleName("Fit at this context")
        v.addWidget(self.verdict)
        row = QHBoxLayout()
        row.addWidget(QLabel("Context"))
        self.ctx_spin = QSpinBox()
        self.ctx_spin.setAccessibleName("Context length for the server")
        self.ctx_spin.setSuffix(" tokens")
        self.ctx_spin.setGroupSeparatorShown(True)
        self.ctx_spin.setSingleStep(1024)
        self.ctx_spin.setKeyboardTracking(False)
        self.ctx_spin.setEnabled(False)
        self.ctx_spin.valueChanged.connect(self._context_changed)
        row.addWidget(self.ctx_spin)
        row.addStretch(1)
        v.addLayout(row)
        self.add_start_controls(v)
        self.task = runner.spawn(self._load())

    async def _load(self) -> None:
        try:
            plan = await self.runner.plan(self.model)
        except EngineError as exc:
            self._say(exc.message)
            return
        self._show(plan)
        self.ctx_spin.blockSignals(True)
        self.ctx_spin.setRange(CTX_PAD, max(CTX_PAD, plan.max_context))
        self.ctx_spin.setValue(plan.n_ctx)
        self.ctx_spin.blockSignals(False)
        self.ctx_spin.setEnabled(True)
        search = plan.binary
        if search is not None and search.path is None:
            self._say(search.reason)
        else:
            self.start_button.setEnabled(True)

    def _show(self, plan: EnginePlan) -> None:
        self.plan = plan
        report = self.runner.gpu_report()
        self.verdict.setText(f"{badge_text(plan.fit, bool(report.gpus))} at {plan.n_ctx:,} tokens "
                             f"(trained for {plan.max_context:,})")
        self.flags_text.setPlainText(plan.command())

    def _context_changed(self, value: int) -> None:
        if self.plan is not None:
            self._show(self.runner.replan(self.plan, value))



class LogDialog(QDialog):
    """An engine's log (the bounded file), read when opened; Refresh reads it again."""

    def __init__(self, runner: EngineRunner, engine: Engine, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.engine = runner, engine
        self.setWindowTitle(f"Log of {engine.name} — Victor GUI")
        self.resize(820, 480)
        v = QVBoxLayout(self)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setAccessibleName("Server log")
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        v.addWidget(self.text)
        row = QHBoxLayout()
        row.addWidget(QLabel(str(engine.log_path)))
        row.addStretch(1)
        refresh = QPushButton("Refresh")
        set_icon(refresh, "refresh")
        refresh.clicked.connect(self.reload)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        row.addWidget(refresh)
        row.addWidget(close)
        v.addLayout(row)
        self.task: asyncio.Task[Any] | None = None
        self.reload()

    def reload(self) -> None:
        self.task = self.runner.spawn(self._read())

    async def _read(self) -> None:
        self.text.setPlainText(await self.runner.read_log(self.engine))
        bar = self.text.verticalScrollBar()
        bar.setValue(bar.maximum())


class EnginesPanel(QGroupBox):
    """Engines started from the app: Stop, Show log, and what happened to one that ended."""

    def __init__(self, runner: EngineRunner, parent: QWidget | None = None) -> None:
        super().__init__("Servers started here", parent)
        self.runner = runner
        v = QVBoxLayout(self)
        self.table = QTableWidget(0, len(ENGINE_COLUMNS))
        self.table.setAccessibleName("Servers started here")
        self.table.setHorizontalHeaderLabels(ENGINE_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setMaximumHeight(120)
        self.table.itemSelectionChanged.connect(self._enable)
        v.addWidget(self.table)
        row = QHBoxLayout()
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setAccessibleName("Server notice")
        row.addWidget(self.notice, 1)
        self.log_button = QPushButton("Show log")
        self.log_button.clicked.connect(self.show_log)
        self.stop_button = QPushButton("Stop")
        set_icon(self.stop_button, "stop")
        self.stop_button.clicked.connect(self.stop_selected)
        row.addWidget(self.log_button)
        row.addWidget(self.stop_button)
        v.addLayout(row)
        self.log_dialog: LogDialog | None = None
        self._unsubscribe: Any = runner.subscribe(self._on_event)
        # Memory is measured again while the panel shows: a router's models load after its start,
        # and a single model's use grows with its context.
        self.measure_timer = QTimer(self)
        self.measure_timer.setInterval(MEASURE_EVERY_MS)
        self.measure_timer.timeout.connect(self._measure)
        self.measure_timer.start()
        self.refresh_rows()

    def _on_event(self, event: str, payload: Any) -> None:
        if event == "exited" and isinstance(payload, Engine):
            self.notice.setText(payload.error or f"{payload.name} stopped.")
        self.refresh_rows()

    def refresh_rows(self) -> None:
        engines = [e for e in self.runner.engines if e.running or e.error]
        selected = self.selected()
        self.table.setRowCount(len(engines))
        for row, engine in enumerate(engines):
            state = engine.state if engine.exit_code is None else f"{engine.state} (code {engine.exit_code})"
            for col, text in enumerate((engine.name, engine.url, state, memory_text(engine))):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        if selected in engines:
            self.table.selectRow(engines.index(selected))
        elif engines and self.table.currentRow() < 0:
            self.table.selectRow(0)
        self.setVisible(bool(self.runner.engines))
        self._enable()

    def _rows(self) -> list[Engine]:
        return [e for e in self.runner.engines if e.running or e.error]

    def selected(self) -> Engine | None:
        row = self.table.currentRow()
        rows = self._rows()
        return rows[row] if 0 <= row < len(rows) else None

    def _enable(self) -> None:
        engine = self.selected()
        self.stop_button.setEnabled(engine is not None and engine.running)
        self.log_button.setEnabled(engine is not None)

    def stop_selected(self) -> None:
        engine = self.selected()
        if engine is not None and engine.running:
            self.stop_button.setEnabled(False)
            self.runner.spawn(self.runner.stop(engine))

    def show_log(self) -> LogDialog | None:
        engine = self.selected()
        if engine is None:
            return None
        self.log_dialog = LogDialog(self.runner, engine, self)
        self.log_dialog.open()
        return self.log_dialog

    def _measure(self) -> None:
        running = [e for e in self.runner.engines if e.running]
        if running and self.isVisible():
            self.runner.spawn(self._measure_all(running))

    async def _measure_all(self, engines: list[Engine]) -> None:
        for engine in engines:
            await self.runner.measure(engine)
        if self._unsubscribe is not None:  # still shown
            self.refresh_rows()

    def detach(self) -> None:
        self.measure_timer.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


__all__ = ["EnginesPanel", "LogDialog", "RunEngineDialog", "StartDialog"]
