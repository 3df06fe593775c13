"""The Settings dialog: API keys, local endpoints, profiles, theme, data folder, proxy.

What it changes is saved at once (keys to the keyring, the rest to settings.yaml through
:func:`victor_gui.config.settings.save_settings`); there is no Apply step to forget. Keys never
reach settings.yaml or the log: they go to :class:`~victor_gui.config.secrets.KeyringStore`
only, and the dialog shows where a key comes from, never the key. The proxy applies to the
shared HTTP client from the next start (the client is built once, after the first paint).
Opened with ``open()``: no nested event loop under qasync.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from victor_gui.config.settings import ENDPOINT_KINDS
from victor_gui.ui.settings_keys import KeysPage
from victor_gui.ui.theme import THEMES, apply_theme

if TYPE_CHECKING:
    from victor_gui.ui.main_window import MainWindow

log = logging.getLogger(__name__)


def _label(text: str = "", name: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    if name:
        label.setAccessibleName(name)
    return label


class SettingsDialog(QDialog):
    """Settings for ``window`` (its settings, keyring store, conversation store and chat)."""

    def __init__(self, window: MainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window_ = window
        self.settings: Any = window.settings
        self.profiles: Any = None  # victor_gui.config.profiles.ProfileSet once loaded
        self._tasks: set[asyncio.Task[Any]] = set()
        self.setWindowTitle("Settings")
        self.resize(760, 540)
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Settings pages")
        layout.addWidget(self.tabs, 1)
        self.keys = KeysPage(window.keyring_store, self._spawn, self._key_changed,
                             lambda: self.profiles.providers if self.profiles is not None else {})
        self.tabs.addTab(self.keys, "API keys")
        self.tabs.addTab(self._endpoints_page(), "Endpoints")
        self.tabs.addTab(self._profiles_page(), "Profiles")
        self.tabs.addTab(self._general_page(), "Appearance && data")
        self.message = _label(name="Settings message")
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    # -- pages -----------------------------------------------------------------------------------

    def _endpoints_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(_label("Local servers you added by hand (besides the ones found on the "
                                "usual ports). Saved in settings.yaml."))
        self.endpoint_list = QListWidget()
        self.endpoint_list.setAccessibleName("Configured endpoints")
        layout.addWidget(self.endpoint_list, 1)
        form = QHBoxLayout()
        self.endpoint_name = QLineEdit()
        self.endpoint_name.setPlaceholderText("name")
        self.endpoint_name.setAccessibleName("Endpoint name")
        self.endpoint_kind = QComboBox()
        self.endpoint_kind.addItems(ENDPOINT_KINDS)
        self.endpoint_kind.setAccessibleName("Endpoint kind")
        self.endpoint_url = QLineEdit()
        self.endpoint_url.setPlaceholderText("http://127.0.0.1:11434")
        self.endpoint_url.setAccessibleName("Endpoint URL")
        add = QPushButton("Add")
        add.setAccessibleName("Add endpoint")
        add.clicked.connect(self.add_endpoint)
        remove = QPushButton("Remove")
        remove.setAccessibleName("Remove the selected endpoint")
        remove.clicked.connect(self.remove_endpoint)
        for w, stretch in ((self.endpoint_name, 1), (self.endpoint_kind, 0), (self.endpoint_url, 2),
                           (add, 0), (remove, 0)):
            form.addWidget(w, stretch)
        layout.addLayout(form)
        return page

    def _profiles_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(_label("Profiles loaded from Victor's profiles.yaml and the app's own "
                                "(read-only here; edit the files)."))
        self.profile_list = QListWidget()
        self.profile_list.setAccessibleName("Loaded profiles")
        layout.addWidget(self.profile_list, 2)
        layout.addWidget(_label("Problems found in the files:"))
        self.profile_errors = QListWidget()
        self.profile_errors.setAccessibleName("Profile file problems")
        layout.addWidget(self.profile_errors, 1)
        return page

    def _general_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.theme_combo = QComboBox()
        self.theme_combo.setAccessibleName("Theme")
        for value, text in THEMES:
            self.theme_combo.addItem(text, value)
        self.theme_combo.activated.connect(lambda _i: self.set_theme(self.theme_combo.currentData()))
        form.addRow("Theme", self.theme_combo)
        folder_row = QHBoxLayout()
        self.data_label = _label("…", "Data folder")
        move = QPushButton("Move…")
        move.setAccessibleName("Move the data folder")
        move.clicked.connect(self.ask_move)
        folder_row.addWidget(self.data_label, 1)
        folder_row.addWidget(move)
        form.addRow("Data folder", folder_row)
        proxy_row = QHBoxLayout()
        self.proxy_edit = QLineEdit()
        self.proxy_edit.setPlaceholderText("http://proxy.example:3128 (empty: none, or the environment's)")
        self.proxy_edit.setAccessibleName("HTTP and HTTPS proxy URL")
        save_proxy = QPushButton("Save")
        save_proxy.setAccessibleName("Save the proxy")
        save_proxy.clicked.connect(lambda: self.set_proxy(self.proxy_edit.text()))
        proxy_row.addWidget(self.proxy_edit, 1)
        proxy_row.addWidget(save_proxy)
        form.addRow("Proxy", proxy_row)
        form.addRow("", _label("The proxy is used from the next start."))
        return page

    # -- loading ---------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_event_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def start(self) -> asyncio.Task[None]:
        """Load settings (if the app has not yet), profiles and key states in the background."""
        return self._spawn(self.load())

    async def load(self) -> None:
        from victor_gui.config.profiles import load_profiles
        from victor_gui.config.settings import load_settings

        if self.settings is None:
            loaded = await load_settings()
            self.settings = loaded.settings
            self.window_.settings = loaded.settings
            if loaded.error is not None:
                self._say(str(loaded.error))
        self._show_settings()
        self.profiles = await load_profiles()
        self._show_profiles()
        await self.keys.load()

    def _show_settings(self) -> None:
        s = self.settings
        self.theme_combo.setCurrentIndex(max(0, self.theme_combo.findData(s.theme)))
        self.proxy_edit.setText(s.proxy or "")
        store = self.window_.store
        self.data_label.setText(str(store.path.parent) if store is not None else "(not open yet)")
        self.endpoint_list.clear()
        for e in s.endpoints:
            self.endpoint_list.addItem(f"{e.name} — {e.kind} — {e.url}" + ("" if e.enabled else " (off)"))

    def _show_profiles(self) -> None:
        from victor_gui.config.profiles import app_profiles_path, victor_profiles_path

        files = {"victor": victor_profiles_path(), "app": app_profiles_path()}
        self.profile_list.clear()
        for name, p in sorted(self.profiles.profiles.items()):
            self.profile_list.addItem(f"{name} — {p.provider} · {p.model or '(no model)'}   "
                                      f"[{files.get(p.source, p.source)}]")
        if not self.profiles.profiles:
            self.profile_list.addItem(f"No profiles in {files['victor']} or {files['app']}.")
        self.profile_errors.clear()
        for err in self.profiles.errors:
            self.profile_errors.addItem(str(err))  # "file:line: what is wrong"
        for warning in self.profiles.warnings:
            self.profile_errors.addItem(warning)

    def _say(self, text: str) -> None:
        self.message.setText(text)

    async def _save(self) -> bool:
        from victor_gui.config.settings import save_settings

        try:
            await save_settings(self.settings)
        except Exception as exc:  # ConfigError / OSError: said, the dialog stays usable
            self._say(f"Settings could not be saved: {exc}")
            return False
        return True

    # -- actions ---------------------------------------------------------------------------------

    def _key_changed(self, name: str) -> None:
        chat = self.window_.chat
        if chat.pool is not None:
            chat.pool.forget(name)  # the next use builds the provider with the new key
        chat._spawn(chat.reload_providers_keeping_choice())

    def add_endpoint(self) -> asyncio.Task[None]:
        return self._spawn(self._add_endpoint())

    async def _add_endpoint(self) -> None:
        from pydantic import ValidationError

        from victor_gui.config.settings import Endpoint

        try:
            endpoint = Endpoint(name=self.endpoint_name.text().strip(),
                                kind=self.endpoint_kind.currentText(),
                                url=self.endpoint_url.text().strip())
        except ValidationError as exc:
            self._say("That endpoint is not valid: " + "; ".join(
                f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()))
            return
        self.settings.endpoints = [*self.settings.endpoints, endpoint]
        if await self._save():
            self.endpoint_name.clear()
            self.endpoint_url.clear()
            self._say(f"Added {endpoint.name}.")
        self._show_settings()

    def remove_endpoint(self) -> asyncio.Task[None] | None:
        row = self.endpoint_list.currentRow()
        if row < 0 or row >= len(self.settings.endpoints):
            return None
        return self._spawn(self._remove_endpoint(row))

    async def _remove_endpoint(self, row: int) -> None:
        endpoints = list(self.settings.endpoints)
        gone = endpoints.pop(row)
        self.settings.endpoints = endpoints
        if await self._save():
            self._say(f"Removed {gone.name}.")
        self._show_settings()

    def set_theme(self, mode: str) -> asyncio.Task[None]:
        from victor_gui.ui.main_window import STYLE

        apply_theme(mode, self.window_, STYLE)
        self.settings.theme = mode
        return self._spawn(self._save())

    def set_proxy(self, url: str) -> asyncio.Task[None]:
        return self._spawn(self._set_proxy(url.strip()))

    async def _set_proxy(self, url: str) -> None:
        if url and not url.startswith(("http://", "https://", "socks5://")):
            self._say("A proxy URL starts with http://, https:// or socks5://.")
            return
        self.settings.proxy = url or None
        if await self._save():
            self._say("Proxy saved; it is used from the next start." if url else "Proxy removed.")

    def ask_move(self) -> QFileDialog:
        dialog = QFileDialog(self, "Move the data folder to")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(lambda path: self.move_data(path))
        dialog.open()
        return dialog

    def move_data(self, new_dir: str) -> asyncio.Task[None]:
        return self._spawn(self._move_data(new_dir))

    async def _move_data(self, new_dir: str) -> None:
        from victor_gui.services.data_folder import switch_data_dir

        window = self.window_
        if window.store is None:
            self._say("The conversations are not open yet.")
            return
        if window.chat.running:
            self._say("Stop the reply first, then move the data folder.")
            return
        self._say("Moving your conversations…")
        switched = await switch_data_dir(window.store, self.settings, new_dir)
        window.set_store(switched.store)
        if switched.error is not None:
            self._say(f"The data folder was not moved: {switched.error}")
        else:
            self._say(f"Your conversations are now in {switched.store.path.parent}. "
                      "The old folder was left in place; delete it when you are sure.")
        if switched.notice is not None:
            window.show_notice(switched.notice.message)
        self._show_settings()

    def done(self, result: int) -> None:
        for task in list(self._tasks):
            task.cancel()
        super().done(result)
