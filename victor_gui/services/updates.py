"""Updates that cannot hurt: the one owner of update state.

:class:`UpdateService` checks the release feed (the ``updates`` settings: on/off and the feed
URL; automatically at most once a day, remembered in ``<data>/updates.json``, and never at first
paint: the window schedules :meth:`UpdateService.check_if_due` some seconds after start),
verifies what it offers (see :mod:`.update_feed`), downloads the installer with progress and
resume (:mod:`.update_download`), backs up the database and settings into
``<data>/backups/<old version>-<UTC time>/``, and starts the installer's silent upgrade
(``/S``; the NSIS installer closes the running copy) as a detached process. The window then
quits. Each step only adds files of its own; whatever fails removes them again and leaves the
installed version, its data and its settings as they were, with one sentence saying why.

On platforms without the installer (Linux, macOS) the service still checks and says what is
new; the window links the release page instead of installing.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from victor_gui import __version__
from victor_gui.config.settings import settings_path
from victor_gui.config.yaml_io import atomic_write_text
from victor_gui.core.files import copy_file
from victor_gui.core.listeners import Listeners
from victor_gui.errors import UpdateError
from victor_gui.providers.bounded import ResponseTooLarge, read_bounded
from victor_gui.services.settings_service import SettingsService
from victor_gui.services.update_download import download_installer
from victor_gui.services.update_feed import MAX_FEED_BYTES, Release, is_newer, parse_feed, shipped_public_key
from victor_gui.storage.schema import backup_to

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 24 * 3600
STATE_FILE = "updates.json"
DB_BACKUP_NAME = "conversations.sqlite3"


class UpdateState(enum.StrEnum):
    """Where the update machinery stands (one at a time)."""

    IDLE = "idle"
    DISABLED = "disabled"  # the setting is off: no automatic request is made
    CHECKING = "checking"
    UP_TO_DATE = "up_to_date"  # also: a skipped version, or an older one refused
    AVAILABLE = "available"
    DOWNLOADING = "downloading"
    BACKING_UP = "backing_up"
    INSTALLING = "installing"
    LAUNCHED = "launched"  # the installer runs; the app should quit now
    FAILED = "failed"


@dataclass(frozen=True)
class UpdateChanged:
    """What subscribers are told on every change: the state, the release on offer (if any),
    download progress in bytes and one sentence for the person (a failure's reason included)."""

    state: UpdateState
    release: Release | None = None
    done: int = 0
    total: int = 0
    message: str = ""
    error: UpdateError | None = None


@dataclass
class _Remembered:
    last_check: float = 0.0
    skipped: str | None = None


def default_launcher() -> list[str]:
    """The prefix the installer command gets: nothing on Windows (the .exe runs itself)."""
    return []


class UpdateService:
    """Checks, downloads, verifies, backs up and launches updates; emits :class:`UpdateChanged`.

    ``data_dir``: the data folder (the remembered check time and skipped version, downloads,
    backups). ``db_path``: the conversation database to back up (None: none yet).
    ``public_key``: the release key's PEM (default: the one the app ships). ``launcher``: a
    command prefix for the installer (``["wine"]``, a stand-in script in tests); given, or on
    Windows, updates install; elsewhere the release page is offered instead.
    """

    def __init__(self, client: httpx.AsyncClient, settings: SettingsService, data_dir: Path, *,
                 db_path: Path | None = None, current_version: str = __version__,
                 public_key: bytes | None = None, launcher: Sequence[str] | None = None,
                 clock: Callable[[], float] = time.time, idle_timeout_s: float = 30.0) -> None:
        self._client = client
        self._settings = settings
        self.data_dir = data_dir
        self.db_path = db_path
        self.current_version = current_version
        self._public_key = public_key
        self.can_install = launcher is not None or sys.platform == "win32"
        self._launcher = list(launcher) if launcher is not None else default_launcher()
        self._clock = clock
        self._idle_timeout_s = idle_timeout_s
        self._listeners: Listeners[[UpdateChanged]] = Listeners(log, "update listener failed")
        self._busy = asyncio.Lock()
        self.state = UpdateState.IDLE
        self.release: Release | None = None
        self.error: UpdateError | None = None
        self.message = ""
        self.progress = (0, 0)
        self.last_command: list[str] | None = None  # the installer command last started
        self.last_backup: Path | None = None
        self.requests = 0  # feed requests made (tests and the log read it)

    def use_database(self, db_path: Path) -> None:
        """The conversation database moved (Settings → Move the data folder): back it up, and
        keep downloads, backups and the remembered check in its folder from now on."""
        self.db_path = db_path
        self.data_dir = db_path.parent

    # -- observers -------------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[UpdateChanged], None]) -> Callable[[], None]:
        """Call ``listener(change)`` on every change; returns the unsubscribe function."""
        return self._listeners.add(listener)

    def _set(self, state: UpdateState, message: str = "", *, error: UpdateError | None = None) -> None:
        self.state, self.message, self.error = state, message, error
        self._listeners.notify(UpdateChanged(state, self.release, *self.progress, message, error))

    def _fail(self, error: UpdateError) -> None:
        log.warning("update: %s (%s)", error.message, error.reason)
        self._set(UpdateState.FAILED, error.message, error=error)

    # -- remembered state ------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    def _read_remembered(self) -> _Remembered:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return _Remembered()
        if not isinstance(data, dict):
            return _Remembered()
        last = data.get("last_check")
        skipped = data.get("skipped")
        return _Remembered(float(last) if isinstance(last, int | float) else 0.0,
                           skipped if isinstance(skipped, str) else None)

    def _write_remembered(self, remembered: _Remembered) -> None:
        atomic_write_text(self.state_path, json.dumps(
            {"last_check": remembered.last_check, "skipped": remembered.skipped}))

    async def _remember(self, **changes: Any) -> None:
        def update() -> None:
            remembered = self._read_remembered()
            for key, value in changes.items():
                setattr(remembered, key, value)
            self._write_remembered(remembered)

        try:
            await asyncio.to_thread(update)
        except OSError as exc:  # a read-only data folder: checked again next start, no harm
            log.warning("update: could not write %s: %s", self.state_path, exc)

    # -- checking --------------------------------------------------------------------------------

    async def check_if_due(self) -> Release | None:
        """The automatic check: nothing when the setting is off, when the last check was less
        than a day ago, or when the version on offer was skipped."""
        await asyncio.to_thread(self._sweep_installed)
        if not self._settings.settings.updates.check:
            self._set(UpdateState.DISABLED, "Checking for updates is off (Settings → Appearance & data).")
            return None
        remembered = await asyncio.to_thread(self._read_remembered)
        if 0 <= self._clock() - remembered.last_check < CHECK_INTERVAL_S:
            return None
        release = await self.check(manual=False)
        if release is not None and release.version == remembered.skipped:
            self.release = None
            self._set(UpdateState.UP_TO_DATE, f"Version {release.version} was skipped.")
            return None
        return release

    def _sweep_installed(self) -> None:
        """Remove downloaded installers of this version or older: they have done their work (the
        running app is that version now), and each is the size of the whole app."""
        folder = self.data_dir / "updates"
        if not folder.is_dir():
            return
        for entry in folder.iterdir():
            try:
                done = not is_newer(entry.name, self.current_version)
            except ValueError:
                continue  # not ours
            if done and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)

    async def check(self, *, manual: bool = True) -> Release | None:
        """Ask the feed now (Help → Check for updates asks even when automatic checks are off:
        the person asked). Returns the release offered, or None (up to date, refused, failed;
        :attr:`message` says which)."""
        if self._busy.locked():
            return self.release
        async with self._busy:
            self.release = None
            self.progress = (0, 0)
            self._set(UpdateState.CHECKING, "Checking for updates…")
            await self._remember(last_check=self._clock())
            try:
                release = await self._fetch_release()
            except UpdateError as exc:
                self._fail(exc)
                return None
            try:
                newer = is_newer(release.version, self.current_version)
                older = is_newer(self.current_version, release.version)
            except ValueError:  # a local build's version ("0.1.0+dirty"): nothing to compare with
                self._fail(UpdateError(f"This build's version {self.current_version!r} cannot be compared "
                                       "with a release; updates are off for it.", reason="version"))
                return None
            if not newer:
                if older:
                    text = (f"The feed offers {release.version}, older than this {self.current_version}; "
                            "an older version is never installed.")
                else:
                    text = f"Victor GUI {self.current_version} is up to date."
                self._set(UpdateState.UP_TO_DATE, text)
                return None
            self.release = release
            self._set(UpdateState.AVAILABLE, f"Victor GUI {release.version} is available "
                                             f"(this is {self.current_version}).")
            log.info("update: %s offered (%s check)", release.version, "manual" if manual else "automatic")
            return release

    async def _fetch_release(self) -> Release:
        url = self._settings.settings.updates.feed_url
        self.requests += 1
        try:
            async with self._client.stream("GET", url, follow_redirects=True,
                                           timeout=httpx.Timeout(20.0)) as response:
                if response.status_code != 200:
                    raise UpdateError(f"The update feed could not be read (HTTP {response.status_code}).",
                                      reason="network")
                body = await read_bounded(response, MAX_FEED_BYTES)
        except ResponseTooLarge:
            raise UpdateError("The update feed is far larger than a feed can be; it was ignored.",
                              reason="feed") from None
        except httpx.HTTPError as exc:
            raise UpdateError(f"The update feed could not be reached ({type(exc).__name__}).",
                              reason="network") from None
        key = self._public_key
        if key is None:
            try:
                key = await asyncio.to_thread(shipped_public_key)
            except OSError:
                raise UpdateError("This build ships no update signing key, so no update can be "
                                  "verified.", reason="no_key") from None
        # In a thread: the first check imports cryptography (~0.1 s), which would stall the window.
        return await asyncio.to_thread(parse_feed, body, key)

    async def skip(self) -> None:
        """Skip the version on offer: the automatic check stays quiet about it."""
        if self.release is None:
            return
        version = self.release.version
        await self._remember(skipped=version)
        self.release = None
        self._set(UpdateState.UP_TO_DATE, f"Version {version} will not be offered again.")

    def later(self) -> None:
        """Not now: the offer goes away until the next check."""
        if self.state in (UpdateState.AVAILABLE, UpdateState.FAILED):
            self._set(UpdateState.IDLE)

    # -- installing ------------------------------------------------------------------------------

    async def install(self) -> list[str]:
        """Download, verify, back up and start the silent upgrade; returns the command started.

        Raises :class:`UpdateError` (state FAILED, nothing changed) or ``CancelledError``
        (state AVAILABLE again, the download removed)."""
        release = self.release
        if release is None:
            raise UpdateError("No update is on offer; check for updates first.", reason="version")
        if not is_newer(release.version, self.current_version):
            raise UpdateError(f"{release.version} is not newer than {self.current_version}; an older "
                              "version is never installed.", reason="downgrade")
        if not self.can_install:
            raise UpdateError("On this system updates come from the release page, not from an "
                              "installer.", reason="launch")
        if self._busy.locked():
            raise UpdateError("An update is already in progress.", reason="launch")
        async with self._busy:
            folder = self.data_dir / "updates" / release.version
            backup: Path | None = None
            try:
                self.progress = (0, release.size)
                self._set(UpdateState.DOWNLOADING, f"Downloading {release.installer_name}…")
                installer = await download_installer(
                    self._client, release.installer_url, folder / release.installer_name,
                    size=release.size, sha256=release.sha256, progress=self._progress,
                    idle_timeout_s=self._idle_timeout_s)
                self._set(UpdateState.BACKING_UP, "Backing up your conversations and settings…")
                backup = await asyncio.to_thread(self._backup)
                command = [*self._launcher, str(installer), "/S"]
                self._set(UpdateState.INSTALLING, f"Starting the installer of {release.version}…")
                await asyncio.to_thread(_launch_detached, command)
            except asyncio.CancelledError:
                await asyncio.to_thread(_remove, folder, backup)
                self._set(UpdateState.AVAILABLE, "The download was cancelled; nothing changed.")
                raise
            except UpdateError as exc:
                await asyncio.to_thread(_remove, folder, backup)
                self._fail(exc)
                raise
            self.last_command = command
            self.last_backup = backup
            self._set(UpdateState.LAUNCHED, f"Installing {release.version}; Victor GUI closes now and "
                                            f"starts again when it is done. A backup is in {backup}.")
            return command

    def _progress(self, done: int, total: int) -> None:
        self.progress = (done, total)
        self._listeners.notify(UpdateChanged(self.state, self.release, done, total, self.message))

    def _backup(self) -> Path:
        """Copy the database (SQLite's online backup, safe while the app has it open) and
        settings.yaml into a new ``backups/<version>-<time>`` folder. Blocking: a worker thread."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        folder = self.data_dir / "backups" / f"{self.current_version}-{stamp}"
        n = 1
        while folder.exists():
            n += 1
            folder = folder.with_name(f"{self.current_version}-{stamp}-{n}")
        try:
            folder.mkdir(parents=True)
            if self.db_path is not None and self.db_path.exists():
                source = sqlite3.connect(self.db_path)
                try:
                    backup_to(source, folder / DB_BACKUP_NAME)
                finally:
                    source.close()
                check = sqlite3.connect(folder / DB_BACKUP_NAME)
                try:
                    ok = check.execute("PRAGMA quick_check").fetchone()[0] == "ok"
                finally:
                    check.close()
                if not ok:
                    raise sqlite3.DatabaseError("the copy does not pass SQLite's check")
            settings_file = self._settings.path or settings_path()
            if settings_file.exists():
                copy_file(settings_file, folder / settings_file.name)  # not copy2: see core.files
        except (OSError, sqlite3.Error) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise UpdateError(f"Your data could not be backed up ({exc}), so the update was not "
                              "installed.", reason="backup") from None
        return folder


def _launch_detached(command: list[str]) -> None:
    """Start ``command`` on its own, so it outlives this app (which the installer closes)."""
    kwargs: dict[str, Any] = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
                              "stderr": subprocess.DEVNULL, "close_fds": True}
    if sys.platform == "win32":
        kwargs["creationflags"] = (getattr(subprocess, "DETACHED_PROCESS", 0)
                                   | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0))
    else:
        kwargs["start_new_session"] = True
    try:
        process = subprocess.Popen(command, **kwargs)
    except OSError as exc:
        raise UpdateError(f"The installer could not be started ({exc.strerror or exc}); nothing "
                          "was changed.", reason="launch") from None
    # Reaped by a thread of its own (no zombie if this app lives on, e.g. a test run); the
    # thread is a daemon, so the app's quit never waits for the installer.
    threading.Thread(target=process.wait, name="installer-reaper", daemon=True).start()


def _remove(folder: Path, backup: Path | None) -> None:
    """Undo what a failed attempt added: its download folder and its backup."""
    shutil.rmtree(folder, ignore_errors=True)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    with_parent = folder.parent
    if with_parent.is_dir() and not any(with_parent.iterdir()):
        os.rmdir(with_parent)
