"""The main window: stored conversations on the left (search with Ctrl+F), the chat pane on the
right; New chat (Ctrl+N), the model picker (Ctrl+K), chat parameters, Settings (Ctrl+,), Quit
(Ctrl+Q)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QPaintEvent
from PySide6.QtWidgets import QMainWindow, QMenu, QSplitter, QVBoxLayout, QWidget

from victor_gui import __version__
from victor_gui.ui.chat_pane import ChatPane
from victor_gui.ui.icons import follow_menu, set_icon

if TYPE_CHECKING:
    from PySide6.QtWidgets import QListWidget, QPushButton

    from victor_gui.services.assistants import Assistants
    from victor_gui.services.provider_choices import ProviderPool
    from victor_gui.services.settings_service import SettingsChanged, SettingsService
    from victor_gui.storage.store import ConversationStore
    from victor_gui.ui.conversation_list import ConversationList

# The smallest window size (see bench.screenshots' narrow shot and tests/ui/test_narrow_window).
MIN_WIDTH, MIN_HEIGHT = 640, 440



class MainWindow(QMainWindow):
    """The app window. ``first_painted`` fires once, after the first paint reached the screen."""

    first_painted = Signal()

    def __init__(self, pool: ProviderPool | None = None, store: ConversationStore | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Victor GUI")
        self.resize(1100, 720)
        # Narrow-window floor (branch wrap): the chat pane beside the conversation list still
        # fits its drop-downs; message titles and stats wrap (see ui/widgets/wrap_label.py).
        self.setMinimumSize(MIN_WIDTH, MIN_HEIGHT)
        # The look (palette + one style sheet from the theme's tokens) follows the desktop until
        # the settings, read after the first paint, say otherwise (ui/theme.py).
        from victor_gui.ui.theme import apply_theme

        apply_theme("system")
        self._painted = False
        self.store: ConversationStore | None = None
        # Set by the app after the first paint (use_settings); the Settings dialog needs them.
        self._settings_service: SettingsService | None = None
        self.assistants: Assistants | None = None  # the assistants file, read when first opened
        self._unsubscribe_settings: Any = None
        self.keyring_store: Any = None  # victor_gui.config.secrets.KeyringStore
        self.tools: Any = None  # victor_gui.services.mcp_tools.McpTools (MCP host + approval rules)
        self.dialogs: dict[str, QWidget] = {}
        self._updates: Any = None  # ui.update_views.UpdateViews, made on first use

        splitter = QSplitter(Qt.Orientation.Horizontal)
        # The conversation list is built just after the first paint: it has nothing to show
        # before the store opens, and its module and widgets cost first paint. Asking for
        # ``conversations`` earlier builds it at once.
        self._side = QWidget()
        self._side.setObjectName("sidebar")  # the theme draws it as a column of its own
        self._side.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self._side_layout = QVBoxLayout(self._side)
        self._side_layout.setContentsMargins(0, 0, 0, 0)
        self._conversations: ConversationList | None = None
        splitter.addWidget(self._side)

        self.chat = ChatPane(pool)
        splitter.addWidget(self.chat)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([250, 850])
        self.setCentralWidget(splitter)
        self.splitter = splitter

        self.chat.conversation_changed.connect(self._conversation_changed)

        menu = self.menuBar().addMenu("&Chat")
        self._action(menu, "New chat", QKeySequence.StandardKey.New, self.new_chat, icon="new-chat")
        self._action(menu, "Search chats", QKeySequence.StandardKey.Find, self.focus_search, icon="search")
        self._action(menu, "Choose model", QKeySequence("Ctrl+K"), self.focus_model_picker)
        self._action(menu, "New chat with assistant…", QKeySequence("Ctrl+Shift+N"), self.open_assistants)
        self._action(menu, "Chat parameters…", QKeySequence("Ctrl+Shift+P"), self.open_chat_params,
                     icon="sliders")
        self._action(menu, "Regenerate reply", QKeySequence("Ctrl+R"), self.chat.regenerate,
                     icon="regenerate")
        menu.addSeparator()
        self._action(menu, "Settings…", QKeySequence("Ctrl+,"), self.open_settings, icon="settings")
        menu.addSeparator()
        self._action(menu, "Quit", QKeySequence("Ctrl+Q"), self.close)
        if store is not None:
            self.set_store(store)

        # ---- views added by other panels (model manager, ...) go below this line ----------------
        # -- Servers menu: endpoint dashboard and model manager (victor_gui/ui/server_windows.py) --
        from victor_gui.ui.server_windows import ServerWindows

        self.server_windows = ServerWindows(self)
        # -- end Servers menu --
        # -- compare view (branch uic): Ctrl+\ / View menu; all wiring in compare_mode ---------
        from victor_gui.ui.compare_mode import install_compare

        self.compare = install_compare(self, splitter, self.chat)
        # -- end compare view ------------------------------------------------------------------
        # ---- end of added views ----------------------------------------------------------------
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self.server_windows.first_run_action)  # issue 17: "Get a model…"
        self._action(help_menu, "Keyboard shortcuts", QKeySequence("Ctrl+/"), self.open_shortcuts,
                     icon="keyboard")
        self._action(help_menu, "Check for updates…", QKeySequence(), self.check_for_updates)
        help_menu.addSeparator()
        self._action(help_menu, "About Victor GUI", QKeySequence(), self.open_about, icon="info")
        for entry in self.menuBar().actions():  # menu icons: drawn when a menu first opens
            entry_menu = entry.menu()
            if isinstance(entry_menu, QMenu):
                follow_menu(entry_menu)
        self.chat.input.setFocus()

    def open_about(self) -> QWidget:
        """Help → About: version, data and config folders, log file, licences."""
        from victor_gui.ui.help_dialogs import AboutDialog

        folder = self.store.path.parent if self.store is not None else None
        dialog = AboutDialog(self, folder)
        dialog.show()
        self.dialogs["about"] = dialog
        return dialog

    @property
    def updates(self) -> Any:
        """Help → Check for updates…, the update notice and progress (ui/update_views.py)."""
        if self._updates is None:
            from victor_gui.ui.update_views import UpdateViews

            self._updates = UpdateViews(self)
        return self._updates

    def check_for_updates(self) -> None:
        """Help → Check for updates…"""
        self.updates.check_now()

    def open_shortcuts(self) -> QWidget:
        """Help → Keyboard shortcuts, gathered from the window's own actions."""
        from victor_gui.ui.help_dialogs import ShortcutsDialog

        dialog = ShortcutsDialog(self)
        dialog.show()
        self.dialogs["shortcuts"] = dialog
        return dialog

    def _action(self, menu: Any, text: str, key: Any, slot: Any, icon: str = "") -> QAction:
        action = QAction(text, self)
        if icon:
            set_icon(action, icon, later=True)  # drawn when its menu opens (follow_menu)
        action.setShortcut(key)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)
        return action

    # -- settings --------------------------------------------------------------------------------

    @property
    def settings_service(self) -> SettingsService:
        """The app's one settings owner. The app hands it over after the first paint
        (:meth:`use_settings`); a window used without the app makes its own on first use."""
        if self._settings_service is None:
            from victor_gui.services.settings_service import SettingsService

            self.use_settings(SettingsService())
        assert self._settings_service is not None
        return self._settings_service

    def use_settings(self, service: SettingsService) -> None:
        """Read and write settings through ``service`` and follow its theme changes."""
        if self._unsubscribe_settings is not None:
            self._unsubscribe_settings()
        self._settings_service = service
        self._unsubscribe_settings = service.subscribe(self._settings_changed)

    def _settings_changed(self, change: SettingsChanged) -> None:
        if change.touches("theme"):
            self.apply_theme(change.new.theme)

    def apply_theme(self, mode: str) -> None:
        """Apply ``mode`` (``system``/``light``/``dark``) to the whole app: palette, style
        sheet, code colours (ui/theme.py)."""
        from victor_gui.ui.theme import apply_theme

        apply_theme(mode)

    # -- conversations ---------------------------------------------------------------------------

    @property
    def conversations(self) -> ConversationList:
        """The conversation list (left side), built on first use."""
        if self._conversations is None:
            from PySide6.QtWidgets import QLabel

            from victor_gui.ui.conversation_list import ConversationList

            conversations = ConversationList()
            version = QLabel(f"Victor GUI {__version__}")
            version.setObjectName("versionLabel")
            conversations.side_layout.addWidget(version)
            self._side_layout.addWidget(conversations)
            conversations.new_requested.connect(self.new_chat)
            conversations.open_requested.connect(self._open)
            conversations.deleted.connect(self._deleted)
            conversations.status.connect(self.chat.status_label.setText)
            self._conversations = conversations
            if self.store is not None:
                conversations.set_store(self.store)
        return self._conversations

    @property
    def new_chat_button(self) -> QPushButton:
        return self.conversations.new_button

    @property
    def conversation_list(self) -> QListWidget:
        return self.conversations.list

    def set_store(self, store: ConversationStore | None) -> None:
        """Show the conversations of ``store`` (opened by the app after the first paint)."""
        self.store = store
        self.chat.set_store(store)
        if self._conversations is not None:
            self._conversations.set_store(store)
        else:
            _ = self.conversations  # built now, with the store

    def show_notice(self, text: str) -> QWidget:
        """Tell the user something about their data (a damaged store moved aside) without a
        modal box (a nested event loop under qasync)."""
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox(QMessageBox.Icon.Warning, "Victor GUI", text, parent=self)
        box.setModal(False)
        box.show()
        self.dialogs["notice"] = box
        return box

    def new_chat(self) -> None:
        self.chat.new_chat()
        self.conversations.set_current(None)
        self.conversations.list.clearSelection()

    def _open(self, conversation_id: int, message_id: int) -> None:
        hit = None if message_id < 0 else message_id
        self.chat.tasks.spawn(self.chat.open_conversation(conversation_id, hit))

    def _deleted(self, conversation_id: int) -> None:
        if self.chat.conversation_id == conversation_id:
            self.chat.new_chat()

    def _conversation_changed(self, conversation_id: int) -> None:
        self.conversations.set_current(conversation_id)
        if not self.conversations.search.text().strip():
            self.conversations.refresh()

    def focus_search(self) -> None:
        self.conversations.search.setFocus()
        self.conversations.search.selectAll()

    def focus_model_picker(self) -> None:
        """Ctrl+K: focus the model drop-down and open its list (in compare: the focused pane's)."""
        if self.compare.isVisible():
            self.compare.open_model_list()
            return
        self.chat.model_combo.setFocus()
        self.chat.model_combo.showPopup()

    # -- dialogs ---------------------------------------------------------------------------------

    def open_chat_params(self) -> QWidget:
        """The chat's system prompt and parameters (stored with the conversation)."""
        from victor_gui.ui.chat_params_dialog import ChatParamsDialog

        dialog = ChatParamsDialog(self.chat, self)
        self.dialogs["chat_params"] = dialog
        dialog.open()
        self.chat.tasks.spawn(dialog.load())
        return dialog

    def open_assistants(self) -> QWidget:
        """The assistant picker: a preset for a new chat or this one (services/assistants.py)."""
        from victor_gui.services.assistants import Assistants
        from victor_gui.ui.assistant_picker import AssistantPicker

        if self.assistants is None:
            # Beside settings.yaml (the tests' settings file puts it in their folder).
            path = self.settings_service.path
            self.assistants = Assistants(path.with_name("assistants.yaml") if path else None)
        dialog = AssistantPicker(self.chat, self.assistants, self)
        self.dialogs["assistants"] = dialog
        dialog.open()
        self.chat.tasks.spawn(dialog.load())
        return dialog

    def open_settings(self) -> QWidget:
        """The Settings dialog: keys, endpoints, profiles, theme, data folder, proxy."""
        from victor_gui.ui.settings_dialog import SettingsContext, SettingsDialog

        context = SettingsContext(self.settings_service, self.keyring_store, self.chat,
                                  lambda: self.store, self.set_store, self.show_notice,
                                  tools=self._tools_context())
        dialog = SettingsDialog(context, self)
        self.dialogs["settings"] = dialog
        dialog.open()
        dialog.start()
        return dialog

    def _tools_context(self) -> Any:
        """What Settings → Tools works with: the MCP servers, the approval rules, mcp.json."""
        from victor_gui.ui.settings_tools import ToolsContext

        tools = self.tools
        if tools is None:  # before the first paint's work is done: the page says so
            return None
        return ToolsContext(tools.host, tools.approvals, tools.config_path, tools.import_file)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()
            QTimer.singleShot(0, self, lambda: self.conversations)

    def bring_to_front(self) -> None:
        """Show and raise the window (a second launch asks for this)."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()
