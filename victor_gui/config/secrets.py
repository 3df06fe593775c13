"""API keys in the OS keyring, and nowhere else.

Service name ``victor_gui``, one entry per provider name (the keyring "username" is the
provider). There is deliberately no TTY or "interactive" check (Victor skips the keyring when
stdin is not a terminal, which is always the case for an app started from a launcher) and no
plaintext-file fallback: without a keyring backend, :meth:`KeyringStore.backend_status` says so
plainly and keys come from environment variables only (see :mod:`victor_gui.providers.keys`).
Every key read or written is registered with the redactor so it can never reach a log line,
an error, an export or a crash report.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING

from victor_gui.core.redact import register_secret
from victor_gui.errors import StorageError
from victor_gui.providers import keys

if TYPE_CHECKING:
    import keyring.backend

SERVICE = "victor_gui"
log = logging.getLogger(__name__)

NO_BACKEND_MESSAGE = (
    "No system keyring is available, so API keys cannot be saved. Keys are read from environment "
    "variables instead (for example OPENAI_API_KEY). On Linux, install and unlock a Secret Service "
    "provider such as GNOME Keyring or KWallet."
)


def _keyring() -> ModuleType:
    """The ``keyring`` package, imported on first use: importing it scans the installed
    packages' entry points (~11 MB of RSS), which a chat that never reads a key need not pay."""
    import keyring
    import keyring.errors

    return keyring


def _usable(backend: keyring.backend.KeyringBackend) -> bool:
    from keyring.backends import fail

    if isinstance(backend, fail.Keyring):
        return False
    children = getattr(backend, "backends", None)  # the chainer backend with nothing to chain
    if children is not None and not children:
        return False
    try:
        return float(backend.priority) > 0
    except Exception:
        return True


class KeyringStore:
    """Keys per provider in the OS keyring (implements :class:`victor_gui.providers.keys.SecretStore`)."""

    def __init__(self, service: str = SERVICE) -> None:
        self.service = service

    def backend_status(self) -> tuple[bool, str]:
        """(usable, a sentence for the settings page) about the keyring backend in use."""
        try:
            backend = _keyring().get_keyring()
        except Exception as exc:
            return False, f"{NO_BACKEND_MESSAGE} ({type(exc).__name__})"
        if not _usable(backend):
            return False, NO_BACKEND_MESSAGE
        name = getattr(backend, "name", type(backend).__name__)
        return True, f"API keys are stored in the system keyring ({name})."

    def get_key(self, provider: str) -> str | None:
        """The saved key for ``provider``, or None (also when no keyring works)."""
        kr = _keyring()
        try:
            value = kr.get_password(self.service, provider)
        except kr.errors.NoKeyringError:
            return None
        except kr.errors.KeyringError as exc:
            log.warning("keyring read for %s failed: %s", provider, type(exc).__name__)
            return None
        register_secret(value)
        return value or None

    def has_key(self, provider: str) -> bool:
        """Whether a key is saved for ``provider``."""
        return self.get_key(provider) is not None

    def set_key(self, provider: str, key: str) -> None:
        """Save ``key`` for ``provider``; :class:`StorageError` when no keyring can hold it."""
        key = key.strip()
        if not key:
            raise StorageError("An empty API key cannot be saved; use delete to remove a key.")
        register_secret(key)
        ok, message = self.backend_status()
        if not ok:
            raise StorageError(message)
        kr = _keyring()
        try:
            kr.set_password(self.service, provider, key)
        except kr.errors.KeyringError as exc:
            # The exception text of some backends echoes the value; keep only its type.
            raise StorageError(
                f"The system keyring refused to save the key ({type(exc).__name__})."
            ) from None

    def delete_key(self, provider: str) -> bool:
        """Remove ``provider``'s key; False when there was none (or no keyring)."""
        kr = _keyring()
        try:
            kr.delete_password(self.service, provider)
        except kr.errors.PasswordDeleteError:
            return False
        except kr.errors.KeyringError as exc:
            log.warning("keyring delete for %s failed: %s", provider, type(exc).__name__)
            return False
        return True


def usable_keyring() -> tuple[KeyringStore | None, str | None]:
    """(the keyring store, None) when a system keyring works, else (None, a sentence saying why).
    Never raises: a broken backend leaves keys to the environment variables. Blocking (D-Bus on
    Linux): call it from a worker thread."""
    try:
        store = KeyringStore()
        ok, message = store.backend_status()
    except Exception as exc:
        return None, f"the system keyring could not be used ({type(exc).__name__})"
    return (store, None) if ok else (None, message)


def install_keyring_store(store: KeyringStore | None = None) -> KeyringStore:
    """Make the keyring the secret store consulted by :func:`victor_gui.providers.keys.resolve_api_key`.

    Called once at app start. Returns the store (ask it for :meth:`~KeyringStore.backend_status`).
    """
    store = store or KeyringStore()
    keys.set_secret_store(store)
    ok, message = store.backend_status()
    if not ok:
        log.warning(message)
    return store


def endpoint_key_name(endpoint: str) -> str:
    """The keyring entry ("username") holding the API key / bearer token of the hand-added
    endpoint named ``endpoint`` (provider keys use the bare provider name, so they never clash)."""
    return f"endpoint:{endpoint}"


def endpoint_header_name(endpoint: str, header: str) -> str:
    """The keyring entry holding the value of ``endpoint``'s secret header ``header``."""
    return f"endpoint:{endpoint}:header:{header.lower()}"


# The keyring entry holding the ``user:pass`` of the proxy URL (settings.yaml keeps the URL
# without it; see SettingsService). Not a provider name, so it never clashes with a key.
PROXY_CREDENTIALS_NAME = "settings:proxy"
