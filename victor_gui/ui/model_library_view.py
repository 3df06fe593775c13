"""The model manager view: an endpoint's models (size, quantization, context), the selected
model's fit on this machine (badge, stacked bar, context slider, measured vs estimated), pull
with progress and Cancel, load / unload, and delete with confirmation; "Serve all my models…"
starts a llama-server router over the model folders (:mod:`victor_gui.ui.router_panel`) and
then shows its models, each with its status (unloaded, loading, loaded, sleeping).

It renders :class:`~victor_gui.services.model_library.ModelLibraryService` (and lists the
endpoints of an :class:`~victor_gui.services.endpoints_service.EndpointsService`); all state is
the services'. The slider hands every move to the service, which recomputes the estimate once
the slider rests for ~50 ms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from victor_gui.servers.status import EndpointState, ServerKind
from victor_gui.services.endpoints_service import EndpointsService
from victor_gui.services.engine_runner import Engine, EngineRunner
from victor_gui.services.model_folders import ModelFolders
from victor_gui.services.model_library import FileEstimate, ModelLibraryService, PullState
from victor_gui.sizing.fit import FitResult
from victor_gui.ui.engine_panel import EnginesPanel, RunEngineDialog
from victor_gui.ui.fit_panel import FitPanel, estimate_words
from victor_gui.ui.icons import set_icon
from victor_gui.ui.router_panel import RouterDialog
from victor_gui.ui.widgets.stacked_bar import human_bytes

COLUMNS = ("Model", "Size", "Quantization", "Parameters", "Context", "Loaded")


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "ETA —"
    seconds = int(seconds)
    return f"ETA {seconds // 60}:{seconds % 60:02d}"


class ModelLibraryView(QWidget):
    """Models of the chosen endpoint and everything one can do with them."""

    def __init__(self, service: ModelLibraryService, endpoints: EndpointsService | None = None,
                 parent: QWidget | None = None, *, engines: EngineRunner | None = None,
                 open_downloads: Callable[[], object] | None = None,
                 folders: ModelFolders | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.endpoints = endpoints
        self.engines = engines  # the app's own llama-server runs (None: no Run button)
        self.folders = folders  # the model folders a router serves (None: no "Serve all" button)
        self.router_dialog: RouterDialog | None = None
        self._follow_url: str | None = None  # a router just started: show its models once it is up
        self.setWindowTitle("Models — Victor GUI")
        self.confirm_box: QMessageBox | None = None
        layout = QVBoxLayout(self)

        top = QHBoxLayout()
        top.addWidget(QLabel("Server"))
        self.endpoint_combo = QComboBox()
        self.endpoint_combo.setAccessibleName("Server")
        self.endpoint_combo.setMinimumWidth(280)
        self.endpoint_combo.activated.connect(self._endpoint_chosen)
        top.addWidget(self.endpoint_combo, 1)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setAccessibleName("Refresh models")
        set_icon(self.refresh_button, "refresh")
        self.refresh_button.clicked.connect(lambda: service.spawn(service.refresh()))
        self.gguf_button = QPushButton("Estimate a GGUF file…")
        self.gguf_button.setAccessibleName("Estimate a GGUF file")
        self.gguf_button.clicked.connect(self._choose_gguf)
        top.addWidget(self.refresh_button)
        top.addWidget(self.gguf_button)
        self.hub_button = QPushButton("Find models on Hugging Face…")  # ui/hub_browser.py
        self.hub_button.setAccessibleName("Find models on Hugging Face")
        self.hub_button.clicked.connect(self.open_hub)
        self.on_hub_download: Any = None  # on_download(repo_id, files) for the browser's buttons
        top.addWidget(self.hub_button)
        self.downloads_button = QPushButton("Downloads…")  # issue 17: Hub downloads and their progress
        self.downloads_button.setAccessibleName("Open downloads")
        set_icon(self.downloads_button, "download")
        self.downloads_button.setVisible(open_downloads is not None)
        if open_downloads is not None:
            self.downloads_button.clicked.connect(lambda: open_downloads())
        top.addWidget(self.downloads_button)
        self.serve_button = QPushButton("Serve all my models…")  # issue 17: llama-server router mode
        self.serve_button.setAccessibleName("Serve all my models with one llama-server")
        set_icon(self.serve_button, "server")
        self.serve_button.setVisible(engines is not None and folders is not None)
        self.serve_button.clicked.connect(self.serve_all)
        top.addWidget(self.serve_button)
        layout.addLayout(top)

        splitter = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setAccessibleName("Models")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._row_chosen)
        splitter.addWidget(self.table)
        splitter.addWidget(self._build_detail())
        splitter.addWidget(self._build_file_panel())
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([300, 200, 200])
        layout.addWidget(splitter, 1)
        layout.addWidget(self._build_pull())
        self.engines_panel = EnginesPanel(engines, self) if engines is not None else None
        if self.engines_panel is not None:
            layout.addWidget(self.engines_panel)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Model manager status")
        layout.addWidget(self.message)

        self._unsubscribe: Any = service.subscribe(self._on_event)
        self._unsubscribe_endpoints: Any = endpoints.subscribe(self._on_endpoints) if endpoints else None
        self.render_endpoints()
        self.render_models()
        self.render_fit()
        self.render_file()

    # -- layout ---------------------------------------------------------------------------------

    def _build_detail(self) -> QWidget:
        panel = FitPanel("Will it fit?")
        panel.context_requested.connect(self.service.set_context)
        self.fit_panel = panel
        # The panel's parts, under the names the rest of the view (and its tests) use.
        self.model_title, self.badge = panel.model_title, panel.badge
        self.bar, self.legend = panel.bar, panel.legend
        self.slider, self.ctx_spin, self.ctx_label = panel.slider, panel.ctx_spin, panel.ctx_label
        self.measured_label = panel.measured_label
        actions = QHBoxLayout()
        self.load_button = QPushButton("Load")
        self.unload_button = QPushButton("Unload")
        self.delete_button = QPushButton("Delete…")
        set_icon(self.delete_button, "trash")
        for button, name in ((self.load_button, "Load model"), (self.unload_button, "Unload model"),
                             (self.delete_button, "Delete model")):
            button.setAccessibleName(name)
            actions.addWidget(button)
        # LM Studio does not describe layers over HTTP: its file gives the plan's context.
        self.attach_button = QPushButton("Its GGUF file…")
        self.attach_button.setAccessibleName("Choose the model's GGUF file")
        self.attach_button.clicked.connect(self._choose_model_file)
        actions.addWidget(self.attach_button)
        actions.addStretch(1)
        self.busy_label = QLabel()
        actions.addWidget(self.busy_label)
        self.load_button.clicked.connect(lambda: self._act(self.service.load))
        self.unload_button.clicked.connect(lambda: self._act(self.service.unload))
        self.delete_button.clicked.connect(self.confirm_delete)
        panel.body.addLayout(actions)
        panel.body.addStretch(1)
        return panel

    def _build_file_panel(self) -> QWidget:
        panel = FitPanel("GGUF file on this machine")
        panel.context_requested.connect(self.service.set_file_context)
        close = QPushButton("Close")
        close.setAccessibleName("Close the file estimate")
        close.clicked.connect(self.service.close_file)
        row = QHBoxLayout()
        row.addWidget(QLabel("On no server: an estimate only. Start a server with it to chat."))
        row.addStretch(1)
        self.run_button = QPushButton("Run with llama-server…")
        self.run_button.setVisible(self.engines is not None)
        self.run_button.clicked.connect(self.run_file)
        row.addWidget(self.run_button)
        row.addWidget(close)
        panel.body.addLayout(row)
        panel.hide()
        self.file_panel = panel
        return panel

    def _build_pull(self) -> QWidget:
        box = QGroupBox("Pull a model")
        h = QHBoxLayout(box)
        self.pull_edit = QLineEdit()
        self.pull_edit.setAccessibleName("Model to pull")
        self.pull_edit.setPlaceholderText("e.g. qwen3:8b")
        self.pull_edit.returnPressed.connect(self._pull)
        self.pull_button = QPushButton("Pull")
        self.pull_button.setAccessibleName("Pull model")
        set_icon(self.pull_button, "download")
        self.pull_button.clicked.connect(self._pull)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Pull progress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress_label = QLabel()
        self.progress_label.setMinimumWidth(300)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel pull")
        self.cancel_button.clicked.connect(self._cancel_pull)
        for w in (self.pull_edit, self.pull_button, self.progress, self.progress_label, self.cancel_button):
            h.addWidget(w)
        self.render_pull(None)
        return box

    # -- rendering ------------------------------------------------------------------------------

    def render_endpoints(self) -> None:
        self.endpoint_combo.blockSignals(True)
        self.endpoint_combo.clear()
        statuses = self.endpoints.statuses if self.endpoints else []
        for s in statuses:
            if s.is_inference_server and s.state in (EndpointState.UP, EndpointState.DEGRADED):
                self.endpoint_combo.addItem(f"{s.display_kind} — {s.base_url}", s.base_url)
        current = self.service.base_url
        if current and self.endpoint_combo.findData(current) < 0 and self.service.endpoint:
            self.endpoint_combo.addItem(f"{self.service.endpoint.display_kind} — {current}", current)
        self.endpoint_combo.setCurrentIndex(max(0, self.endpoint_combo.findData(current)))
        self.endpoint_combo.blockSignals(False)
        follow = self.endpoint_combo.findData(self._follow_url) if self._follow_url else -1
        if follow >= 0:  # the router started from here is up: show its models
            self._follow_url = None
            self.endpoint_combo.setCurrentIndex(follow)
            self._endpoint_chosen(follow)
        elif current is None and self.endpoint_combo.count():
            self._endpoint_chosen(0)

    def render_models(self) -> None:
        models = self.service.models
        self.table.blockSignals(True)
        self.table.clearSelection()  # a row of the previous server's list must not stay chosen
        self.table.setRowCount(len(models))
        for row, m in enumerate(models):
            ctx = f"{m.context_length:,}" if m.context_length else (
                f"up to {m.max_context_length:,}" if m.max_context_length else "")
            cells = (m.name, human_bytes(m.size_bytes) if m.size_bytes else "", m.quantization or "",
                     m.parameter_size or "", ctx, m.status or ("yes" if m.loaded else ""))
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
            if m.name == self.service.selected:
                self.table.selectRow(row)
        self.table.blockSignals(False)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def render_fit(self) -> None:
        s = self.service
        entry = s.entry(s.selected)
        for button in (self.load_button, self.unload_button, self.delete_button):
            button.setEnabled(entry is not None and s.busy is None)
        self.delete_button.setEnabled(entry is not None and s.busy is None and s.kind is ServerKind.OLLAMA)
        self.attach_button.setVisible(entry is not None and s.arch_error is not None)
        self._sync_selection()
        fit = s.fit
        waiting = s.arch_error or ("Reading the model's architecture…" if entry else "")
        has_gpu = bool(s.gpu_report and s.gpu_report.gpus)
        measured = self._measured_text(fit, entry.context_length if entry else None, has_gpu) if fit else ""
        self.fit_panel.show_fit(entry.name if entry else "Choose a model", fit, s.n_ctx, s.max_context,
                              report=s.gpu_report, ready=s.architecture is not None,
                              waiting_text=waiting, measured_text=measured, arch=s.architecture)

    def render_file(self) -> None:
        estimate: FileEstimate | None = self.service.file
        self.file_panel.setVisible(estimate is not None)
        if estimate is None:
            return
        fit = estimate.fit
        waiting = estimate.error or "Reading the file's header…"
        report = self.service.gpu_report
        words = estimate_words(fit, bool(report and report.gpus)) if fit else ""
        measured = words[:1].upper() + words[1:]
        self.file_panel.show_fit(estimate.name, fit, estimate.n_ctx, estimate.max_context,
                               report=self.service.gpu_report, ready=estimate.architecture is not None,
                               waiting_text=waiting, measured_text=measured, arch=estimate.architecture)

    def _sync_selection(self) -> None:
        """The table shows the service's selection: none when it has none (after a switch of
        server a highlighted row said one thing while the panel said "Choose a model", and
        clicking it did nothing because it was already selected)."""
        selected = self.service.selected
        rows = self.table.selectionModel().selectedRows()
        item = self.table.item(rows[0].row(), 0) if rows else None
        current = item.text() if item is not None else None
        if current == selected:
            return
        self.table.blockSignals(True)
        self.table.clearSelection()
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if selected is not None and item is not None and item.text() == selected:
                self.table.selectRow(row)
        self.table.blockSignals(False)

    @staticmethod
    def _measured_text(fit: FitResult, loaded_ctx: int | None, has_gpu: bool = True) -> str:
        estimate = estimate_words(fit, has_gpu)
        m = fit.measured
        if m is None or m.vram_bytes is None:
            return f"Not loaded — {estimate} (load it to compare with what the server reports)"
        at = f" at {loaded_ctx:,}" if loaded_ctx else ""
        return (f"Measured{at} ({m.source}): {human_bytes(m.vram_bytes)} on GPU of "
                f"{human_bytes(m.total_bytes)} — {estimate}")

    def render_pull(self, state: PullState | None) -> None:
        running = state is not None and state.running
        self.cancel_button.setEnabled(running)
        self.pull_button.setEnabled(not running)
        self.progress.setVisible(state is not None)
        if state is None:
            self.progress_label.setText("")
            return
        p = state.progress
        if p is not None and p.fraction is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(p.fraction * 1000))
        elif running:
            self.progress.setRange(0, 0)  # busy indicator until sizes are known
        if state.error:
            text = f"{state.model}: {state.error}"
        elif state.cancelled:
            text = f"{state.model}: cancelled"
        elif state.done:
            text = f"{state.model}: done"
        elif p is not None and p.total:
            speed = f"{human_bytes(p.bytes_per_s)}/s" if p.bytes_per_s else "—/s"
            text = (f"{state.model}: {human_bytes(p.completed)} of {human_bytes(p.total)}, "
                    f"{speed}, {eta_text(p.eta_s)}")
        else:
            text = f"{state.model}: {p.status if p else 'starting…'}"
        self.progress_label.setText(text)

    def _on_event(self, event: str, payload: Any) -> None:
        if event == "models":
            self.render_models()
            self.render_endpoints()
        elif event in ("selection", "fit", "hardware", "busy"):
            self.render_fit()
            self.busy_label.setText(self.service.busy or "")
            if event == "hardware":
                self.render_file()
        elif event == "file":
            self.render_file()
        elif event == "pull":
            self.render_pull(payload)
        elif event == "message":
            self.message.setText(str(payload))

    def _on_endpoints(self, event: str, payload: Any) -> None:
        if event in ("status", "endpoints"):
            self.render_endpoints()

    # -- actions --------------------------------------------------------------------------------

    def _endpoint_chosen(self, index: int) -> None:
        url = self.endpoint_combo.itemData(index)
        status = self.endpoints.monitor.status(url) if self.endpoints and url else None
        if status is not None:
            self.service.spawn(self.service.set_endpoint(status))

    def _row_chosen(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            item = self.table.item(rows[0].row(), 0)
            name = item.text() if item is not None else None
            if name is not None and name != self.service.selected:
                self.service.spawn(self.service.select(name))

    def _act(self, action: Any) -> None:
        if self.service.selected:
            self.service.spawn(action(self.service.selected))

    def _pull(self) -> None:
        self.service.start_pull(self.pull_edit.text())

    def _cancel_pull(self) -> None:
        for name, state in self.service.pulls.items():
            if state.running:
                self.service.spawn(self.service.cancel_pull(name))

    def _choose_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF file", "", "GGUF models (*.gguf)")
        if path:
            self.service.spawn(self.service.use_gguf(path))

    def _choose_model_file(self) -> None:
        name = self.service.selected
        path, _ = QFileDialog.getOpenFileName(self, f"The GGUF file of {name}", "", "GGUF models (*.gguf)")
        if path and name:
            self.service.spawn(self.service.attach_file(name, path))

    def open_hub(self) -> QWidget:
        """Open the Hugging Face browser, estimating on this view's machine report."""
        from victor_gui.ui.hub_browser import open_hub_browser

        return open_hub_browser(self, gpu_report=self.service.gpu_report, on_download=self.on_hub_download)

    def confirm_delete(self) -> QMessageBox | None:
        """Ask before deleting the selected model (non-blocking; Yes deletes)."""
        model = self.service.selected
        if not model:
            return None
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete model",
                          f"Delete {model} from {self.service.base_url}? Its files are removed from the "
                          "server's disk; pulling it again downloads it again.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)

        def done(result: int) -> None:
            if result == QMessageBox.StandardButton.Yes:
                self.service.spawn(self.service.delete(model))

        box.finished.connect(done)
        self.confirm_box = box
        box.open()
        return box

    def run_file(self) -> RunEngineDialog | None:
        """"Run with llama-server…": the plan's flags for the file, editable context, Start."""
        estimate = self.service.file
        if self.engines is None or estimate is None:
            return None
        self.run_dialog = RunEngineDialog(self.engines, estimate.path, self)
        self.run_dialog.open()
        return self.run_dialog

    def serve_all(self) -> RouterDialog | None:
        """"Serve all my models…": one llama-server in router mode over the model folders; once
        it is up, this view shows its models (Load / Unload, each at its own plan)."""
        if self.engines is None or self.folders is None:
            return None
        self.router_dialog = RouterDialog(self.engines, self.folders.scan, self, on_started=self._follow)
        self.router_dialog.open()
        return self.router_dialog

    def _follow(self, engine: Engine) -> None:
        self._follow_url = engine.url
        self.render_endpoints()

    def detach(self) -> None:
        """Stop listening to the services (the view is going away)."""
        if self.engines_panel is not None:
            self.engines_panel.detach()
        for name in ("_unsubscribe", "_unsubscribe_endpoints"):
            unsubscribe = getattr(self, name)
            if unsubscribe is not None:
                unsubscribe()
                setattr(self, name, None)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.detach()
        super().closeEvent(event)
