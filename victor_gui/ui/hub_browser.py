""""Find models on Hugging Face": search GGUF repositories, open one, and see per quant its size,
a fit badge for this machine and the largest context that fully offloads, before any download.

It renders :class:`~victor_gui.services.hub_browser.HubBrowserService` (all state is the
service's). The context slider and box re-plan every quant from the headers already read (no
request). Badges use the verdict colours of :mod:`victor_gui.ui.fit_panel` (white text on them
is ≥ 4.5:1, so they read the same in both themes); the rest takes the theme's tokens.
A "Download" button per quant calls the injected ``on_download(repo_id, files)``; without one the
buttons are not shown.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from victor_gui.core.tasks import TaskSet
from victor_gui.services.hf_fit import QuantFit
from victor_gui.services.hf_hub import SORTS, RepoFiles, Sort
from victor_gui.services.hub_browser import HubBrowserService
from victor_gui.sizing.fit import CTX_PAD
from victor_gui.ui.fit_badges import BADGE_STYLE, quant_badge
from victor_gui.ui.fit_panel import context_controls, snap
from victor_gui.ui.icons import set_icon
from victor_gui.ui.theme import current_tokens
from victor_gui.ui.widgets.stacked_bar import human_bytes

OnDownload = Callable[[str, list[str]], object]
RESULT_COLUMNS = ("Repository", "Downloads", "Likes", "Updated")
QUANT_COLUMNS = ("Quant", "File", "Size", "Fit", "Full offload up to", "")
SORT_LABELS = {"downloads": "Most downloaded", "likes": "Most liked", "updated": "Recently updated"}
_CLOSING = TaskSet("hub browser close")  # a closed window's service shuts down here


def full_offload_text(fit: QuantFit, has_gpu: bool) -> str:
    """The largest fully offloading context, in words."""
    if fit.fit is None:
        return "—" if fit.error else ""
    if not has_gpu:
        return "no GPU"
    best = fit.max_full_ctx
    return f"{best:,} tokens" if best else "none"


class HubBrowser(QWidget):
    """Search the Hub for GGUF repositories and see how each quant would fit here."""

    def __init__(self, service: HubBrowserService, *, on_download: OnDownload | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.on_download = on_download
        self.setWindowTitle("Find models on Hugging Face — Victor GUI")
        layout = QVBoxLayout(self)

        top = QHBoxLayout()
        self.search_edit = QLineEdit()
        self.search_edit.setAccessibleName("Search Hugging Face")
        self.search_edit.setPlaceholderText("Search GGUF models, e.g. qwen3 8b")
        self.search_edit.returnPressed.connect(self.search)
        self.author_edit = QLineEdit()
        self.author_edit.setAccessibleName("Author")
        self.author_edit.setPlaceholderText("Author (optional)")
        self.author_edit.setMaximumWidth(180)
        self.author_edit.returnPressed.connect(self.search)
        self.sort_combo = QComboBox()
        self.sort_combo.setAccessibleName("Sort by")
        for key in SORTS:
            self.sort_combo.addItem(SORT_LABELS[key], key)
        self.search_button = QPushButton("Search")
        self.search_button.setAccessibleName("Search")
        set_icon(self.search_button, "search")
        self.search_button.clicked.connect(self.search)
        top.addWidget(self.search_edit, 1)
        top.addWidget(self.author_edit)
        top.addWidget(self.sort_combo)
        top.addWidget(self.search_button)
        layout.addLayout(top)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.results = QTableWidget(0, len(RESULT_COLUMNS))
        self.results.setAccessibleName("Repositories")
        self._table_defaults(self.results, RESULT_COLUMNS)
        self.results.itemSelectionChanged.connect(self._result_chosen)
        splitter.addWidget(self.results)
        splitter.addWidget(self._build_repo())
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([400, 840])  # the quant table needs the room: badges are words
        layout.addWidget(splitter, 1)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setAccessibleName("Hugging Face status")
        layout.addWidget(self.message)
        self._unsubscribe = service.subscribe(self._on_event)
        self.render_results()
        self.render_repo()

    @staticmethod
    def _table_defaults(table: QTableWidget, columns: tuple[str, ...]) -> None:
        table.setHorizontalHeaderLabels(columns)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def _build_repo(self) -> QWidget:
        panel = QWidget()
        v = QVBoxLayout(panel)
        v.setContentsMargins(0, 0, 0, 0)
        self.repo_title = QLabel("Choose a repository")
        self.repo_title.setStyleSheet("font-weight: bold;")
        self.repo_title.setAccessibleName("Repository")
        v.addWidget(self.repo_title)
        self.gated_label = QLabel()
        self.gated_label.setWordWrap(True)
        self.gated_label.setOpenExternalLinks(True)
        self.gated_label.setTextFormat(Qt.TextFormat.RichText)
        self.gated_label.setAccessibleName("Gated repository")
        v.addWidget(self.gated_label)
        ctx = QHBoxLayout()
        ctx.addWidget(QLabel("Context"))
        self.slider, self.ctx_spin = context_controls()
        self.slider.valueChanged.connect(self._slider_moved)
        self.ctx_spin.valueChanged.connect(self._typed)
        ctx.addWidget(self.slider, 1)
        ctx.addWidget(self.ctx_spin)
        v.addLayout(ctx)
        self.quants = QTableWidget(0, len(QUANT_COLUMNS))
        self.quants.setAccessibleName("Quantizations")
        self._table_defaults(self.quants, QUANT_COLUMNS)
        self.quants.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.quants.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        v.addWidget(self.quants, 1)
        self.vision_label = QLabel()
        self.vision_label.setWordWrap(True)
        self.vision_label.setAccessibleName("Vision add-on")
        v.addWidget(self.vision_label)
        self.vision_check = QCheckBox("Download the vision add-on with the quant")
        self.vision_check.setAccessibleName("Download the vision add-on")
        self.vision_check.setChecked(True)
        v.addWidget(self.vision_check)
        self.machine_label = QLabel()
        self.machine_label.setWordWrap(True)
        v.addWidget(self.machine_label)
        return panel

    # -- rendering ------------------------------------------------------------------------------

    def render_results(self) -> None:
        rows = self.service.results
        self.results.blockSignals(True)
        self.results.clearSelection()
        self.results.setRowCount(len(rows))
        for row, r in enumerate(rows):
            updated = r.last_modified.strftime("%Y-%m-%d") if r.last_modified else ""
            name = f"{r.id}  (gated)" if r.gated else r.id
            cells = (name, f"{r.downloads:,}", f"{r.likes:,}", updated)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, r.id)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.results.setItem(row, col, item)
        self.results.blockSignals(False)
        self.results.resizeColumnsToContents()
        self.results.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def render_repo(self) -> None:
        s = self.service
        repo: RepoFiles | None = s.repo
        self.repo_title.setText(repo.repo_id if repo else "Choose a repository")
        if repo is not None and repo.gated:
            page = html.escape(s.hub.page_url(repo.repo_id), quote=True)
            self.gated_label.setText(f"Gated: downloads need your Hugging Face token (Settings → API keys) "
                                     f"and the model's terms accepted on <a href='{page}'>its page</a>.")
            self.gated_label.show()
        else:
            self.gated_label.hide()
        vision = repo.vision if repo else ()
        self.vision_label.setVisible(bool(vision))
        self.vision_check.setVisible(bool(vision) and self.on_download is not None)
        if vision:
            names = ", ".join(f"{v.name} ({human_bytes(v.size)})" for v in vision)
            self.vision_label.setText(f"Vision add-on (image input, used with any quant): {names}")
        self.render_fits()

    def render_fits(self) -> None:
        s = self.service
        top = max(CTX_PAD, s.max_context)
        for control in (self.slider, self.ctx_spin):
            control.blockSignals(True)
            control.setRange(CTX_PAD, top)
            control.setValue(min(s.n_ctx, top))
            control.blockSignals(False)
            control.setEnabled(s.repo is not None)
        report = s.gpu_report
        has_gpu = bool(report and report.gpus)
        self.quants.setHorizontalHeaderItem(3, QTableWidgetItem(f"Fit at {s.n_ctx:,}"))
        self.quants.setRowCount(len(s.fits))
        for row, f in enumerate(s.fits):
            q = f.quant
            files = q.name if len(q.parts) == 1 else f"{q.name} ({len(q.parts)} parts)"
            for col, text in enumerate((q.label, files, human_bytes(q.size))):
                item = QTableWidgetItem(text)
                item.setToolTip("\n".join(q.paths) if col == 1 else "")
                self.quants.setItem(row, col, item)
            text, bg, fg = quant_badge(f, has_gpu, bool(s.repo and s.repo.gated))
            badge = QLabel(text)
            badge.setAccessibleName(f"Fit of {q.label}")
            badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
            badge.setStyleSheet(BADGE_STYLE.format(bg=bg, fg=fg))
            if f.error:
                badge.setToolTip(f.error)
            self.quants.setCellWidget(row, 3, badge)
            self.quants.setItem(row, 4, QTableWidgetItem(full_offload_text(f, has_gpu)))
            if self.on_download is not None:
                button = QPushButton("Download")
                button.setAccessibleName(f"Download {q.label}")
                set_icon(button, "download")
                button.clicked.connect(lambda _=False, quant=q.paths: self._download(quant))
                self.quants.setCellWidget(row, 5, button)
            else:
                self.quants.removeCellWidget(row, 5)
        self.quants.setColumnHidden(5, self.on_download is None)
        for col in (0, 2, 3, 4):
            self.quants.resizeColumnToContents(col)
        self.machine_label.setText(self._machine_text())
        self.machine_label.setStyleSheet(f"color: {current_tokens().muted_text};")

    def _machine_text(self) -> str:
        report = self.service.gpu_report
        if report is None:
            return "Detecting this machine's GPUs…"
        gpus = ", ".join(f"{g.name} ({human_bytes(g.free)} free)" for g in report.gpus) or "no GPU"
        ram = f"; RAM {human_bytes(report.ram.available)} available" if report.ram else ""
        return f"This machine: {gpus}{ram}. Read from each file's header only; nothing is downloaded."

    def badge_texts(self) -> dict[str, str]:
        """Quant label → its badge's text, as shown (for tests and accessibility checks)."""
        out: dict[str, str] = {}
        for row in range(self.quants.rowCount()):
            item = self.quants.item(row, 0)
            badge = self.quants.cellWidget(row, 3)
            if item is not None and isinstance(badge, QLabel):
                out[item.text()] = badge.text()
        return out

    def _on_event(self, event: str, payload: Any) -> None:
        if event == "results":
            self.render_results()
        elif event == "repo":
            self.render_repo()
        elif event == "fits":
            self.render_fits()
        elif event == "busy":
            self.search_button.setEnabled(payload is None or payload != "Searching…")
            if payload:
                self.message.setText(str(payload))
        elif event == "message":
            self.message.setText(str(payload))

    # -- actions --------------------------------------------------------------------------------

    def search(self) -> None:
        sort: Sort = self.sort_combo.currentData()
        self.service.spawn(self.service.search(self.search_edit.text(), self.author_edit.text(), sort))

    def _result_chosen(self) -> None:
        rows = self.results.selectionModel().selectedRows()
        item = self.results.item(rows[0].row(), 0) if rows else None
        repo_id = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if repo_id and (self.service.repo is None or self.service.repo.repo_id != repo_id):
            self.service.spawn(self.service.open_repo(str(repo_id)))

    def _slider_moved(self, value: int) -> None:
        snapped = snap(value) if value < self.slider.maximum() else value
        self.ctx_spin.blockSignals(True)
        self.ctx_spin.setValue(snapped)
        self.ctx_spin.blockSignals(False)
        self.service.set_context(snapped)

    def _typed(self, value: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(value)
        self.slider.blockSignals(False)
        self.service.set_context(value)

    def _download(self, paths: list[str]) -> None:
        repo = self.service.repo
        if repo is None or self.on_download is None:
            return
        files = list(paths)
        if self.vision_check.isChecked():
            files += [p for v in repo.vision for p in v.paths]
        self.on_download(repo.repo_id, files)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._unsubscribe()  # the service may outlive the window (safe to call twice)
        super().closeEvent(event)


def open_hub_browser(parent: QWidget, *, gpu_report: Any = None,
                     on_download: OnDownload | None = None) -> HubBrowser:
    """Open the browser as its own window over ``parent`` (its service closes with it)."""
    service = HubBrowserService(gpu_report=gpu_report)
    view = HubBrowser(service, on_download=on_download, parent=parent)
    view.setWindowFlag(Qt.WindowType.Window, True)
    view.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    view.destroyed.connect(lambda *_: _CLOSING.spawn(service.close()))
    view.resize(1240, 640)
    view.show()
    return view
