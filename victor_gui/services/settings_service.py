"""The one owner of the app's settings (Qt-free).

Every reader and writer — the Settings dialog, the endpoint dashboard, the data-folder mover,
the chat, the server registry, the CLI — goes through one :class:`SettingsService`. It loads
``settings.yaml`` once, hands out the current :class:`~victor_gui.config.settings.Settings`
(immutable by convention: writers never mutate it, they call :meth:`SettingsService.update`),
validates every change, writes the whole file atomically after each change, and then tells
every subscriber which top-level fields changed. Writes are serialised, and each one applies
its change to the settings as they are *then*, so two writers never overwrite each other's
fields (the defect this replaces: three in-memory copies that each saved the whole file).

A file that was not fully read (a typo'd key, one bad endpoint, or not readable at all) is never
silently replaced: the parts that could not be used are reported (:attr:`SettingsService.dropped`,
logged with file and line), and before the first save the original is copied to
``settings.yaml.bak-<time>`` (the defect this fixes: a typo'd key dropped every setting, and the
first save wrote the defaults over the custom data folder and the endpoints).

Credentials written into a URL (``http://user:pass@host``), in the file or in a change, are
moved to the keyring: an endpoint's as its secret ``Authorization`` header (see
:func:`~victor_gui.providers.endpoint_access.split_url_credentials`), the proxy's as its
``user:pass`` (:meth:`SettingsService.proxy_url` puts them back), and the file never holds them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from victor_gui.config.secrets import PROXY_CREDENTIALS_NAME, endpoint_header_name
from victor_gui.config.settings import (
    Endpoint,
    Settings,
    SettingsLoad,
    backup_settings,
    load_settings,
    save_settings,
)
from victor_gui.core.listeners import Listeners
from victor_gui.errors import ConfigError
from victor_gui.providers.endpoint_access import (
    URL_CREDENTIALS_HEADER,
    has_url_credentials,
    join_url_userinfo,
    split_url_credentials,
    split_url_userinfo,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingsChanged:
    """What a subscriber is told after a change was saved: the fields that differ, old and new."""

    fields: frozenset[str]
    old: Settings
    new: Settings

    def touches(self, *names: str) -> bool:
        """Whether any of ``names`` (top-level field names) changed."""
        return bool(self.fields.intersection(names))


Mutator = Callable[[Settings], dict[str, Any]]


class SettingsService:
    """Loads once, validates, saves atomically, emits :class:`SettingsChanged`.

    ``path`` None means the user's ``settings.yaml``; tests pass a temporary file.
    A file that could not be read leaves :attr:`load_error` set and the defaults in use; parts
    of it that were left out are in :attr:`dropped`. The file is not written until the user
    changes something, and then its original bytes are kept first (:attr:`backup_path`).
    """

    def __init__(self, path: Path | None = None, *, secrets: Any = None) -> None:
        self.path = path
        # Where URL credentials found in the file go (a KeyringStore; made when first needed).
        self._secrets = secrets
        self._settings = Settings()
        self._lock = asyncio.Lock()
        self._listeners: Listeners[[SettingsChanged]] = Listeners(log, "settings listener failed")
        self.loaded = False
        self.load_error: ConfigError | None = None
        self.migrated_from: int | None = None
        self.dropped: list[ConfigError] = []
        self.backup_path: Path | None = None
        self._backup_pending = False
        self._loading: asyncio.Future[SettingsLoad] | None = None

    @property
    def settings(self) -> Settings:
        """The settings in force now (defaults until :meth:`load` finished)."""
        return self._settings

    def subscribe(self, listener: Callable[[SettingsChanged], None]) -> Callable[[], None]:
        """Call ``listener(change)`` after every saved change; returns the unsubscribe function."""
        return self._listeners.add(listener)

    async def load(self) -> Settings:
        """Read the file (once; later calls return what is in force). Never raises for a bad
        file: see :attr:`load_error`."""
        if self.loaded:
            return self._settings
        if self._loading is None:
            self._loading = asyncio.ensure_future(load_settings(self.path))
        result = await asyncio.shield(self._loading)
        if not self.loaded and _holds_url_credentials(result.settings):
            result = await self._move_url_credentials(result)
        if not self.loaded:
            self.loaded = True
            self.load_error = result.error
            self.migrated_from = result.migrated_from
            self.dropped = list(result.dropped)
            self._backup_pending = result.lossy
            for problem in ([result.error] if result.error else []) + self.dropped:
                log.warning("settings: %s", problem)
            old, self._settings = self._settings, result.settings
            self._notify(old, self._settings)
        return self._settings

    async def update(self, changes: dict[str, Any] | Mutator | None = None, /, **fields: Any) -> Settings:
        """Apply ``changes`` (a dict of top-level fields, or a function from the current
        settings to such a dict, run under the write lock) and save. Raises ``ValueError``
        (pydantic's ValidationError) for an invalid value and :class:`ConfigError` or ``OSError``
        when the file cannot be written; in both cases nothing changes."""
        async with self._lock:
            if not self.loaded:
                await self.load()
            current = self._settings
            delta: dict[str, Any] = {}
            if callable(changes):
                delta.update(changes(current))
            elif changes:
                delta.update(changes)
            delta.update(fields)
            data = current.model_dump()
            data.update(delta)
            updated = Settings.model_validate(data)
            if _holds_url_credentials(updated):
                # A URL typed with user:pass@ (an endpoint added on the dashboard, the proxy):
                # the credentials go to the keyring, never into the file.
                updated, problems = await asyncio.to_thread(self._strip_url_credentials, updated)
                if problems:
                    raise problems[0]
            if updated.proxy != current.proxy and not _had_credentials(data.get("proxy")):
                # A new proxy typed without credentials must not inherit the old one's.
                await asyncio.to_thread(self._forget_proxy_credentials)
            if updated == current:
                return current
            if self._backup_pending:
                # The file holds more than these settings: keep it before writing over it.
                self.backup_path = await asyncio.to_thread(backup_settings, self.path)
                self._backup_pending = False
                if self.backup_path is not None:
                    log.warning("settings: the original file was kept as %s", self.backup_path)
            await save_settings(updated, self.path)
            self._settings = updated
            self.load_error = None
        self._notify(current, updated)
        return updated

    def _store(self) -> Any:
        if self._secrets is None:
            from victor_gui.config.secrets import KeyringStore

            self._secrets = KeyringStore()
        return self._secrets

    def _strip_url_credentials(self, settings: Settings) -> tuple[Settings, list[ConfigError]]:
        """``settings`` with no credentials in any URL: an endpoint's become its secret Basic
        Authorization header, the proxy's its ``user:pass`` entry, both in the keyring. Where
        the keyring refuses, the URL still loses them and a problem says so. Blocking (the
        keyring): run it in a thread."""
        store = self._store()
        where = str(self.path) if self.path else None
        problems: list[ConfigError] = []
        endpoints: list[Endpoint] = []
        for index, entry in enumerate(settings.endpoints):
            url, basic = split_url_credentials(entry.url)
            if basic is None:
                endpoints.append(entry)
                continue
            headers = [h for h in entry.secret_headers if h.lower() != URL_CREDENTIALS_HEADER.lower()]
            try:
                store.set_key(endpoint_header_name(entry.name, URL_CREDENTIALS_HEADER), basic)
            except Exception as exc:  # StorageError: no keyring; its text holds no value
                problems.append(ConfigError(
                    f"endpoints.{index}.url: the user name and password in this URL could not be "
                    f"kept in the system keyring ({exc}); they are not used: give them in the "
                    "endpoint's settings", path=where))
                endpoints.append(entry.model_copy(update={"url": url}))
                continue
            endpoints.append(entry.model_copy(
                update={"url": url, "secret_headers": [*headers, URL_CREDENTIALS_HEADER]}))
        proxy, userinfo = split_url_userinfo(settings.proxy) if settings.proxy else (None, None)
        if userinfo is not None:
            try:
                store.set_key(PROXY_CREDENTIALS_NAME, userinfo)
            except Exception as exc:
                problems.append(ConfigError(
                    f"proxy: the user name and password in the proxy URL could not be kept in the "
                    f"system keyring ({exc}); they are not used", path=where))
        return settings.model_copy(update={"endpoints": endpoints, "proxy": proxy}), problems

    async def _move_url_credentials(self, result: SettingsLoad) -> SettingsLoad:
        """Settings loaded with credentials in URLs: moved to the keyring, and the file is
        rewritten without them. Where the keyring refuses, the loss is reported and the file is
        backed up before the first save like after any lossy load."""
        settings, problems = await asyncio.to_thread(self._strip_url_credentials, result.settings)
        moved = SettingsLoad(settings, result.error, result.migrated_from, [*result.dropped, *problems])
        if not moved.lossy:
            try:
                await save_settings(settings, self.path)
                log.info("settings: credentials in URLs moved to the system keyring")
            except (OSError, ConfigError) as exc:
                log.warning("settings: could not rewrite the file without URL credentials: %s", exc)
        return moved

    def _forget_proxy_credentials(self) -> None:
        try:
            self._store().delete_key(PROXY_CREDENTIALS_NAME)
        except Exception:  # nothing saved, or no keyring: nothing to forget
            log.debug("no proxy credentials to forget")

    def proxy_url(self) -> str | None:
        """The proxy to use: the saved URL with its ``user:pass`` from the keyring put back.
        Blocking (the keyring): call it from a worker thread."""
        proxy = self._settings.proxy
        if not proxy:
            return None
        try:
            userinfo = self._store().get_key(PROXY_CREDENTIALS_NAME)
        except Exception:  # no keyring: the proxy without credentials
            userinfo = None
        return join_url_userinfo(proxy, userinfo)

    def load_notice(self) -> str | None:
        """One line for the window about a file that was not fully read (None when it was)."""
        if self.load_error is not None:
            return f"Settings not applied (defaults in use): {self.load_error}"
        if self.dropped:
            more = f" (and {len(self.dropped) - 1} more)" if len(self.dropped) > 1 else ""
            return f"Part of the settings was left out: {self.dropped[0]}{more}"
        return None

    def _notify(self, old: Settings, new: Settings) -> None:
        changed = frozenset(
            name for name in Settings.model_fields if getattr(old, name) != getattr(new, name))
        if changed:
            self._listeners.notify(SettingsChanged(changed, old, new))

    def close(self) -> None:
        """Forget every subscriber (the app is closing)."""
        self._listeners.clear()


def _had_credentials(url: Any) -> bool:
    return isinstance(url, str) and has_url_credentials(url)


def _holds_url_credentials(settings: Settings) -> bool:
    return bool(settings.proxy and has_url_credentials(settings.proxy)) or any(
        has_url_credentials(e.url) for e in settings.endpoints)


__all__ = ["SettingsChanged", "SettingsService"]
