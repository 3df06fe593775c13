""""Serve all my models": one ``llama-server`` in router mode over the model folders.

:class:`RouterDialog` scans the model folders, plans every model
(:func:`~victor_gui.services.engine_router.plan_router`) and shows, before anything runs, each
model's name in the router, its fit verdict and context, the files left out and why, and the
router's command line. "Models loaded at once" re-plans (each model then gets 1/N of the
machine). Start runs it through the :class:`~victor_gui.services.engine_runner.EngineRunner`, so
it joins the engines list, the dashboard and the chat picker like a single-model engine.

All state is the runner's and the plan's; the dialog opens with ``open()`` (no nested loop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from victor_gui.services.engine_router import ROUTER_MODELS_MAX, RouterPlan, plan_router
from victor_gui.services.engine_runner import Engine, EngineRunner
from victor_gui.services.model_folders import LocalModel
from victor_gui.ui.engine_panel import StartDialog
from victor_gui.ui.fit_badges import badge_text

ROUTER_COLUMNS = ("Model", "Fit", "Context", "File")
MAX_AT_ONCE = 16


class RouterDialog(StartDialog):
    """Plan the router over ``scan()``'s models, show it, start it. :attr:`engine` holds the
    started router (None until then); ``on_started(engine)`` is called once it answers."""

    plan: RouterPlan | None
    starting_text = "Starting the router…"

    def __init__(self, runner: EngineRunner, scan: Callable[[], Awaitable[list[LocalModel]]],
                 parent: QWidget | None = None, *,
                 on_started: Callable[[Engine], object] | None = None) -> None:
        super().__init__(runner, parent)
        self._scan = scan
        self.on_started = on_started
        self.found: list[LocalModel] | None = None
        self.setWindowTitle("Serve all my models — Victor GUI")
        self.setMinimumWidth(760)
        v = QVBoxLayout(self)
        intro = QLabel("One llama-server in router mode offers every model of your model folders; "
                       "a model loads when you pick it in the chat (or Load it in the model manager), "
                       "at the settings its own fit plan gives.")
        intro.setWordWrap(True)
        v.addWidget(intro)
        self.summary = QLabel("Looking through the model folders…")
        self.summary.setAccessibleName("What the router will serve")
        self.summary.setWordWrap(True)
        v.addWidget(self.summary)
        self.table = QTableWidget(0, len(ROUTER_COLUMNS))
        self.table.setAccessibleName("Models the router will serve")
        self.table.setHorizontalHeaderLabels(ROUTER_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        v.addWidget(self.table, 1)
        self.skipped = QLabel()
        self.skipped.setWordWrap(True)
        self.skipped.setAccessibleName("Models left out")
        self.skipped.hide()
        v.addWidget(self.skipped)
        row = QHBoxLayout()
        row.addWidget(QLabel("Models loaded at once"))
        self.max_spin = QSpinBox()
        self.max_spin.setAccessibleName("Models loaded at once")
        self.max_spin.setRange(1, MAX_AT_ONCE)
        self.max_spin.setValue(ROUTER_MODELS_MAX)
        self.max_spin.setKeyboardTracking(False)
        self.max_spin.setToolTip("Each model is planned on this share of the GPU and RAM; past it, "
                                 "the least recently used model is unloaded")
        self.max_spin.setEnabled(False)
        self.max_spin.valueChanged.connect(self._max_changed)
        row.addWidget(self.max_spin)
        row.addStretch(1)
        v.addLayout(row)
        self.add_start_controls(v, flags_height=70)
        self.task = runner.spawn(self._load())

    async def _load(self) -> None:
        self.found = await self._scan()
        await self._plan(self.max_spin.value())
        self.max_spin.setEnabled(True)

    async def _plan(self, models_max: int) -> None:
        assert self.found is not None
        self.start_button.setEnabled(False)
        plan = await plan_router(self.runner, self.found, models_max=models_max)
        if models_max != self.max_spin.value():  # the user moved on while we planned
            return
        self._show(plan)

    def _show(self, plan: RouterPlan) -> None:
        self.plan = plan
        has_gpu = bool(self.runner.gpu_report().gpus)
        self.table.setRowCount(len(plan.models))
        for row, model in enumerate(plan.models):
            p = model.plan
            cells = (model.name, badge_text(p.fit, has_gpu), f"{p.n_ctx:,}", p.model)
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        if plan.models:
            self.summary.setText(f"{plan.count_text}, at most {plan.models_max} loaded at once.")
        else:
            self.summary.setText("No model to serve: the model folders hold no GGUF model "
                                 "(add a folder in Settings, or download one).")
        self.skipped.setVisible(bool(plan.skipped))
        self.skipped.setText("Left out: " + "; ".join(f"{s.path} ({s.reason})" for s in plan.skipped))
        self.flags_text.setPlainText(plan.command())
        search = plan.binary
        if search is not None and search.path is None:
            self._say(search.reason)
        self.start_button.setEnabled(bool(plan.models) and (search is None or search.path is not None))

    def _max_changed(self, value: int) -> None:
        if self.found is not None:
            self.task = self.runner.spawn(self._plan(value))

    def start(self) -> None:
        """Start the planned router (the Start button); the share stays as planned meanwhile."""
        if self.plan is not None and self.start_button.isEnabled():
            self.max_spin.setEnabled(False)
        super().start()

    def start_failed(self) -> None:
        super().start_failed()
        self.max_spin.setEnabled(True)

    def started(self, engine: Engine) -> None:
        if self.on_started is not None:
            self.on_started(engine)


__all__ = ["RouterDialog"]
