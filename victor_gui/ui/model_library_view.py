"""The model manager view: an endpoint's models (size, quantization, context), the selected
model's fit on this machine (badge, stacked bar, context slider, measured vs estimated), pull
with progress and Cancel, load / unload, and delete with confirmation.

It renders :class:`~victor_gui.services.model_library.ModelLibraryService` (and lists the
endpoints of an :class:`~victor_gui.services.endpoints_service.EndpointsService`); all state is
the services'. The slider hands every move to the service, which recomputes the estimate once
the slider rests for ~50 ms.
"""

from __future__ import annotations

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
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from victor_gui.servers.status import EndpointState, ServerKind
from victor_gui.services.endpoints_service import EndpointsService
from victor_gui.services.model_library import ModelLibraryService, PullState
from victor_gui.sizing.fit import CTX_PAD, FitResult
from victor_gui.ui.widgets.stacked_bar import Segment, StackedBar, human_bytes

BADGE = {  # verdict -> (colour, words)
    "full": ("#187a33", "Full GPU offload"),  # white on it ≥ 4.5:1, as the dashboard badges
    "partial": ("#9a5b00", "Partial offload"),
    "cpu": ("#44546a", "CPU only"),
    "no_fit": ("#b00020", "Won't fit"),
}
PART_COLORS = {"weights": "#3b6fc4", "KV cache": "#6aa84f", "compute": "#e69138",
               "overhead": "#999999", "in RAM (CPU layers)": "#c27ba0"}
COLUMNS = ("Model", "Size", "Quantization", "Parameters", "Context", "Loaded")


def badge_text(fit: FitResult) -> str:
    """Full / partial N of M / CPU only / won't fit."""
    words = BADGE[fit.verdict][1]
    if fit.verdict == "partial":
        return f"{words}: {fit.n_gpu_layers} of {fit.n_layers_total} layers on GPU"
    return words


def fit_segments(fit: FitResult) -> list[Segment]:
    """What the plan puts on the GPUs by kind, then what spills to RAM (drawn past free VRAM)."""
    parts = [Segment("weights", fit.gpu.weights, PART_COLORS["weights"]),
             Segment("KV cache", fit.gpu.kv, PART_COLORS["KV cache"]),
             Segment("compute", fit.gpu.compute, PART_COLORS["compute"]),
             Segment("overhead", fit.gpu.overhead, PART_COLORS["overhead"])]
    spill = fit.host.weights + fit.host.kv
    if fit.verdict != "full" and spill:
        parts.append(Segment("in RAM (CPU layers)", spill, PART_COLORS["in RAM (CPU layers)"]))
    return parts


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "ETA —"
    seconds = int(seconds)
    return f"ETA {seconds // 60}:{seconds % 60:02d}"


class ModelLibraryView(QWidget):
    """Models of the chosen endpoint and everything one can do with them."""

    def __init__(self, service: ModelLibraryService, endpoints: EndpointsService | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.endpoints = endpoints
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
        self.refresh_button.clicked.connect(lambda: service.spawn(service.refresh()))
        self.gguf_button = QPushButton("Estimate a GGUF file…")
        self.gguf_button.setAccessibleName("Estimate a GGUF file")
        self.gguf_button.clicked.connect(self._choose_gguf)
        top.addWidget(self.refresh_button)
        top.addWidget(self.gguf_button)
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
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([300, 200])
        layout.addWidget(splitter, 1)
        layout.addWidget(self._build_pull())
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Model manager status")
        layout.addWidget(self.message)

        self._unsubscribe: Any = service.subscribe(self._on_event)
        self._unsubscribe_endpoints: Any = endpoints.subscribe(self._on_endpoints) if endpoints else None
        self.render_endpoints()
        self.render_models()
        self.render_fit()

    # -- layout ---------------------------------------------------------------------------------

    def _build_detail(self) -> QWidget:
        box = QGroupBox("Will it fit?")
        v = QVBoxLayout(box)
        head = QHBoxLayout()
        self.model_title = QLabel("Choose a model")
        self.model_title.setStyleSheet("font-weight: bold;")
        self.badge = QLabel()
        self.badge.setAccessibleName("Fit verdict")
        head.addWidget(self.model_title)
        head.addStretch(1)
        head.addWidget(self.badge)
        v.addLayout(head)
        self.bar = StackedBar(name="Estimated GPU memory against free VRAM")
        self.bar.setMinimumHeight(22)
        v.addWidget(self.bar)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        v.addWidget(self.legend)
        ctx_row = QHBoxLayout()
        ctx_row.addWidget(QLabel("Context"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setAccessibleName("Context length")
        self.slider.setSingleStep(CTX_PAD)
        self.slider.setPageStep(4096)
        self.slider.valueChanged.connect(self._slider_moved)
        ctx_row.addWidget(self.slider, 1)
        self.ctx_label = QLabel()
        self.ctx_label.setMinimumWidth(260)
        ctx_row.addWidget(self.ctx_label)
        v.addLayout(ctx_row)
        self.measured_label = QLabel()
        self.measured_label.setWordWrap(True)
        v.addWidget(self.measured_label)
        actions = QHBoxLayout()
        self.load_button = QPushButton("Load")
        self.unload_button = QPushButton("Unload")
        self.delete_button = QPushButton("Delete…")
        for button, name in ((self.load_button, "Load model"), (self.unload_button, "Unload model"),
                             (self.delete_button, "Delete model")):
            button.setAccessibleName(name)
            actions.addWidget(button)
        actions.addStretch(1)
        self.busy_label = QLabel()
        actions.addWidget(self.busy_label)
        self.load_button.clicked.connect(lambda: self._act(self.service.load))
        self.unload_button.clicked.connect(lambda: self._act(self.service.unload))
        self.delete_button.clicked.connect(self.confirm_delete)
        v.addLayout(actions)
        v.addStretch(1)
        return box

    def _build_pull(self) -> QWidget:
        box = QGroupBox("Pull a model")
        h = QHBoxLayout(box)
        self.pull_edit = QLineEdit()
        self.pull_edit.setAccessibleName("Model to pull")
        self.pull_edit.setPlaceholderText("e.g. qwen3:8b")
        self.pull_edit.returnPressed.connect(self._pull)
        self.pull_button = QPushButton("Pull")
        self.pull_button.setAccessibleName("Pull model")
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
        if current is None and self.endpoint_combo.count():
            self._endpoint_chosen(0)

    def render_models(self) -> None:
        models = self.service.models
        self.table.blockSignals(True)
        self.table.setRowCount(len(models))
        for row, m in enumerate(models):
            ctx = f"{m.context_length:,}" if m.context_length else (
                f"up to {m.max_context_length:,}" if m.max_context_length else "")
            cells = (m.name, human_bytes(m.size_bytes) if m.size_bytes else "", m.quantization or "",
                     m.parameter_size or "", ctx, "yes" if m.loaded else "")
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
        self.model_title.setText(entry.name if entry else "Choose a model")
        kind = s.kind
        for button in (self.load_button, self.unload_button, self.delete_button):
            button.setEnabled(entry is not None and s.busy is None)
        self.delete_button.setEnabled(entry is not None and s.busy is None and kind is ServerKind.OLLAMA)
        fit = s.fit
        self.slider.blockSignals(True)
        self.slider.setRange(CTX_PAD, max(CTX_PAD, s.max_context))
        self.slider.setValue(s.n_ctx)
        self.slider.blockSignals(False)
        self.slider.setEnabled(s.architecture is not None)
        if fit is None:
            self.badge.setText("")
            self.badge.setStyleSheet("")
            self.bar.set_parts([], 0)
            self.legend.setText(s.arch_error or ("Reading the model's architecture…" if entry else ""))
            self.ctx_label.setText(f"{s.n_ctx:,} tokens" if entry else "")
            self.measured_label.setText("")
            return
        color, _ = BADGE[fit.verdict]
        self.badge.setText(badge_text(fit))
        self.badge.setStyleSheet(f"background: {color}; color: white; border-radius: 4px; padding: 3px 8px; "
                                 "font-weight: bold;")
        free = sum(d.free for d in (s.gpu_report.gpus if s.gpu_report else []))
        segments = fit_segments(fit)
        self.bar.set_parts(segments, free, "free VRAM")
        legend = " ".join(f"<span style='color:{seg.color}'>■</span> {seg.label} {human_bytes(seg.value)}"
                          for seg in segments)
        legend += (f" &nbsp;|&nbsp; <b>free VRAM {human_bytes(free)}</b>" if free
                   else " &nbsp;|&nbsp; <b>no GPU found</b>")
        self.legend.setText(legend)
        best = fit.max_full_offload_ctx
        self.ctx_label.setText(f"{s.n_ctx:,} tokens — full offload up to "
                               + (f"{best:,}" if best else "none"))
        self.measured_label.setText(self._measured_text(fit, entry.context_length if entry else None))

    @staticmethod
    def _measured_text(fit: FitResult, loaded_ctx: int | None) -> str:
        estimate = (f"estimated at {fit.n_ctx:,}: {human_bytes(fit.gpu.total)} on GPU, "
                    f"{human_bytes(fit.total.total)} in all")
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

    def _slider_moved(self, value: int) -> None:
        self.service.set_context(value)
        self.ctx_label.setText(f"{value:,} tokens …")

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

    def detach(self) -> None:
        """Stop listening to the services (the view is going away)."""
        for name in ("_unsubscribe", "_unsubscribe_endpoints"):
            unsubscribe = getattr(self, name)
            if unsubscribe is not None:
                unsubscribe()
                setattr(self, name, None)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.detach()
        super().closeEvent(event)
