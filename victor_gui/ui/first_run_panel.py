"""The first-run offer's window: "Get a model to chat with".

Opened after the first paint when no server answers (never before: the offer needs the first
health round), and again from Servers → "Get a model…" or Help → "Get a model…". It renders a
:class:`~victor_gui.services.first_run.FirstRunService` (which owns the offer and runs its
actions):

* models already on disk, each with its fit badge and "Run" (the model manager's Run dialog:
  the plan's flags, Start);
* the recommended model with its fit badge and size, and "Download and run": the download's
  progress shows here, then the engine starts with the plan's flags;
* without a llama-server: the sentence saying how to get one (and "Install the engine" where
  this build has the installer);
* "Don't show again" (persisted in the settings).

Whichever way a server starts, the chat picks that server and its model and the input gets the
focus (:func:`select_engine_in_chat`).
"""

from __future__ import annotations

import asyncio
from html import escape
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from victor_gui.errors import VictorGuiError
from victor_gui.services.first_run import FirstRunOffer, FirstRunService, LocalChoice, Recommendation
from victor_gui.services.hf_fit import QuantFit
from victor_gui.services.model_folders import FOLDER
from victor_gui.ui.fit_badges import BADGE_STYLE, fit_text, quant_badge
from victor_gui.ui.icons import set_icon
from victor_gui.ui.widgets.stacked_bar import human_bytes

SELECT_TIMEOUT_S = 30.0


def badge(text: str, bg: str, fg: str, name: str) -> QLabel:
    """A fit badge, drawn like the Hub browser's."""
    label = QLabel(text)
    label.setAccessibleName(name)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setStyleSheet(BADGE_STYLE.format(bg=bg, fg=fg))
    return label


def local_badge(choice: LocalChoice, has_gpu: bool) -> tuple[str, str, str]:
    """(text, background, text colour) of a local model's badge (its plan as a QuantFit)."""
    from victor_gui.services.hf_hub import QuantFile

    plan = choice.plan
    fit = QuantFit(QuantFile(choice.name, "", ()), plan.n_ctx if plan is not None else 0,
                   plan.fit if plan is not None else None, error=choice.error)
    return quant_badge(fit, has_gpu)


async def select_engine_in_chat(window: Any, registry: Any, engine: Any,
                                timeout_s: float = SELECT_TIMEOUT_S) -> bool:
    """Make the chat use ``engine``'s server and its model, then focus the input. True when done
    (the registry lists the server as working and the chat offers its model within ``timeout_s``)."""
    chat = window.chat
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    target = None
    # The registry and the chat's picker follow the server on their own schedule (a probe, then
    # the model list): look until both have it.
    while loop.time() < deadline:
        target = next((t for t in registry.targets() if t.working and t.members[0].key == engine.url), None)
        if target is not None and chat.provider_combo.findText(target.name) >= 0:
            break
        await asyncio.sleep(0.1)
    else:
        return False
    chat.select_provider(target.id)
    while loop.time() < deadline:
        choice = chat.current_choice()
        if choice is not None and choice.display_name == target.name and chat.model_combo.count() > 0:
            chat.input.setFocus()
            return True
        await asyncio.sleep(0.1)
    return False


class FirstRunPanel(QDialog):
    """The offer (see the module doc), a window of its own over ``window``;
    ``open_run_dialog(path, parent)`` opens the Run dialog for a local model."""

    def __init__(self, service: FirstRunService, window: Any, *, open_run_dialog: Any = None) -> None:
        super().__init__(window)
        self.service = service
        self.open_run_dialog = open_run_dialog
        self.task: asyncio.Task[Any] | None = None
        self.closed = False
        self.setWindowTitle("Get a model — Victor GUI")
        self.setMinimumWidth(620)
        v = QVBoxLayout(self)
        title = QLabel("Get a model to chat with")
        title.setStyleSheet("font-size: 16pt; font-weight: bold;")
        v.addWidget(title)
        intro = QLabel("No server answered on this machine. Run a model you already have, or download "
                       "a small model that fits this machine and run it here.")
        intro.setWordWrap(True)
        v.addWidget(intro)
        self.status = QLabel("Looking for models on this machine and on Hugging Face…")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("First-run status")
        v.addWidget(self.status)

        self.local_box = QGroupBox("On this machine")
        self.local_grid = QGridLayout(self.local_box)
        self.local_box.hide()
        v.addWidget(self.local_box)
        self.run_buttons: list[QPushButton] = []

        self.rec_box = QGroupBox("Recommended for this machine")
        rec = QGridLayout(self.rec_box)
        self.rec_title = QLabel()
        self.rec_title.setWordWrap(True)
        self.rec_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rec.addWidget(self.rec_title, 0, 0)
        self.rec_badge = badge("", "transparent", "palette(text)", "Fit of the recommended model")
        rec.addWidget(self.rec_badge, 0, 1)
        self.download_button = QPushButton("Download and run")
        set_icon(self.download_button, "download")
        fit_text(self.download_button)
        self.download_button.clicked.connect(self.download_and_run)
        rec.addWidget(self.download_button, 0, 2)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Download progress")
        self.progress.hide()
        rec.addWidget(self.progress, 1, 0, 1, 3)
        self.progress_label = QLabel()
        self.progress_label.setWordWrap(True)
        self.progress_label.setAccessibleName("Download and start status")
        self.progress_label.hide()
        rec.addWidget(self.progress_label, 2, 0, 1, 3)
        rec.setColumnStretch(0, 1)
        self.rec_box.hide()
        v.addWidget(self.rec_box)

        self.engine_frame = QFrame()
        self.engine_frame.setObjectName("engineMissing")
        self.engine_frame.setFrameShape(QFrame.Shape.StyledPanel)
        engine_row = QHBoxLayout(self.engine_frame)
        self.engine_label = QLabel()
        self.engine_label.setWordWrap(True)
        self.engine_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.engine_label.setAccessibleName("Engine")
        engine_row.addWidget(self.engine_label, 1)
        self.install_button = QPushButton("Install the engine")
        self.install_button.clicked.connect(self.install_engine)
        self.install_button.hide()
        engine_row.addWidget(self.install_button)
        self.engine_frame.hide()
        v.insertWidget(v.indexOf(self.local_box), self.engine_frame)

        v.addStretch(1)
        bottom = QHBoxLayout()
        self.dismiss_box = QCheckBox("Don't show this at start")
        self.dismiss_box.setChecked(service.dismissed)
        self.dismiss_box.toggled.connect(self._dismiss_toggled)
        bottom.addWidget(self.dismiss_box)
        bottom.addStretch(1)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        bottom.addWidget(self.close_button)
        v.addLayout(bottom)
        self._unsubscribe = service.subscribe(self._event)
        if service.offer is not None:
            self.show_offer(service.offer)

    # -- rendering --------------------------------------------------------------------------------

    def _event(self, event: str, payload: Any) -> None:
        if event == "offer":
            if payload is None:
                self.status.setText("Looking for models on this machine and on Hugging Face…")
            else:
                self.show_offer(payload)
        elif event == "progress":
            self._progress(str(payload))
        elif event == "download":
            self._download_progress(*payload)
        elif event == "engine":
            self._progress(f"Running at {payload.url}. Opening it in the chat…")

    def show_offer(self, offer: FirstRunOffer) -> None:
        """Show ``offer``."""
        self.status.setText("Pick one: it starts here, and the chat uses it." if not offer.engine_missing
                            else "Once there is an engine, pick one: it starts here, and the chat uses it.")
        while self.local_grid.count():
            item = self.local_grid.takeAt(0)
            if item is not None and item.widget() is not None:
                item.widget().deleteLater()  # type: ignore[union-attr]
        self.run_buttons = []
        for row, choice in enumerate(offer.local):
            where = "" if choice.model.library == FOLDER else f" · from {choice.model.library}"
            name = QLabel(f"{choice.name} · {human_bytes(choice.model.size)}{where}")
            name.setToolTip(str(choice.model.path))
            name.setWordWrap(True)
            self.local_grid.addWidget(name, row, 0)
            self.local_grid.addWidget(badge(*local_badge(choice, offer.has_gpu), f"Fit of {choice.name}"),
                                      row, 1)
            run = QPushButton("Run…")
            set_icon(run, "play")
            fit_text(run)
            run.setAccessibleName(f"Run {choice.name}")
            run.setEnabled(choice.plan is not None and not offer.engine_missing)
            if choice.error:
                run.setToolTip(choice.error)
            run.clicked.connect(lambda _=False, c=choice: self.run_local(c))
            self.local_grid.addWidget(run, row, 2)
            self.run_buttons.append(run)
        self.local_grid.setColumnStretch(0, 1)
        self.local_box.setVisible(bool(offer.local))
        rec = offer.recommendation
        self.rec_box.show()
        if rec is not None:
            self.rec_title.setText(f"<b>{rec.quant.name}</b><br>from {rec.repo_id} · {human_bytes(rec.size)}")
            text, bg, fg = quant_badge(rec.fit, offer.has_gpu)
            self.rec_badge.setText(text)
            self.rec_badge.setStyleSheet(BADGE_STYLE.format(bg=bg, fg=fg))
            self.rec_badge.show()
            self.download_button.show()
            self.download_button.setEnabled(not offer.engine_missing and not self.service.busy)
        else:
            self.rec_title.setText(offer.recommendation_note or "No recommendation.")
            self.rec_badge.hide()
            self.download_button.hide()
        self.engine_label.setText(f"<b>No engine to run a model with yet.</b> {escape(offer.engine_sentence)}"
                                  if offer.engine_missing else "")
        self.install_button.setVisible(offer.engine_missing and offer.can_install)
        self.engine_frame.setVisible(offer.engine_missing)

    def _progress(self, text: str) -> None:
        self.progress_label.setText(text)
        self.progress_label.show()

    def _download_progress(self, done: int, total: int | None) -> None:
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(min(1000, done * 1000 // total))
            share = done * 100 / total
            self.progress.setFormat(f"{share:.0f} % · {human_bytes(done)} of {human_bytes(total)}")
        else:
            self.progress.setRange(0, 0)  # busy: the size is unknown
        self.progress.show()

    # -- actions ----------------------------------------------------------------------------------

    def download_and_run(self) -> None:
        """The recommendation's "Download and run"."""
        offer = self.service.offer
        if offer is None or offer.recommendation is None or self.service.busy:
            return
        self.download_button.setEnabled(False)
        self._progress(f"Queuing {offer.recommendation.quant.name}…")
        self.task = self.service.spawn(self._download_and_run(offer.recommendation))

    async def _download_and_run(self, rec: Recommendation) -> None:
        try:
            await self.service.download_and_run(rec)  # its "engine" event switches the chat
        except VictorGuiError as exc:
            if not self.closed:
                self._progress(exc.message)
                self.download_button.setEnabled(True)
            return
        if not self.closed:
            self.progress.hide()

    def run_local(self, choice: LocalChoice) -> None:
        """A local model's "Run…": the Run dialog; once it started a server, the chat uses it."""
        if self.open_run_dialog is None:
            return
        dialog = self.open_run_dialog(choice.model.path, self)
        if dialog is not None:
            dialog.accepted.connect(lambda: self._run_dialog_done(dialog))

    def _run_dialog_done(self, dialog: Any) -> None:
        if getattr(dialog, "engine", None) is not None:
            self.service.adopt(dialog.engine)  # the same "engine" event as a download's

    def install_engine(self) -> None:
        """"Install the engine" (only shown where the installer exists)."""
        self.install_button.setEnabled(False)
        self.task = self.service.spawn(self._install())

    async def _install(self) -> None:
        try:
            await self.service.install_engine()  # steps arrive as "progress"; a new offer follows
        except VictorGuiError as exc:
            if not self.closed:
                self._progress(exc.message)
                self.install_button.setEnabled(True)

    def _dismiss_toggled(self, checked: bool) -> None:
        self.service.spawn(self.service.set_dismissed(checked))

    def closeEvent(self, event: QCloseEvent) -> None:
        # A download keeps going (the service owns it); this window only stops listening.
        self.closed = True
        self._unsubscribe()
        super().closeEvent(event)


def open_first_run(service: FirstRunService, window: QWidget, *, open_run_dialog: Any = None,
                   build: bool = True) -> FirstRunPanel:
    """Show the panel (non-modal) and, with ``build``, build a fresh offer for it."""
    panel = FirstRunPanel(service, window, open_run_dialog=open_run_dialog)
    panel.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    panel.show()
    if build:
        service.spawn(service.build())
    return panel
