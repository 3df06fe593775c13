"""The downloads panel: one row per model download (name, progress bar, size and speed, ETA,
Pause/Resume, Cancel, and the sentence of a failure or of a file already here), and a line to
start one from an ``hf:AUTHOR/REPO/FILE`` reference.

It renders :class:`~victor_gui.services.downloads.DownloadManager` (the one owner of download
state) and follows its events; every button calls the manager. Opened from the model manager
(Servers → Models… → Downloads…).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from victor_gui.core.tasks import TaskSet
from victor_gui.errors import DownloadError
from victor_gui.services.downloads import (
    ACTIVE,
    DownloadEvent,
    DownloadJob,
    DownloadManager,
    JobState,
    parse_hf_ref,
)
from victor_gui.ui.fit_badges import fit_text
from victor_gui.ui.icons import set_icon
from victor_gui.ui.model_library_view import eta_text
from victor_gui.ui.widgets.stacked_bar import human_bytes

STATE_WORDS = {JobState.QUEUED: "Waiting", JobState.DOWNLOADING: "Downloading", JobState.PAUSED: "Paused",
               JobState.VERIFYING: "Checking the sha256…", JobState.DONE: "Done",
               JobState.FAILED: "Failed", JobState.PRESENT: "Already here"}


def detail_text(job: DownloadJob) -> str:
    """``1.2 GB of 4.7 GB · 35.0 MB/s · ETA 1:42`` (the parts that are known)."""
    done = human_bytes(job.done_bytes)
    parts = [f"{done} of {human_bytes(job.size)}" if job.size else done]
    if job.state == JobState.DOWNLOADING:
        parts.append(f"{human_bytes(job.speed_bps)}/s" if job.speed_bps else "—/s")
        parts.append(eta_text(job.eta_s))
    elif job.state == JobState.DONE:
        parts.append("sha256 verified" if job.verified else "no sha256 published")
    return f"{STATE_WORDS[job.state]} · " + " · ".join(parts)


def runnable(path: str) -> bool:
    """A model llama-server can be started on: a GGUF that is not a vision projector, and for a
    split model its first part (llama-server finds the others beside it)."""
    name = Path(path).name.lower()
    if not name.endswith(".gguf") or name.startswith("mmproj") or "-mmproj" in name:
        return False
    split = re.search(r"-(\d{5})-of-\d{5}\.gguf$", name)
    return split is None or int(split.group(1)) == 1


class DownloadRow(QFrame):
    """One download's row; :meth:`render` shows a new snapshot of the job."""

    def __init__(self, job: DownloadJob, act: Callable[[str, str], Any],
                 parent: QWidget | None = None, *, run: Callable[[Path], object] | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self._run = run
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.name_label = QLabel()
        self.name_label.setAccessibleName("Download name")
        top.addWidget(self.name_label, 1)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setAccessibleName(f"Pause or resume {job.name}")
        self.pause_button.clicked.connect(lambda: act("resume" if self.job.state in (
            JobState.PAUSED, JobState.FAILED) else "pause", self.job.id))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName(f"Cancel {job.name}")
        set_icon(self.cancel_button, "trash")
        self.cancel_button.clicked.connect(lambda: act("cancel", self.job.id))
        # A finished model file runs from here (the plan's flags, in the same dialog as the
        # model manager's), so search → download → chat needs no hunting for the file.
        self.run_button = QPushButton("Run…")
        self.run_button.setAccessibleName(f"Run {job.name} with llama-server")
        set_icon(self.run_button, "play", later=True)
        self.run_button.clicked.connect(lambda: run(Path(self.job.dest)) if run is not None else None)
        for button in (self.run_button, self.pause_button, self.cancel_button):
            top.addWidget(button)
        layout.addLayout(top)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setAccessibleName(f"Progress of {job.name}")
        layout.addWidget(self.progress)
        self.detail_label = QLabel()
        self.detail_label.setAccessibleName("Download progress")
        layout.addWidget(self.detail_label)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setAccessibleName("Download message")
        layout.addWidget(self.error_label)
        self.show_job(job)

    def show_job(self, job: DownloadJob) -> None:
        """Show ``job`` as it stands."""
        self.job = job
        self.name_label.setText(f"<b>{job.name}</b> — {job.repo_id}")
        fraction = job.fraction
        self.progress.setValue(int((fraction if fraction is not None else 0.0) * 1000))
        self.progress.setVisible(job.state != JobState.PRESENT)
        self.detail_label.setText(detail_text(job))
        self.error_label.setText(job.message or "")
        self.error_label.setVisible(bool(job.message))
        resumable = job.state in (JobState.PAUSED, JobState.FAILED)
        self.pause_button.setText("Resume" if resumable else "Pause")
        self.pause_button.setVisible(job.state in ACTIVE or resumable)
        finished = job.state in (JobState.DONE, JobState.PRESENT)
        self.cancel_button.setText("Remove from list" if finished else "Cancel")
        self.run_button.setVisible(finished and self._run is not None and runnable(job.dest))
        for button in (self.run_button, self.pause_button, self.cancel_button):
            fit_text(button)


class DownloadsView(QWidget):
    """The downloads of ``manager``, live."""

    def __init__(self, manager: DownloadManager, parent: QWidget | None = None, *,
                 run_model: Callable[[Path], object] | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.run_model = run_model  # "Run…" on finished models (None: no engine runner)
        self.setWindowTitle("Downloads — Victor GUI")
        self._tasks = TaskSet("downloads view")
        self.rows: dict[str, DownloadRow] = {}
        layout = QVBoxLayout(self)
        start = QHBoxLayout()
        self.ref_edit = QLineEdit()
        self.ref_edit.setAccessibleName("Model to download")
        self.ref_edit.setPlaceholderText("hf:author/repo/file.gguf")
        self.ref_edit.returnPressed.connect(self.download_typed)
        self.download_button = QPushButton("Download")
        self.download_button.setAccessibleName("Download model")
        set_icon(self.download_button, "download")
        self.download_button.clicked.connect(self.download_typed)
        fit_text(self.download_button)
        start.addWidget(self.ref_edit, 1)
        start.addWidget(self.download_button)
        layout.addLayout(start)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Downloads message")
        layout.addWidget(self.message)
        self.empty_label = QLabel("No downloads. Choose a quantization in the Hugging Face browser, "
                                  "or type hf:author/repo/file.gguf above.")
        self.empty_label.setWordWrap(True)
        layout.addWidget(self.empty_label)
        holder = QWidget()
        self.list_layout = QVBoxLayout(holder)
        self.list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(holder)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        layout.addWidget(scroll, 1)
        for job in manager.jobs:
            self._add(job)
        self._sync_empty()
        self._unsubscribe: Callable[[], None] | None = manager.subscribe(self._on_event)

    # -- events ----------------------------------------------------------------------------------

    def _on_event(self, event: DownloadEvent) -> None:
        row = self.rows.get(event.job.id)
        if event.kind == "removed":
            if row is not None:
                del self.rows[event.job.id]
                row.setParent(None)
                row.deleteLater()
        elif row is None:
            self._add(event.job)
        else:
            row.show_job(event.job)
        self._sync_empty()

    def _add(self, job: DownloadJob) -> None:
        row = DownloadRow(job, self._act, run=self.run_model)
        self.rows[job.id] = row
        self.list_layout.insertWidget(self.list_layout.count() - 1, row)

    def _sync_empty(self) -> None:
        self.empty_label.setVisible(not self.rows)

    # -- actions ---------------------------------------------------------------------------------

    def _act(self, verb: str, job_id: str) -> asyncio.Task[None]:
        call: dict[str, Callable[[str], Awaitable[None]]] = {
            "pause": self.manager.pause, "resume": self.manager.resume, "cancel": self.manager.cancel}
        return self._tasks.spawn(call[verb](job_id))

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        """Run ``coro`` as one of this panel's tasks (cancelled when the panel closes)."""
        return self._tasks.spawn(coro)

    def download_typed(self) -> asyncio.Task[None] | None:
        """Start the download typed in the line (``hf:author/repo/file``)."""
        text = self.ref_edit.text().strip()
        try:
            repo_id, file = parse_hf_ref(text if text.startswith("hf:") else f"hf:{text}")
        except ValueError:
            self.message.setText("Type a Hugging Face file as hf:author/repo/file.gguf")
            return None
        return self._tasks.spawn(self.download(repo_id, [file]))

    async def download(self, repo_id: str, files: list[str]) -> None:
        """Enqueue ``files`` of ``repo_id``; a refusal (disk space, no such file) is shown."""
        self.message.setText(f"Asking the Hub about {repo_id}…")
        try:
            jobs = await self.manager.enqueue(repo_id, files)
        except DownloadError as exc:
            self.message.setText(exc.message)
            return
        present = [j for j in jobs if j.state == JobState.PRESENT]
        self.message.setText(present[0].message or "" if present and len(present) == len(jobs) else "")

    # -- closing ---------------------------------------------------------------------------------

    def detach(self) -> None:
        """Stop following the manager (the downloads go on)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._tasks.cancel_all()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.detach()
        super().closeEvent(event)
