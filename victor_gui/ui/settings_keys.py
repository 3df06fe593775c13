"""Settings → API keys: one row per cloud provider, keys saved to the OS keyring.

A key is never shown: a row says where the key in use comes from ("saved in keyring", "from
env OPENAI_API_KEY") and offers a masked field to paste a new one. Keys go to the keyring only
(:meth:`KeyringStore.set_key`), never to settings.yaml or the log. Test connection builds the
provider (with the key typed, else the one in use) and asks it for its models with a short
timeout, then shows the typed error's words on failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)

TEST_LIMIT_S = 10.0


def keyring_help(platform: str | None = None) -> str:
    """How to get a system keyring on this OS (Linux: a Secret Service; the others have one)."""
    import sys

    platform = platform or sys.platform
    if platform == "darwin":
        return ("macOS has a keychain built in: if it is locked or Victor GUI was refused access, "
                "unlock it in Keychain Access and restart Victor GUI.")
    if platform.startswith("win"):
        return ("Windows has Credential Manager built in: sign in to a normal user session "
                "(not a service account) and restart Victor GUI.")
    return ("To save keys here, install and unlock a Secret Service keyring — GNOME Keyring "
            "(gnome-keyring), or KWallet with its Secret Service enabled — then restart Victor GUI.")


def no_keyring_sentence(specs: list[Any], platform: str | None = None) -> str:
    """The one paragraph the keys page shows when no system keyring exists: which environment
    variable each provider reads, and how to get a keyring on this OS."""
    import sys

    readers = "; ".join(f"{s.display_name}: {' or '.join(s.key_env_vars)}" for s in specs)
    # Windows has no ~/.profile: its per-user variables are set in a Start-menu panel.
    where = ("in \"Edit environment variables for your account\" from the Start menu"
             if (platform or sys.platform).startswith("win") else "in ~/.profile")
    return ("No system keyring is available, so keys cannot be saved here. Each provider reads "
            f"its key from an environment variable instead — {readers}. Set it where Victor GUI is "
            f"started (for example {where}) and restart; a key pasted below can still be "
            f"tested. {keyring_help(platform)}")


@dataclass
class KeyRow:
    """The widgets of one provider's row."""

    name: str
    display_name: str
    status: QLabel
    edit: QLineEdit
    save: QPushButton
    remove: QPushButton
    test: QPushButton
    result: QLabel


def key_status(source: str | None) -> str:
    """Where the key in use comes from, in words (never the key)."""
    if source == "keyring":
        return "saved in keyring"
    if source and source.startswith("env:"):
        return f"from env {source[4:]}"
    return "no key"


class KeysPage(QWidget):
    """The API keys tab. ``spawn`` runs a coroutine on the app loop; ``changed(name)`` is called
    after a key was saved or removed (the chat refreshes its drop-down and forgets the old
    provider instance); ``providers`` gives the profiles' ``providers:`` settings (base URLs)."""

    def __init__(self, keyring_store: Any, spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
                 changed: Callable[[str], None], providers: Callable[[], dict[str, Any]],
                 parent: QWidget | None = None) -> None:
        from victor_gui.providers.catalog import SPECS

        super().__init__(parent)
        self.keyring_store = keyring_store
        self._spawn = spawn
        self._changed = changed
        self._providers = providers
        layout = QVBoxLayout(self)
        self.backend_label = QLabel("Checking the system keyring…")
        self.backend_label.setWordWrap(True)
        self.backend_label.setAccessibleName("Keyring status")
        layout.addWidget(self.backend_label)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        inner = QWidget()
        grid = QGridLayout(inner)
        grid.setColumnStretch(2, 1)
        self.rows: dict[str, KeyRow] = {}
        specs = sorted((s for s in SPECS if not s.is_local and s.key_env_vars),
                       key=lambda s: s.display_name.lower())
        self.specs = specs
        self.keyring_ok: bool | None = None  # None until load() asked the keyring
        for r, spec in enumerate(specs):
            row = self._make_row(spec.name, spec.display_name)
            grid.addWidget(QLabel(spec.display_name), 2 * r, 0)
            grid.addWidget(row.status, 2 * r, 1)
            grid.addWidget(row.edit, 2 * r, 2)
            grid.addWidget(row.save, 2 * r, 3)
            grid.addWidget(row.remove, 2 * r, 4)
            grid.addWidget(row.test, 2 * r, 5)
            grid.addWidget(row.result, 2 * r + 1, 1, 1, 5)
            self.rows[spec.name] = row
        scroll.setWidget(inner)
        layout.addWidget(scroll, 1)

    def _make_row(self, name: str, display: str) -> KeyRow:
        status = QLabel("…")
        status.setAccessibleName(f"{display} key status")
        edit = QLineEdit()
        edit.setEchoMode(QLineEdit.EchoMode.Password)
        edit.setPlaceholderText("paste a new key")
        edit.setAccessibleName(f"{display} API key")
        save = QPushButton("Save")
        save.setAccessibleName(f"Save the {display} key in the keyring")
        remove = QPushButton("Remove")
        remove.setAccessibleName(f"Remove the saved {display} key")
        test = QPushButton("Test")
        test.setAccessibleName(f"Test the connection to {display}")
        for button in (save, remove, test):
            button.setAutoDefault(False)  # Enter in a key field saves that row, nothing else
        result = QLabel()
        result.setWordWrap(True)
        result.setAccessibleName(f"{display} test result")
        result.hide()
        save.clicked.connect(lambda: self.save(name))
        remove.clicked.connect(lambda: self.remove(name))
        test.clicked.connect(lambda: self.test(name))
        edit.returnPressed.connect(lambda: self.save(name))
        return KeyRow(name, display, status, edit, save, remove, test, result)

    # -- state -----------------------------------------------------------------------------------

    async def load(self) -> None:
        """Ask the keyring (slow on some desktops: in a thread) and fill every row's status."""
        from victor_gui.providers.catalog import find_spec
        from victor_gui.providers.keys import resolve_api_key

        if self.keyring_store is not None:
            ok, message = await asyncio.to_thread(self.keyring_store.backend_status)
            if not ok:  # said once, here: the variable each provider reads, and how to get a keyring
                message = no_keyring_sentence(self.specs)
        else:
            ok, message = False, "The system keyring is not available yet."
        self.keyring_ok = ok
        self.backend_label.setText(message)
        for row in self.rows.values():
            # Without a keyring a key can still be pasted and tested, just not saved.
            row.save.setEnabled(ok)

        def sources() -> dict[str, str | None]:
            out: dict[str, str | None] = {}
            for name in self.rows:
                spec = find_spec(name)
                out[name] = resolve_api_key(spec)[1] if spec is not None else None
            return out

        for name, source in (await asyncio.to_thread(sources)).items():
            self.rows[name].status.setText(key_status(source))
            self.rows[name].remove.setEnabled(source == "keyring")

    def _say(self, name: str, text: str) -> None:
        row = self.rows[name]
        row.result.setText(text)
        row.result.setVisible(bool(text))

    # -- actions ---------------------------------------------------------------------------------

    def save(self, name: str) -> asyncio.Task[None]:
        return self._spawn(self._save(name))

    def remove(self, name: str) -> asyncio.Task[None]:
        return self._spawn(self._remove(name))

    def test(self, name: str) -> asyncio.Task[None]:
        return self._spawn(self.test_connection(name))

    def _no_key_to_test(self, name: str) -> str:
        from victor_gui.providers.catalog import find_spec

        spec = find_spec(name)
        names = " or ".join(spec.key_env_vars) if spec is not None else "its variable"
        return f"No key to test: paste one in the field and press Test, or set {names} and restart."

    async def _save(self, name: str) -> None:
        row = self.rows[name]
        key = row.edit.text().strip()
        if not key or self.keyring_store is None:
            return
        try:
            await asyncio.to_thread(self.keyring_store.set_key, name, key)
        except Exception as exc:  # StorageError: no keyring, or it refused (message has no key)
            self._say(name, str(exc))
            return
        row.edit.clear()
        self._say(name, "Saved in the keyring.")
        await self.load()
        self._changed(name)

    async def _remove(self, name: str) -> None:
        if self.keyring_store is None:
            return
        removed = await asyncio.to_thread(self.keyring_store.delete_key, name)
        self._say(name, "Removed from the keyring." if removed else "No key was saved.")
        await self.load()
        self._changed(name)

    async def test_connection(self, name: str) -> str:
        """Create the provider and list its models (short timeout); returns the sentence shown."""
        from victor_gui.errors import MissingAPIKeyError, ProviderAuthError, ProviderError
        from victor_gui.providers.http import PROBE_TIMEOUTS, make_client
        from victor_gui.providers.registry import ProviderRegistry
        from victor_gui.services.fallback import provider_options
        from victor_gui.ui.error_text import describe_error

        row = self.rows[name]
        row.test.setEnabled(False)
        self._say(name, f"Asking {row.display_name}…")
        typed = row.edit.text().strip() or None
        client = make_client(PROBE_TIMEOUTS)
        provider = None
        try:
            options = provider_options(name, {}, self._providers())
            provider = ProviderRegistry.create(name, api_key=typed, http_client=client, max_retries=0,
                                               **options)
            models = await asyncio.wait_for(provider.list_models(), TEST_LIMIT_S)
            text = f"Connected: {len(models)} model(s) available."
        # The generic sentences point at "Settings → API keys": this page. Say what to do here.
        except MissingAPIKeyError:
            text = self._no_key_to_test(name)
        except ProviderAuthError as exc:
            detail = getattr(exc, "message", None) or str(exc)
            text = (f"{row.display_name} refused the key: check that it is the whole key, for this "
                    f"provider, and not revoked." + (f" ({detail})" if detail else ""))
        except ProviderError as exc:
            text = describe_error(exc)
        except TimeoutError:
            text = f"{row.display_name} did not answer within {TEST_LIMIT_S:.0f} s."
        except Exception as exc:  # a provider bug: say so rather than crash the dialog
            log.exception("test connection to %s failed", name)
            text = f"The test failed: {type(exc).__name__}"
        finally:
            if provider is not None:
                await provider.close()
            await client.aclose()
            row.test.setEnabled(True)
        self._say(name, text)
        return text
