"""Application bootstrap: QApplication + qasync loop, crash handling, single instance, and the
shared HTTP client built after the first paint.

Start-up order is chosen for a fast first paint: the window is shown before anything slow
happens; after it has painted, the app warms the resolver, sets up redacted logging, creates and
loads the one :class:`~victor_gui.services.settings_service.SettingsService` (handed to the
window, the Settings dialog, the dashboard's service and the data-folder mover), builds the
one shared ``httpx.AsyncClient`` (60–170 ms, with the proxy from the settings), lets the chat
pane probe the local servers, installs the keyring as the key store and opens the conversation
store (in executors; a damaged file is moved aside and said so).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import importlib
import linecache
import logging
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from victor_gui import __version__
from victor_gui.core import app_dirs
from victor_gui.core.heap import HeapSettler
from victor_gui.ui.loop import make_loop
from victor_gui.ui.main_window import MainWindow

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMessageBox  # shown only on a bug: imported then

log = logging.getLogger("victor_gui")
_fault_file: TextIO | None = None  # kept open for the life of the process (faulthandler writes to it)


_T0 = time.perf_counter()
# The provider stack (httpx, pydantic, the protocol modules, Markdown) is about half of the
# start-up time, so it is imported after the first paint, in a worker thread, while the window
# is already on screen; the chat pane imports it lazily where it needs it.
_AFTER_PAINT_IMPORTS = (
    "httpx",
    "victor_gui.providers.types",
    "victor_gui.providers.http",
    "victor_gui.providers.registry",
    # The local servers' wire protocols, which the registry loads when it makes a chat's first
    # provider: loaded here, so that import is not on the event loop then.
    "victor_gui.providers.protocols.openai_compat",
    "victor_gui.providers.protocols.ollama",
    "victor_gui.services.provider_choices",
    "victor_gui.services.generation",
    "victor_gui.services.markdown_render",
    "victor_gui.services.chat_session",
    "victor_gui.storage",
    "victor_gui.config.settings",
    "victor_gui.config.secrets",
    "victor_gui.services.settings_service",
)


def _warm_imports() -> None:
    setup_logging()
    log.info("Victor GUI %s started", __version__)
    for name in _AFTER_PAINT_IMPORTS:
        importlib.import_module(name)
    # Parse the capability and price tables here, in this worker thread: otherwise the first
    # request would parse the YAML on the event loop (~40 ms for the capabilities alone).
    from victor_gui.providers.capabilities import load_capabilities
    from victor_gui.services.costs import load_prices_sync

    for load in (load_capabilities, load_prices_sync):
        try:
            load()
        except Exception:  # a broken table is reported where it is used; never fatal here
            log.exception("preloading %s failed", load.__name__)


def log_dir() -> Path:
    path = app_dirs.log_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def setup_logging() -> Path:
    """Log to the user log dir through :func:`victor_gui.core.logging_setup.setup_logging`
    (rotating, every line redacted) and send hard crashes (segfaults) to faulthandler.log."""
    from victor_gui.core.logging_setup import setup_logging as setup_redacted_logging

    global _fault_file
    directory = log_dir()
    setup_redacted_logging(directory)
    if _fault_file is None:
        _fault_file = open(directory / "faulthandler.log", "a", encoding="utf-8")
        faulthandler.enable(file=_fault_file, all_threads=True)  # replaces the stderr target
    return directory


def server_name() -> str:
    """The per-user name of the single-instance socket."""
    import getpass
    import hashlib

    digest = hashlib.sha256(f"victor-gui|{getpass.getuser()}".encode()).hexdigest()[:16]
    return f"victor-gui-{digest}"


class SingleInstance:
    """A second launch connects to the first, asks it to come to the front, and exits 0."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or server_name()
        self.server: Any = None  # QLocalServer once listening

    def notify_running(self, timeout_ms: int = 300) -> bool:
        """True when another instance answered (and was asked to show itself)."""
        from PySide6.QtNetwork import QLocalSocket  # not needed by --self-test, so imported here

        sock = QLocalSocket()
        sock.connectToServer(self.name)
        if not sock.waitForConnected(timeout_ms):
            return False
        sock.write(b"activate\n")
        sock.flush()
        sock.waitForBytesWritten(timeout_ms)
        sock.disconnectFromServer()
        return True

    def listen(self, on_activate: Any) -> bool:
        from PySide6.QtNetwork import QLocalServer

        QLocalServer.removeServer(self.name)  # a stale socket file left by a crash
        self.server = QLocalServer()
        if not self.server.listen(self.name):
            log.warning("single-instance socket unavailable: %s", self.server.errorString())
            return False

        def accept() -> None:
            assert self.server is not None
            while (conn := self.server.nextPendingConnection()) is not None:
                conn.readyRead.connect(on_activate)
                conn.disconnected.connect(conn.deleteLater)

        self.server.newConnection.connect(accept)
        return True

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


class CrashReporter:
    """Logs uncaught exceptions (Python and asyncio) and shows them without closing the window,
    so the chat on screen is never lost to a bug."""

    def __init__(self, window: MainWindow, *, show_dialogs: bool = True) -> None:
        self.window = window
        self.show_dialogs = show_dialogs
        self.count = 0
        self._dialog: QMessageBox | None = None

    def excepthook(self, etype: type[BaseException], value: BaseException,
                   tb: TracebackType | None) -> None:
        if issubclass(etype, KeyboardInterrupt):
            sys.__excepthook__(etype, value, tb)
            return
        from victor_gui.core.logging_setup import log_crash

        log_crash(etype, value, tb)  # redacted like every log line
        self.report("".join(traceback.format_exception(etype, value, tb)), value, logged=True)

    def loop_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if exc is not None:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        else:
            text = str(context.get("message"))
        self.report(text, exc)

    def report(self, text: str, exc: BaseException | None, *, logged: bool = False) -> None:
        self.count += 1
        if not logged:
            log.error("uncaught error:\n%s", text)
        if not self.show_dialogs:
            return
        if self._dialog is None:
            from PySide6.QtWidgets import QMessageBox

            self._dialog = QMessageBox(QMessageBox.Icon.Critical, "Victor GUI hit a bug",
                                       "Something went wrong. Your conversation is still here.",
                                       parent=self.window)
            self._dialog.setModal(False)  # a modal box would nest event loops under qasync
        from victor_gui.core.logging_setup import LOG_NAME
        from victor_gui.core.redact import redact

        # LOG_NAME is the file setup_logging writes: one name, so the dialog points at a real file.
        self._dialog.setInformativeText(redact(f"{type(exc).__name__ if exc else 'Error'}: {exc}\n\n"
                                               f"Details are in {log_dir() / LOG_NAME}"))
        self._dialog.setDetailedText(redact(text))
        self._dialog.show()


def _keyring_get(name: str) -> str | None:
    """A hand-added endpoint's key or secret header from the keyring (the pool calls it in a
    worker thread)."""
    from victor_gui.config.secrets import KeyringStore

    return KeyringStore().get_key(name)


class App:
    """The running application: window, loop, shared client and the post-paint start-up."""

    def __init__(self, qapp: QApplication, *, self_test: bool = False) -> None:
        self.qapp = qapp
        self.self_test = self_test
        self.loop = make_loop(qapp)
        self.pool: Any = None  # ProviderPool, built after the first paint
        self.window = MainWindow()
        self.crash = CrashReporter(self.window, show_dialogs=not self_test)
        self.client: Any = None  # the shared httpx.AsyncClient, built after the first paint
        self.tools: Any = None  # services.mcp_tools.McpTools, after the first paint
        self.store: Any = None  # ConversationStore, opened after the first paint
        self.store_notice: Any = None  # StoreNotice when the file was damaged and replaced
        self.settings: Any = None  # the one SettingsService, created after the first paint
        self.first_paint_ms: float | None = None
        self.exit_code = 0  # non-zero when this launch gave way to another on the same data
        self.client_ms: float | None = None
        self.ready = asyncio.Event()
        self.window.first_painted.connect(self._after_first_paint)
        # After start-up, an opened chat or a reply, the C heap's free pages go back to the OS
        # (glibc keeps them otherwise: the RSS would stay at each burst's high-water mark).
        self.heap = HeapSettler()
        self.window.chat.conversation_opened.connect(self.heap.soon)
        self.window.chat.reply_finished.connect(self.heap.soon)
        self.window.server_windows.settle = self.heap.soon  # the first-run offer, the Servers windows

    def _after_first_paint(self) -> None:
        self.first_paint_ms = (time.perf_counter() - _T0) * 1000
        if self.self_test:
            print(f"FIRST_PAINT {self.first_paint_ms:.0f} ms after import", flush=True)
        self.loop.create_task(self._post_paint())

    async def _post_paint(self) -> None:
        t = time.perf_counter()
        # Warm the resolver and the provider stack off the loop, at the same time.
        from victor_gui.ui.loop import freeze_startup_objects
        from victor_gui.ui.message_body import warm_up_rendering

        await asyncio.gather(self.loop.getaddrinfo("localhost", None, type=socket.SOCK_STREAM),
                             asyncio.to_thread(_warm_imports), warm_up_rendering(), return_exceptions=True)
        from victor_gui.providers.http import SHARED_TIMEOUTS, make_client
        from victor_gui.services.provider_choices import ProviderPool

        settings = await self._start_settings()
        # The proxy's user:pass lives in the keyring, not in settings.yaml.
        proxy = await asyncio.to_thread(self.settings.proxy_url)
        self.client = make_client(SHARED_TIMEOUTS, **({"proxy": proxy} if proxy else {}))
        self.pool = ProviderPool(self.client, secrets=_keyring_get, proxy=proxy)
        self.window.chat.pool = self.pool
        self.client_ms = (time.perf_counter() - t) * 1000
        if self.self_test:
            print(f"CLIENT_READY {self.client_ms:.0f}", flush=True)
            self.ready.set()
            QTimer.singleShot(0, self.window.close)
            return
        # The server registry (health monitor + discovery + GPU detection, in the background);
        # the chat offers its targets as soon as it exists.
        self.loop.create_task(self.window.server_windows.start(
            self.client, settings=self.settings, on_registry=self.window.chat.start, offer_first_run=True))
        await self._open_data(settings)
        self._start_updates()
        await self._start_tools()
        # PySide's import hook reads the source of every module imported after PySide6 (to see
        # whether it uses PySide6), and linecache keeps each file's lines: some MB of text that
        # nothing here needs (a traceback reads its lines again). Dropped before the freeze, so
        # later allocations reuse that memory.
        linecache.clearcache()
        freeze_startup_objects()  # start-up is done: later full collections skip all of it
        self.heap.soon()
        self.ready.set()

    def _start_updates(self) -> None:
        """The update service (issue 15): its automatic check runs some seconds after the first
        paint, at most once a day, and only when Settings → General allows it."""
        from victor_gui.services.updates import UpdateService

        if self.store is None:  # no data folder to back up into: no updates this run
            return
        service = UpdateService(self.client, self.settings, self.store.path.parent, db_path=self.store.path)
        self.window.updates.start(service)

    async def _start_tools(self) -> None:
        """The MCP servers of mcp.json and the approval rules (issue 12): offered in the chat's
        tools menu and Settings → Tools. Nothing starts a server here; each starts on first use."""
        from victor_gui.services.mcp_tools import McpTools

        tools = McpTools(self.settings, secrets=self.window.keyring_store)
        self.tools = tools
        self.window.tools = tools
        tools.subscribe(lambda host: self.window.chat.use_tools(host, tools.approvals))
        await tools.start()
        if tools.problem is not None:
            self.window.chat.status_label.setText(f"MCP servers not loaded: {tools.problem}")

    async def _start_settings(self) -> Any:
        """Create the app's one settings owner, load it, hand it to the window (which passes it
        on) and apply its theme. A bad file never stops the app: the defaults serve, and the
        chat's status line says what is wrong."""
        # The window's (made now, on the user's settings.yaml; or already, if Settings was
        # opened before this point): one owner either way.
        service = self.window.settings_service
        try:
            settings = await service.load()
        except Exception:  # an unexpected failure (not a bad file, which load() reports)
            log.exception("reading settings failed")
            settings = service.settings
        notice = service.load_notice()
        if notice is not None:
            self.window.chat.status_label.setText(notice)
        self.settings = service
        self.window.chat.settings_service = service  # issue 13: embedding model, passages per question
        if settings.theme != "system" or self._desktop_is_dark():
            self.window.apply_theme(settings.theme)
        return settings

    @staticmethod
    def _desktop_is_dark() -> bool:
        from victor_gui.ui.theme import is_dark

        return is_dark("system")

    async def _open_data(self, settings: Any) -> None:
        """The keyring as key store, then the conversation store (both off the loop)."""
        from victor_gui.config.secrets import install_keyring_store
        from victor_gui.storage import open_store
        from victor_gui.storage.location import default_data_dir

        try:
            self.window.keyring_store = await asyncio.to_thread(install_keyring_store)
            await self.window.chat.reload_providers_keeping_choice()
        except Exception:  # no keyring: keys come from the environment only
            log.exception("installing the keyring store failed")
        chosen: str | None = settings.data_dir
        folder: Path = Path(chosen) if chosen else await asyncio.to_thread(default_data_dir)
        from victor_gui.errors import StoreInUseError

        try:
            # instance=True: the data folder's lock, atomic where the local-socket guard in
            # run_app can race (two launches at the same instant both found no socket).
            self.store, self.store_notice = await open_store(folder, instance=True)
        except StoreInUseError as exc:
            self._refuse_second_instance(str(exc))
            return
        except Exception as exc:
            log.exception("opening the conversation store failed")
            self.window.chat.status_label.setText(f"Your conversations could not be opened: {exc}")
            return
        self.window.set_store(self.store)
        if self.store_notice is not None:
            self.window.show_notice(self.store_notice.message)
        # Attachment files a crash left between their copy and their message (older than a day,
        # held by no message) go; in the background, after the chats are on screen.
        self.loop.create_task(self._sweep_attachments(self.store))

    @staticmethod
    async def _sweep_attachments(store: Any) -> None:
        try:
            swept = await store.sweep_attachments()
        except Exception:  # never fatal: the files stay for the next start
            log.exception("sweeping attachment files failed")
            return
        if swept:
            log.info("removed %d attachment files no message holds", len(swept))

    def _refuse_second_instance(self, message: str) -> None:
        """Another window owns this data folder: say so, then quit with a non-zero code."""
        log.warning("%s", message)
        if sys.stderr is not None:
            print(message, file=sys.stderr, flush=True)
        self.exit_code = 3
        self.window.chat.status_label.setText(message)
        box = self.window.show_notice(message)
        box.finished.connect(self.window.close)  # type: ignore[attr-defined]

    async def shutdown(self) -> None:
        self.heap.cancel()
        if self.tools is not None:
            await self.tools.aclose()  # every MCP server's process group ends with the app
        await self.window.server_windows.aclose()
        await self.window.chat.aclose()
        await self.window.compare.aclose()
        if self.window._updates is not None:
            await self.window.updates.aclose()
        if self.window._conversations is not None:
            await self.window.conversations.aclose()
        if self.window.store is not None:
            await self.window.store.close()
        if self.pool is not None:
            await self.pool.close()
        if self.settings is not None:
            self.settings.close()
        if self.client is not None:
            await self.client.aclose()
        await self.loop.shutdown_asyncgens()

    def _install_signal_handlers(self) -> None:
        """Ctrl+C / SIGTERM close the window the normal way (shutdown closes the client and the
        streams) instead of killing the process mid-write.

        Python runs a signal handler only when it next executes bytecode, and an idle Qt loop
        runs none; ``set_wakeup_fd`` makes the signal write a byte that a QSocketNotifier sees,
        which wakes the loop and lets the handler run.
        """
        from PySide6.QtCore import QSocketNotifier

        try:
            rsock, wsock = socket.socketpair()
            rsock.setblocking(False)
            wsock.setblocking(False)
            signal.set_wakeup_fd(wsock.fileno())
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: QTimer.singleShot(0, self.window.close))
        except (ValueError, OSError, AttributeError):  # not the main thread, or not supported here
            return
        notifier = QSocketNotifier(rsock.fileno(), QSocketNotifier.Type.Read, self.window)

        def drain() -> None:
            with contextlib.suppress(OSError):
                rsock.recv(64)

        notifier.activated.connect(drain)
        self._signal_sockets = (rsock, wsock, notifier)

    def run(self) -> int:
        self._install_signal_handlers()
        sys.excepthook = self.crash.excepthook
        self.loop.set_exception_handler(self.crash.loop_handler)
        self.window.show()
        try:
            self.loop.run_forever()
            self.loop.run_until_complete(self.shutdown())
        finally:
            sys.excepthook = sys.__excepthook__
            self.loop.close()
        if self.self_test and (self.client is None or self.crash.count):
            return 1
        return self.exit_code


def run_app(argv: list[str] | None = None, *, self_test: bool = False) -> int:
    """Run the desktop app; returns the process exit code.

    ``self_test``: open the window (offscreen works), wait for the first paint, build the HTTP
    client, close, exit 0 — the packaging smoke run. It skips the single-instance guard.
    """
    argv = list(sys.argv[:1] if argv is None else argv) or ["victor-gui"]
    # Hard crashes go to stderr until the log file is set up (after the first paint, so the
    # window is not kept waiting for platformdirs and file I/O).
    if sys.stderr is not None and not faulthandler.is_enabled():
        faulthandler.enable(all_threads=True)
    # No excepthook is installed before the window exists (importing the logging set-up costs
    # ~6 ms of first paint); App.run installs the crash reporter, which logs through
    # core.logging_setup.log_crash (redacted) and keeps the window open.
    qapp = QApplication.instance() or QApplication(argv)
    assert isinstance(qapp, QApplication)
    qapp.setApplicationName("Victor GUI")
    qapp.setApplicationVersion(__version__)
    guard = SingleInstance()
    if not self_test and guard.notify_running():
        log.info("another instance is running; asked it to come to the front")
        return 0
    app = App(qapp, self_test=self_test)
    if not self_test:
        guard.listen(app.window.bring_to_front)
    try:
        return app.run()
    finally:
        guard.close()
