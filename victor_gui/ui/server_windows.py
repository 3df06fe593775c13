"""Hooks the endpoint dashboard and the model manager into the main window.

A "Servers" menu opens each view in its own window (Ctrl+Shift+E, Ctrl+Shift+M). The services
behind them are built by :meth:`ServerWindows.start`, which the app calls after the first paint:
the health monitor starts on the configured endpoints, discovery runs once in the background,
GPU detection runs off the loop. Views are created when opened and dropped when closed (they
unsubscribe then); the services live as long as the app.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QWidget

from victor_gui.ui.icons import set_icon

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import httpx

    from victor_gui.services.downloads import DownloadManager
    from victor_gui.services.engine_runner import EngineRunner
    from victor_gui.services.first_run import FirstRunService
    from victor_gui.services.model_library import ModelLibraryService
    from victor_gui.services.server_registry import ServerRegistry
    from victor_gui.services.settings_service import SettingsService

log = logging.getLogger(__name__)


def make_engine_runner(client: httpx.AsyncClient, registry: ServerRegistry,
                       log_dir: Path | None = None) -> EngineRunner:
    """The app's engine runner: registered in ``registry``, the binary from its Settings, the
    logs under the app's log folder (``log_dir`` in tests)."""
    from victor_gui.core.app_dirs import log_dir as app_log_dir
    from victor_gui.services.engine_runner import EngineRunner

    settings = registry.settings_service
    return EngineRunner(client, log_dir=log_dir or app_log_dir() / "engines", registry=registry,
                        binary_setting=lambda: settings.settings.llama_server_path)


class ServerWindows(QObject):
    """The "Servers" menu and the two views' windows for one main window."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.endpoints: ServerRegistry | None = None  # the one registry: dashboard and chat
        self._models: ModelLibraryService | None = None  # built when first asked for: see models
        self._models_client: httpx.AsyncClient | None = None
        self._hardware: Any = None  # the last GPU report, for a model manager built later
        self.downloads: DownloadManager | None = None  # issue 17: the one owner of downloads
        self.engines: EngineRunner | None = None  # llama-servers started from the app
        self._probe_client: httpx.AsyncClient | None = None
        self.views: dict[str, QWidget] = {}
        self.run_dialog: QWidget | None = None  # the last "Run…" dialog opened from downloads
        self.first_run: FirstRunService | None = None  # issue 17: the offer when no server answers
        self.first_run_panel: QWidget | None = None
        self.first_run_selected: bool | None = None  # the chat took the offer's server (None: not yet)
        self._first_run_tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        # The app's heap settler (HeapSettler.soon): a window opened or closed allocates or frees
        # much at once, and the first-run offer can open after the start-up trim has run.
        self.settle: Callable[[], object] | None = None
        menu = window.menuBar().addMenu("&Servers")
        self.endpoints_action = QAction("Endpoints…", window)
        self.endpoints_action.setShortcut(QKeySequence("Ctrl+Shift+E"))
        self.endpoints_action.triggered.connect(lambda: self.open_view("endpoints"))
        self.models_action = QAction("Models…", window)
        self.models_action.setShortcut(QKeySequence("Ctrl+Shift+M"))
        self.models_action.triggered.connect(lambda: self.open_view("models"))
        self.first_run_action = QAction("Get a model…", window)
        self.first_run_action.triggered.connect(self.open_first_run)
        set_icon(self.endpoints_action, "server", later=True)  # drawn when the menu opens
        set_icon(self.models_action, "download", later=True)
        for action in (self.endpoints_action, self.models_action, self.first_run_action):
            action.setEnabled(False)  # until start(): the services need the HTTP client
            menu.addAction(action)
            window.addAction(action)

    async def start(self, client: httpx.AsyncClient, *, settings: SettingsService | None = None,
                    on_registry: Callable[[ServerRegistry], object] | None = None,
                    engine_log_dir: Path | None = None, offer_first_run: bool = False,
                    **options: Any) -> None:
        """Build the services on the app's shared ``client`` and start watching endpoints.

        ``settings`` is the app's one settings owner (endpoints added or edited in the dashboard
        are written through it, and endpoints added anywhere else are watched at once).
        ``on_registry`` gets the server registry as soon as it exists (the chat follows it).
        ``options`` go to :class:`ServerRegistry` (tests pass ``settings_path``, ``discover``,
        ``gpu_detector``), except ``downloads_state`` (where the downloads are kept; default
        ``downloads.json`` in the data folder). ``offer_first_run``: after the first health round,
        open the first-run offer when no server works (the app; tests that want it)."""
        from victor_gui.config.secrets import KeyringStore
        from victor_gui.providers.http import PROBE_TIMEOUTS, make_client
        from victor_gui.services.downloads import DownloadManager, default_state_path
        from victor_gui.services.server_registry import ServerRegistry

        state = options.pop("downloads_state", None) or await asyncio.to_thread(default_state_path)
        # Probes want short timeouts; building a client costs ~100 ms of TLS set-up, so off the loop.
        probe_client = await asyncio.to_thread(make_client, PROBE_TIMEOUTS)
        if self._closed:  # the app quit while the client was being built
            await probe_client.aclose()
            return
        self._probe_client = probe_client
        # Probes of a configured endpoint send its key and secret headers, read from the keyring.
        options.setdefault("secrets", KeyringStore().get_key)
        self.endpoints = ServerRegistry(self._probe_client, settings=settings, **options)
        self._models_client = client
        self.downloads = DownloadManager(client, settings=settings, state_path=state)
        await self.downloads.start()  # unfinished downloads come back paused
        # The probe client: no proxy (the shared one may have one) between the app and 127.0.0.1.
        self.engines = make_engine_runner(self._probe_client, self.endpoints, engine_log_dir)
        self.endpoints.subscribe(self._share_hardware)
        from victor_gui.services.first_run import FirstRunService

        self.first_run = FirstRunService(registry=self.endpoints, runner=self.engines,
                                         downloads=self.downloads, settings=settings)
        self.first_run.subscribe(self._first_run_event)
        for action in (self.endpoints_action, self.models_action, self.first_run_action):
            action.setEnabled(True)
        if on_registry is not None:
            on_registry(self.endpoints)
        await self.endpoints.start()
        if offer_first_run:
            self._keep(self._offer_if_needed())

    @property
    def models(self) -> ModelLibraryService | None:
        """The model manager's service (None before :meth:`start`). Built on first use (the
        Models window, a test): a chat that never opens the model manager does not load it
        (its GGUF reading and fit code)."""
        if self._models is None and self._models_client is not None:
            from victor_gui.services.model_library import ModelLibraryService

            self._models = ModelLibraryService(self._models_client, gpu_detector=None)
            if self._hardware is not None:
                self._models.set_gpu_report(self._hardware)
        return self._models

    def _keep(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._first_run_tasks.add(task)
        task.add_done_callback(self._first_run_tasks.discard)

    async def _offer_if_needed(self) -> None:
        if self.first_run is not None and await self.first_run.needed() and not self._closed:
            self.open_first_run()

    def open_first_run(self) -> QWidget | None:
        """Show the first-run offer ("Get a model…"), built afresh."""
        if self.first_run is None:
            return None
        from victor_gui.ui.first_run_panel import open_first_run

        if self.first_run_panel is not None:
            self.first_run_panel.close()
        panel = open_first_run(self.first_run, self.window, open_run_dialog=self.run_model)
        panel.destroyed.connect(lambda *_: self._panel_gone())
        self.first_run_panel = panel
        self._settle()
        return panel

    def _panel_gone(self) -> None:
        self.first_run_panel = None
        self._settle()

    def _view_gone(self, which: str) -> None:
        self.views.pop(which, None)
        self._settle()

    def _settle(self) -> None:
        if self.settle is not None:
            self.settle()

    def _first_run_event(self, event: str, payload: Any) -> None:
        if event == "engine":
            self._keep(self._use_engine(payload))

    async def _use_engine(self, engine: Any) -> None:
        """The offer started ``engine``: the chat takes its server and model, the input the focus."""
        from victor_gui.ui.first_run_panel import select_engine_in_chat

        self.first_run_selected = await select_engine_in_chat(self.window, self.endpoints, engine)
        if self.first_run_selected and self.first_run_panel is not None:
            self.first_run_panel.close()

    def _share_hardware(self, event: str, payload: Any) -> None:
        # One detection serves both views: the model manager estimates against the same report.
        if event == "hardware" and payload is not None:
            self._hardware = payload
            if self._models is not None:
                self._models.set_gpu_report(payload)
            from victor_gui.services.ollama_context import default_planner

            default_planner().set_report(payload)  # the chat's Ollama num_ctx plans too

    def open_view(self, which: str) -> QWidget | None:
        """Show (or raise) the "endpoints", "models" or "downloads" window."""
        if self.endpoints is None or self._models_client is None:  # before start()
            return None
        view = self.views.get(which)
        if view is None:
            from victor_gui.ui.dashboard import Dashboard
            from victor_gui.ui.downloads_view import DownloadsView
            from victor_gui.ui.model_library_view import ModelLibraryView

            # Parented to the main window (so they do not keep the app alive) but their own windows.
            if which == "endpoints":
                view = Dashboard(self.endpoints, self.window,
                                 keyring_store=getattr(self.window, "keyring_store", None))
            elif which == "downloads" and self.downloads is not None:
                view = DownloadsView(self.downloads, self.window,
                                     run_model=self.run_model if self.engines is not None else None)
            else:
                from victor_gui.services.model_folders import ModelFolders

                models = self.models
                assert models is not None  # start() ran: its client is there
                view = ModelLibraryView(models, self.endpoints, self.window, engines=self.engines,
                                        open_downloads=lambda: self.open_view("downloads"),
                                        folders=ModelFolders(self.endpoints.settings_service))
                # The Hub browser's Download buttons queue on the one download manager.
                view.on_hub_download = self.download_from_hub
            view.setWindowFlag(Qt.WindowType.Window, True)
            view.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
            view.resize(980, 640)
            view.destroyed.connect(lambda *_: self._view_gone(which))
            self.views[which] = view
            self._settle()
        view.show()
        view.raise_()
        view.activateWindow()
        return view

    def download_from_hub(self, repo_id: str, files: list[str]) -> asyncio.Task[None] | None:
        """Queue ``files`` of ``repo_id`` (a Hub browser's Download) and show the downloads panel,
        where progress and any refusal (disk space, gated repo) appear."""
        from victor_gui.ui.downloads_view import DownloadsView

        view = self.open_view("downloads")
        if not isinstance(view, DownloadsView):
            return None
        return view.spawn(view.download(repo_id, files))

    def run_model(self, path: Path, parent: QWidget | None = None) -> QWidget | None:
        """"Run…" on a downloaded model: the same dialog as the model manager's (the plan's flags,
        an editable context, Start), parented to ``parent`` (default: the downloads panel)."""
        from victor_gui.ui.engine_panel import RunEngineDialog

        if self.engines is None:
            return None
        parent = parent or self.views.get("downloads") or self.window
        dialog = RunEngineDialog(self.engines, str(path), parent)
        dialog.open()
        self.run_dialog = dialog
        return dialog

    async def aclose(self) -> None:
        """Close the views, stop probing and pulls, close the probe client."""
        self._closed = True
        for task in list(self._first_run_tasks):
            task.cancel()
        if self.first_run_panel is not None:
            self.first_run_panel.close()
        for view in list(self.views.values()):
            view.close()
        if self.first_run is not None:
            await self.first_run.close()
        if self._models is not None:
            await self._models.close()
        if self.downloads is not None:
            await self.downloads.close()  # parts are kept; they come back paused next time
        if self.engines is not None:
            await self.engines.close()  # every engine not marked "keep running" stops with the app
        if self.endpoints is not None:
            await self.endpoints.close()
        if self._probe_client is not None:
            await self._probe_client.aclose()
