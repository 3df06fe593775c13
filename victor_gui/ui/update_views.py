"""The window's side of updates: Help → Check for updates…, the quiet notice when one is found
(what is new, size; Download and install / Later / Skip this version; the release page where the
app cannot install itself), and the progress dialog with Cancel.

:class:`UpdateViews` follows the one :class:`~victor_gui.services.updates.UpdateService`; the
automatic check is scheduled only after the window's first paint, some seconds later (the
service then asks the feed at most once a day). Once the installer runs, the window closes: the
installer replaces the app and starts the new version on the same data.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from victor_gui.core.tasks import TaskSet

if TYPE_CHECKING:
    from victor_gui.services.update_feed import Release
    from victor_gui.services.updates import UpdateChanged, UpdateService

log = logging.getLogger(__name__)

# How long after the first paint the automatic check waits: start-up work (servers, store,
# tools) goes first, and a slow feed never competes with it.
CHECK_DELAY_S = 8.0


def _size_text(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"


class UpdateNotice(QDialog):
    """A version is available: what is new and its size, and what to do about it."""

    def __init__(self, views: UpdateViews, release: Release, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Update available")
        self.setModal(False)  # quiet: the chat goes on while it is open
        self.release = release
        service = views.service
        assert service is not None
        layout = QVBoxLayout(self)
        self.title = QLabel(f"Victor GUI {release.version} is available "
                            f"(you have {service.current_version}).")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.notes = QPlainTextEdit(release.notes or "(no release notes)")
        self.notes.setReadOnly(True)
        self.notes.setAccessibleName("What is new")
        layout.addWidget(self.notes, 1)
        self.size_label = QLabel(f"Download: {release.installer_name}, {_size_text(release.size)}. "
                                 "Your conversations and settings are backed up first.")
        self.size_label.setWordWrap(True)
        layout.addWidget(self.size_label)
        buttons = QHBoxLayout()
        if service.can_install:
            self.install_button = QPushButton("Download and install")
            self.install_button.clicked.connect(views.install)
        else:
            self.install_button = QPushButton("Open the release page")
            self.install_button.clicked.connect(lambda: views.open_release_page(release))
        self.later_button = QPushButton("Later")
        self.later_button.clicked.connect(views.later)
        self.skip_button = QPushButton("Skip this version")
        self.skip_button.clicked.connect(views.skip)
        for button in (self.install_button, self.later_button, self.skip_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.install_button.setDefault(True)


class UpdateProgress(QDialog):
    """The download (then backup and installer start) under way, with Cancel."""

    def __init__(self, views: UpdateViews, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Updating Victor GUI")
        self.setModal(False)
        layout = QVBoxLayout(self)
        self.label = QLabel("Downloading…")
        self.label.setWordWrap(True)
        layout.addWidget(self.label)
        self.bar = QProgressBar()
        self.bar.setAccessibleName("Download progress")
        layout.addWidget(self.bar)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(views.cancel)
        layout.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignRight)

    def show_change(self, change: UpdateChanged) -> None:
        from victor_gui.services.updates import UpdateState

        self.label.setText(change.message)
        if change.total:
            # Kilobytes keep a 1 GB installer inside QProgressBar's int range.
            self.bar.setRange(0, max(1, change.total // 1024))
            self.bar.setValue(change.done // 1024)
        self.cancel_button.setEnabled(change.state is UpdateState.DOWNLOADING)


class UpdateViews:
    """Help → Check for updates…, the notice and the progress dialog, over one service."""

    def __init__(self, window: Any) -> None:
        # The MainWindow (not imported: it imports this module's owner, a cycle).
        self.window = window
        self.service: UpdateService | None = None
        self.notice: UpdateNotice | None = None
        self.progress: UpdateProgress | None = None
        self.message_box: QMessageBox | None = None
        self._tasks = TaskSet("updates")
        self._install_task: Any = None
        self._manual = False
        self._unsubscribe: Any = None

    def start(self, service: UpdateService, *, delay_s: float = CHECK_DELAY_S) -> None:
        """Follow ``service`` and schedule the automatic check ``delay_s`` after the first paint
        (never before it: a window not yet painted waits for its ``first_painted``)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.service = service
        self._unsubscribe = service.subscribe(self._changed)

        def schedule() -> None:
            QTimer.singleShot(int(delay_s * 1000), self.window, self._check_if_due)

        if self.window._painted:
            schedule()
        else:
            self.window.first_painted.connect(schedule, Qt.ConnectionType.SingleShotConnection)

    def _check_if_due(self) -> None:
        if self.service is not None:
            self._tasks.spawn(self.service.check_if_due())

    def check_now(self) -> None:
        """Help → Check for updates…: ask the feed now and say what it answered."""
        if self.service is None:
            self._say("Victor GUI is still starting; try again in a moment.")
            return
        self._manual = True
        self._tasks.spawn(self.service.check(manual=True))

    # -- following the service ------------------------------------------------------------------

    def _changed(self, change: UpdateChanged) -> None:
        from victor_gui.services.updates import UpdateState

        state = change.state
        if state is UpdateState.AVAILABLE and change.release is not None and self._install_task is None:
            self._manual = False
            self._show_notice(change.release)
        elif state in (UpdateState.DOWNLOADING, UpdateState.BACKING_UP, UpdateState.INSTALLING):
            if self.progress is None:
                self.progress = UpdateProgress(self, self.window)
                self.progress.show()
            self.progress.show_change(change)
        elif state is UpdateState.LAUNCHED:
            self._close_progress()
            # The installer closes a running copy anyway; closing first lets the store finish
            # its writes and release its files.
            QTimer.singleShot(0, self.window, self.window.close)
        elif state is UpdateState.FAILED:
            self._close_progress()
            if self._manual or self._install_task is not None:
                self._say(change.message)
            self._manual = False
        elif state is UpdateState.UP_TO_DATE and self._manual:
            self._manual = False
            self._say(change.message)
        elif state is UpdateState.DISABLED:
            log.info("update check skipped: %s", change.message)

    def _show_notice(self, release: Release) -> None:
        if self.notice is not None:
            self.notice.close()
        self.notice = UpdateNotice(self, release, self.window)
        self.window.dialogs["update"] = self.notice
        self.notice.show()

    def _close_notice(self) -> None:
        if self.notice is not None:
            self.notice.close()
            self.notice = None

    def _close_progress(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None

    def _say(self, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "Updates", text, parent=self.window)
        box.setModal(False)  # a modal box would nest event loops under qasync
        box.show()
        self.message_box = box

    # -- the person's choices ------------------------------------------------------------------

    def install(self) -> None:
        """Download and install: the service downloads, verifies, backs up and starts it."""
        if self.service is None or self._install_task is not None:
            return
        if self.window.store is not None:  # the data folder may have moved since start-up
            self.service.use_database(self.window.store.path)
        self._close_notice()
        self._install_task = self._tasks.spawn(self._install())

    async def _install(self) -> None:
        from victor_gui.errors import UpdateError

        assert self.service is not None
        try:
            await self.service.install()
        except UpdateError:
            pass  # the FAILED change has said why
        finally:
            self._install_task = None

    def cancel(self) -> None:
        """Cancel the download (what was downloaded is removed; nothing changes)."""
        if self._install_task is not None:
            self._install_task.cancel()
        self._close_progress()

    def later(self) -> None:
        self._close_notice()
        if self.service is not None:
            self.service.later()

    def skip(self) -> None:
        self._close_notice()
        if self.service is not None:
            self._tasks.spawn(self.service.skip())

    def open_release_page(self, release: Release) -> None:
        QDesktopServices.openUrl(QUrl(release.release_url))
        self._close_notice()

    async def aclose(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self._tasks.aclose()
