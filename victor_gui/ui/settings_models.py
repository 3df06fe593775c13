"""Settings → Models: the model folders (add, remove, which one downloads go to), the libraries
of other apps found on this machine (LM Studio, llama.cpp's cache, Hugging Face's cache) and
whether they are reused, and how many downloads run at once.

The page edits ``settings.model_folders`` through the settings service (its one owner); the
download manager and the folder scan read it from there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from victor_gui.config.settings import ModelFolderSettings, Settings
from victor_gui.services.model_folders import found_libraries

AUTOMATIC = ""


class ModelsPage(QWidget):
    """The Models page of Settings."""

    def __init__(self, settings: Callable[[], Settings], update: Callable[..., Awaitable[bool]],
                 spawn: Callable[[Awaitable[Any]], Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._update = update
        self._spawn = spawn
        layout = QVBoxLayout(self)
        intro = QLabel("Folders where GGUF models are kept. Downloads go into author/repo/file "
                       "inside the chosen one (LM Studio's layout, so LM Studio lists them too).")
        intro.setWordWrap(True)  # unwrapped, it widened the Settings dialog past its size
        layout.addWidget(intro)
        self.folder_list = QListWidget()
        self.folder_list.setAccessibleName("Model folders")
        layout.addWidget(self.folder_list, 1)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add folder…")
        self.add_button.setAccessibleName("Add a model folder")
        self.add_button.clicked.connect(self.ask_folder)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setAccessibleName("Remove the model folder")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        form = QFormLayout()
        self.target_combo = QComboBox()
        self.target_combo.setAccessibleName("Download into")
        form.addRow("Download into", self.target_combo)
        self.concurrency_spin = QSpinBox()
        self.concurrency_spin.setRange(1, 8)
        self.concurrency_spin.setAccessibleName("Downloads at once")
        form.addRow("Downloads at once", self.concurrency_spin)
        self.reuse_check = QCheckBox("Reuse what LM Studio, llama.cpp and Hugging Face downloaded")
        self.reuse_check.setToolTip("Their models are listed, and never downloaded a second time")
        self.reuse_check.setAccessibleName("Reuse other apps' models")
        form.addRow("", self.reuse_check)
        self.libraries_label = QLabel("Looking for other apps' models…")
        self.libraries_label.setWordWrap(True)
        self.libraries_label.setAccessibleName("Libraries found")
        form.addRow("Found", self.libraries_label)
        self.save_button = QPushButton("Save")
        self.save_button.setAccessibleName("Save the model folders")
        self.save_button.clicked.connect(self.save)
        form.addRow("", self.save_button)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setAccessibleName("Models settings message")
        form.addRow("", self.note)
        layout.addLayout(form)
        self.dialog: QFileDialog | None = None
        self.show_settings()

    def show_settings(self) -> None:
        """Show what the settings hold now."""
        current = self._settings().model_folders
        self.folder_list.clear()
        self.folder_list.addItems(current.folders)
        self._fill_targets(current.download_folder)
        self.concurrency_spin.setValue(current.max_downloads)
        self.reuse_check.setChecked(current.reuse_libraries)

    def _fill_targets(self, chosen: str | None) -> None:
        self.target_combo.clear()
        self.target_combo.addItem("Automatic (the first folder, else LM Studio's)", AUTOMATIC)
        for folder in self.folders():
            self.target_combo.addItem(folder, folder)
        index = self.target_combo.findData(chosen) if chosen else 0
        self.target_combo.setCurrentIndex(max(0, index))

    def folders(self) -> list[str]:
        """The folders listed on the page now."""
        return [self.folder_list.item(i).text() for i in range(self.folder_list.count())]

    async def find_libraries(self) -> None:
        """Show the other apps' libraries on this machine (looked for in a thread)."""
        libraries = await asyncio.to_thread(found_libraries)
        self.libraries_label.setText("\n".join(f"{lib.name}: {lib.path}" for lib in libraries)
                                     or "None on this machine.")

    def ask_folder(self) -> QFileDialog:
        """Choose a folder to add (the dialog is returned so a test can answer it)."""
        dialog = QFileDialog(self, "Add a model folder")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(self.add_folder)
        dialog.open()
        self.dialog = dialog
        return dialog

    def add_folder(self, path: str) -> None:
        """List ``path`` (saved with Save)."""
        if path and path not in self.folders():
            chosen = self.target_combo.currentData()
            self.folder_list.addItem(path)
            self._fill_targets(chosen)

    def remove_selected(self) -> None:
        """Take the selected folder off the list (its files stay on disk)."""
        row = self.folder_list.currentRow()
        if row >= 0:
            chosen = self.target_combo.currentData()
            self.folder_list.takeItem(row)
            self._fill_targets(chosen)

    def choice(self) -> ModelFolderSettings:
        """The page's values as settings."""
        target = self.target_combo.currentData() or None
        return ModelFolderSettings(folders=self.folders(), download_folder=target,
                                   max_downloads=self.concurrency_spin.value(),
                                   reuse_libraries=self.reuse_check.isChecked())

    def save(self) -> Any:
        """Save the page through the settings service."""
        chosen = self.choice()

        async def run() -> None:
            if await self._update(model_folders=chosen):
                self.note.setText("Saved. New downloads follow it; running ones keep their folder.")
                self.show_settings()

        return self._spawn(run())
