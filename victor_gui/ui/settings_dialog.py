"""The Settings dialog: API keys, local endpoints, profiles, theme, data folder, proxy.

What it changes is saved at once (keys to the keyring, the rest to settings.yaml through the
app's one :class:`~victor_gui.services.settings_service.SettingsService`); there is no Apply
step to forget. The dialog keeps no copy of the settings: it renders the service's and
re-renders on every :class:`SettingsChanged` (an endpoint added in the dashboard shows up here
at once). Keys never reach settings.yaml or the log: they go to
:class:`~victor_gui.config.secrets.KeyringStore` only, and the dialog shows where a key comes
from, never the key. Endpoints are edited in the shared
:class:`~victor_gui.ui.endpoint_editor.EndpointEditor`. The proxy applies to the shared HTTP
client from the next start (the client is built once, after the first paint).
Opened with ``open()``: no nested event loop under qasync.

The dialog takes the services it needs (:class:`SettingsContext`), not the main window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
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

from victor_gui.core.tasks import TaskSet
from victor_gui.ui.settings_keys import KeysPage
from victor_gui.ui.theme import THEMES

if TYPE_CHECKING:
    from victor_gui.services.settings_service import SettingsChanged, SettingsService
    from victor_gui.storage.store import ConversationStore
    from victor_gui.ui.chat_pane import ChatPane
    from victor_gui.ui.endpoint_editor import EndpointEditor
    from victor_gui.ui.settings_tools import ToolsContext

log = logging.getLogger(__name__)


def _saved_field(form: QFormLayout, label: str, name: str, placeholder: str, save_name: str,
                 save: Callable[[str], object]) -> QLineEdit:
    """A form row of a text field and its Save button (``save(text)`` on click)."""
    row = QHBoxLayout()
    edit = QLineEdit()
    edit.setPlaceholderText(placeholder)
    edit.setAccessibleName(name)
    button = QPushButton("Save")
    button.setAccessibleName(save_name)
    button.clicked.connect(lambda: save(edit.text()))
    row.addWidget(edit, 1)
    row.addWidget(button)
    form.addRow(label, row)
    return edit


def _label(text: str = "", name: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    if name:
        label.setAccessibleName(name)
    return label


@dataclass
class SettingsContext:
    """What the Settings dialog works with: the one settings owner, the keyring, the chat (to
    refresh its providers after a key change), the conversation store (get, and set after a
    data-folder move) and a way to show a notice."""

    settings: SettingsService
    keyring_store: Any
    chat: ChatPane
    get_store: Callable[[], ConversationStore | None]
    set_store: Callable[[ConversationStore], None]
    notice: Callable[[str], Any]
    # Issue 12: the MCP host, the approval rules, mcp.json (None: the page says what is missing).
    tools: ToolsContext | None = None


class SettingsDialog(QDialog):
    """Settings over ``context`` (see :class:`SettingsContext`)."""

    def __init__(self, context: SettingsContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.service = context.settings
        self.editor: EndpointEditor | None = None
        self.profiles: Any = None  # victor_gui.config.profiles.ProfileSet once loaded
        self._tasks = TaskSet("settings dialog")
        self.setWindowTitle("Settings")
        self.resize(760, 540)
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Settings pages")
        layout.addWidget(self.tabs, 1)
        self.keys = KeysPage(context.keyring_store, self._tasks.spawn, self._key_changed,
                             lambda: self.profiles.providers if self.profiles is not None else {})
        self.tabs.addTab(self.keys, "API keys")
        self.tabs.addTab(self._endpoints_page(), "Endpoints")
        self.tabs.addTab(self._profiles_page(), "Profiles")
        self.tabs.addTab(self._general_page(), "Appearance && data")
        from victor_gui.ui.settings_tools import ToolsContext, ToolsPage

        self.tools = ToolsPage(context.tools or ToolsContext(), self._tasks.spawn)
        self.tabs.addTab(self.tools, "Tools")
        from victor_gui.ui.settings_documents import DocumentsPage

        self.documents = DocumentsPage(lambda: self.settings, self._update, self._tasks.spawn)
        self.tabs.addTab(self.documents, "Documents")
        from victor_gui.ui.settings_models import ModelsPage  # issue 17: model folders, downloads

        self.models_page = ModelsPage(lambda: self.settings, self._update, self._tasks.spawn)
        self.tabs.addTab(self.models_page, "Models")
        self.message = _label(name="Settings message")
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._unsubscribe: Callable[[], None] | None = self.service.subscribe(self._settings_changed)

    @property
    def settings(self) -> Any:
        """The settings in force (the service's; never a copy)."""
        return self.service.settings

    # -- pages -----------------------------------------------------------------------------------

    def _endpoints_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(_label("Servers you added by hand — on this machine, on your network, or a "
                                "gateway — besides the ones found on the usual ports. Saved in "
                                "settings.yaml; keys and secret headers in the keyring."))
        self.endpoint_list = QListWidget()
        self.endpoint_list.setAccessibleName("Configured endpoints")
        self.endpoint_list.itemDoubleClicked.connect(lambda _item: self.edit_endpoint())
        layout.addWidget(self.endpoint_list, 1)
        row = QHBoxLayout()
        add = QPushButton("Add…")
        add.setAccessibleName("Add endpoint")
        add.clicked.connect(lambda: self.add_endpoint())
        edit = QPushButton("Edit…")
        edit.setAccessibleName("Edit the selected endpoint")
        edit.clicked.connect(lambda: self.edit_endpoint())
        remove = QPushButton("Remove")
        remove.setAccessibleName("Remove the selected endpoint")
        remove.clicked.connect(lambda: self.remove_endpoint())
        for button in (add, edit, remove):
            button.setAutoDefault(False)
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
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
        self.proxy_edit = _saved_field(form, "Proxy", "HTTP and HTTPS proxy URL",
                                       "http://proxy.example:3128 (empty: none, or the environment's)",
                                       "Save the proxy", self.set_proxy)
        form.addRow("", _label("The proxy is used from the next start."))
        # What "Run with llama-server" in the model manager starts.
        self.llama_edit = _saved_field(form, "llama-server", "llama-server binary",
                                       "empty: found on PATH, in the build cache, LM Studio or Jan",
                                       "Save the llama-server path", self.set_llama_server)
        from victor_gui.ui.settings_updates import UpdateRows

        self.update_rows = UpdateRows(form, lambda: self.settings, self._update, self._tasks.spawn,
                                      lambda save: _saved_field(form, "Update feed", "Update feed URL",
                                                                "the release feed (latest.json)",
                                                                "Save the update feed URL", save))
        return page

    # -- loading ---------------------------------------------------------------------------------


    def start(self) -> asyncio.Task[None]:
        """Load settings (if the app has not yet), profiles and key states in the background."""
        return self._tasks.spawn(self.load())

    async def load(self) -> None:
        from victor_gui.config.profiles import load_profiles

        await self.service.load()  # at once when the app has loaded them already
        notice = self.service.load_notice()  # a bad file, or parts of it left out
        if notice is not None:
            self._say(notice)
        self._show_settings()
        self.profiles = await load_profiles()
        self._show_profiles()
        await self.keys.load()
        await self.tools.show_rules()
        await self.models_page.find_libraries()

    def _show_settings(self) -> None:
        s = self.settings
        self.theme_combo.setCurrentIndex(max(0, self.theme_combo.findData(s.theme)))
        if not self.proxy_edit.hasFocus():  # never overwrite what the user is typing
            self.proxy_edit.setText(s.proxy or "")
        if not self.llama_edit.hasFocus():
            self.llama_edit.setText(s.llama_server_path or "")
        store = self.context.get_store()
        self.data_label.setText(str(store.path.parent) if store is not None else "(not open yet)")
        self.update_rows.show_settings()
        self._show_endpoints()
        self.documents.show_settings()
        self.models_page.show_settings()

    def _show_endpoints(self) -> None:
        from victor_gui.providers.catalog import display_name

        row = self.endpoint_list.currentRow()
        self.endpoint_list.clear()
        for e in self.settings.endpoints:
            extra = (f" — group {e.group}" if e.group else "") + ("" if e.enabled else " (off)")
            self.endpoint_list.addItem(f"{e.name} — {display_name(e.kind)} — {e.url}{extra}")
        if 0 <= row < self.endpoint_list.count():
            self.endpoint_list.setCurrentRow(row)

    def _settings_changed(self, change: SettingsChanged) -> None:
        """Whoever changed the settings (the dashboard, a data-folder move), show them now."""
        if change.touches("endpoints"):
            self._show_endpoints()
        if change.touches("theme", "proxy", "data_dir", "llama_server_path", "updates"):
            self._show_settings()
        if change.touches("attachments", "endpoints"):
            self.documents.show_settings()
        if change.touches("model_folders"):
            self.models_page.show_settings()

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

    async def _update(self, change: Any = None, /, **fields: Any) -> bool:
        try:
            await self.service.update(change, **fields)
        except Exception as exc:  # ValidationError / ConfigError / OSError: said, the dialog stays usable
            self._say(f"Settings could not be saved: {exc}")
            return False
        return True

    # -- actions ---------------------------------------------------------------------------------

    def _key_changed(self, name: str) -> None:
        chat = self.context.chat
        if chat.pool is not None:
            chat.pool.forget(name)  # the next use builds the provider with the new key
        chat.tasks.spawn(chat.reload_providers_keeping_choice())

    def _selected(self) -> Any:
        row = self.endpoint_list.currentRow()
        endpoints = self.settings.endpoints
        return endpoints[row] if 0 <= row < len(endpoints) else None

    def add_endpoint(self) -> EndpointEditor:
        """Open the endpoint editor for a new endpoint."""
        return self._open_editor(None)

    def edit_endpoint(self) -> EndpointEditor | None:
        """Open the endpoint editor on the selected endpoint."""
        entry = self._selected()
        return self._open_editor(entry) if entry is not None else None

    def _open_editor(self, entry: Any) -> EndpointEditor:
        from victor_gui.ui.endpoint_editor import EndpointEditor

        # Through the settings service: the dashboard's service follows its change events, so
        # an endpoint added here is watched and probed at once.
        self.editor = EndpointEditor(self, settings=self.service, keyring_store=self.context.keyring_store,
                                     original=entry)
        self.editor.accepted.connect(lambda: self._say("Endpoint saved."))
        self.editor.open()
        return self.editor

    def remove_endpoint(self) -> asyncio.Task[None] | None:
        entry = self._selected()
        if entry is None:
            return None
        return self._tasks.spawn(self._remove_endpoint(entry))

    async def _remove_endpoint(self, entry: Any) -> None:
        from victor_gui.config.secrets import KeyringStore
        from victor_gui.ui.endpoint_editor import forget_secrets

        if await self._update(lambda current: {
                "endpoints": [e for e in current.endpoints if e.name != entry.name]}):
            await forget_secrets(self.context.keyring_store or KeyringStore(), entry)
            self._say(f"Removed {entry.name}.")

    def set_theme(self, mode: str) -> asyncio.Task[bool]:
        """Save ``mode``; every window applies it when the settings service says it changed."""
        return self._tasks.spawn(self._update(theme=mode))

    def set_proxy(self, url: str) -> asyncio.Task[None]:
        return self._tasks.spawn(self._set_proxy(url.strip()))

    async def _set_proxy(self, url: str) -> None:
        if url and not url.startswith(("http://", "https://", "socks5://")):
            self._say("A proxy URL starts with http://, https:// or socks5://.")
            return
        if await self._update(proxy=url or None):
            self._say("Proxy saved; it is used from the next start." if url else "Proxy removed.")

    def set_llama_server(self, path: str) -> asyncio.Task[None]:
        """Save the llama-server binary the model manager runs (empty: searched for)."""
        return self._tasks.spawn(self._set_llama_server(path.strip()))

    async def _set_llama_server(self, path: str) -> None:
        from victor_gui.services.engine_binary import chosen_binary

        if path and await asyncio.to_thread(chosen_binary, path) is None:
            self._say(f"No executable llama-server at {path}.")
            return
        if await self._update(llama_server_path=path or None):
            self._say("llama-server path saved." if path else "llama-server is searched for again.")

    def ask_move(self) -> QFileDialog:
        dialog = QFileDialog(self, "Move the data folder to")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(lambda path: self.move_data(path))
        dialog.open()
        return dialog

    def move_data(self, new_dir: str) -> asyncio.Task[None]:
        return self._tasks.spawn(self._move_data(new_dir))

    async def _move_data(self, new_dir: str) -> None:
        from victor_gui.services.data_folder import switch_data_dir

        context = self.context
        store = context.get_store()
        if store is None:
            self._say("The conversations are not open yet.")
            return
        if context.chat.running:
            self._say("Stop the reply first, then move the data folder.")
            return
        self._say("Moving your conversations…")
        switched = await switch_data_dir(store, self.service, new_dir)
        context.set_store(switched.store)
        if switched.error is not None:
            self._say(f"The data folder was not moved: {switched.error}")
        else:
            self._say(f"Your conversations are now in {switched.store.path.parent}. "
                      "The old folder was left in place; delete it when you are sure.")
        if switched.notice is not None:
            context.notice(switched.notice.message)
        self._show_settings()

    def done(self, result: int) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.tools.close_page()
        self._tasks.cancel_all()
        super().done(result)
