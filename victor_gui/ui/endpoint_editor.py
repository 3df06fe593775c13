"""The one endpoint editor: used by the dashboard's Add/Edit and by Settings → Endpoints.

It edits every field of a hand-added :class:`~victor_gui.config.settings.Endpoint`: name, kind
(shown by display name, never the internal id), URL, failover group, API key / bearer token,
extra headers (plain ones go to settings.yaml, secret ones to the keyring), TLS trust, timeouts,
and — only when a credential would travel over plain http to a host that is neither this machine
nor on a private network — a warning naming the host with the consent box that becomes
``allow_insecure_key``.

Secrets never reach settings.yaml or the screen: the key and secret header values are written to
the OS keyring (``endpoint_key_name`` / ``endpoint_header_name``) in a worker thread, and the
editor only ever says "saved in keyring". Renaming an endpoint moves its keyring entries to the
new name. Settings are written through the app's one owner: :class:`EndpointsService` when the
dashboard opens the editor (it also re-probes at once), else :meth:`SettingsService.update`.
Validation errors stay in the dialog, which stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from victor_gui.config.secrets import KeyringStore, endpoint_header_name, endpoint_key_name
from victor_gui.config.settings import ENDPOINT_KINDS
from victor_gui.config.settings import Endpoint as EndpointSetting
from victor_gui.core.tasks import TaskSet
from victor_gui.providers.catalog import display_name
from victor_gui.providers.endpoint_access import (
    URL_CREDENTIALS_HEADER,
    has_url_credentials,
    is_loopback_or_private,
    split_url_credentials,
)
from victor_gui.servers.discovery import server_root

if TYPE_CHECKING:
    from victor_gui.services.endpoints_service import EndpointsService
    from victor_gui.services.settings_service import SettingsService

log = logging.getLogger(__name__)

RED = "#b00020"
# (display name, settings value) in the order the drop-down shows them.
KIND_CHOICES: tuple[tuple[str, str], ...] = tuple((display_name(k), k) for k in ENDPOINT_KINDS)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110 token)
# Headers that carry credentials: kept out of settings.yaml even if the user forgot to tick "secret".
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"})
FIELD_WORDS = {"name": "name", "kind": "kind", "url": "url", "group": "group",
               "connect_timeout_s": "connect timeout", "read_timeout_s": "read timeout",
               "ca_bundle": "CA bundle"}


def secret_entries(entry: EndpointSetting) -> list[str]:
    """Every keyring entry name that may hold one of ``entry``'s secrets."""
    headers = [endpoint_header_name(entry.name, h) for h in entry.secret_headers]
    return [endpoint_key_name(entry.name), *headers]


async def forget_secrets(keyring_store: Any, entry: EndpointSetting) -> None:
    """Delete ``entry``'s key and secret header values from the keyring (off the loop)."""
    def forget() -> None:
        for name in secret_entries(entry):
            keyring_store.delete_key(name)

    await asyncio.to_thread(forget)


@dataclass
class HeaderRow:
    """The widgets of one extra header: name, value, and whether the value is secret."""

    name: QLineEdit
    value: QLineEdit
    secret: QCheckBox
    remove: QPushButton
    saved: bool = False  # a secret value for this header is already in the keyring


@dataclass
class SecretPlan:
    """What the keyring must do for one save (computed on the loop, run in a thread)."""

    put: dict[str, str] = field(default_factory=dict)  # entry → value
    move: dict[str, str] = field(default_factory=dict)  # new entry → old entry (rename)
    delete_after: list[str] = field(default_factory=list)  # stale entries, after settings saved
    keep: set[str] = field(default_factory=set)  # saved entries left as they are

    def write(self, store: Any) -> None:
        for new, old in self.move.items():
            value = store.get_key(old)
            if value:
                store.set_key(new, value)
        for entry, value in self.put.items():
            store.set_key(entry, value)

    def clean(self, store: Any) -> None:
        for entry in self.delete_after:
            store.delete_key(entry)


class EndpointEditor(QDialog):
    """Add (``original`` None) or edit an endpoint. ``endpoints`` (the dashboard's service) is
    used for the write when given; otherwise ``settings`` is updated directly. ``old_url`` is
    the watched address being edited (a discovered endpoint has no ``original``)."""

    def __init__(self, parent: QWidget | None, *, settings: SettingsService,
                 endpoints: EndpointsService | None = None, keyring_store: Any = None,
                 original: EndpointSetting | None = None, old_url: str | None = None,
                 name: str = "", kind: str | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.endpoints = endpoints
        self.keyring = keyring_store if keyring_store is not None else KeyringStore()
        self.original = original
        self.old_url = old_url or (original.url if original is not None else None)
        self._tasks = TaskSet("endpoint editor")
        self.task: asyncio.Task[Any] | None = None
        self.saved_key = False  # a key for this endpoint is in the keyring
        self.clear_key = False  # the user asked to remove it on save
        self.headers: list[HeaderRow] = []
        self.setWindowTitle("Edit endpoint" if self.old_url else "Add endpoint")
        self.setMinimumWidth(560)

        outer = QVBoxLayout(self)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        outer.addLayout(form)
        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName("Endpoint name")
        self.name_edit.setPlaceholderText("Box under the desk")
        self.kind_combo = QComboBox()
        self.kind_combo.setAccessibleName("Server kind")
        for label, value in KIND_CHOICES:
            self.kind_combo.addItem(label, value)
        self.url_edit = QLineEdit()
        self.url_edit.setAccessibleName("Endpoint URL")
        self.url_edit.setPlaceholderText("http://127.0.0.1:11434")
        self.group_combo = QComboBox()
        self.group_combo.setEditable(True)
        self.group_combo.setAccessibleName("Failover group")
        groups = sorted({e.group for e in settings.settings.endpoints if e.group})
        self.group_combo.addItems(["", *groups])
        line = self.group_combo.lineEdit()
        if line is not None:
            line.setPlaceholderText("none — endpoints sharing a group fail over as one provider")
        form.addRow("Name", self.name_edit)
        form.addRow("Kind", self.kind_combo)
        form.addRow("URL", self.url_edit)
        form.addRow("Group", self.group_combo)

        # API key / bearer token: a masked field, a status, and Clear.
        key_row = QHBoxLayout()
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setAccessibleName("API key or bearer token")
        self.key_edit.setPlaceholderText("paste a key or bearer token")
        self.key_edit.setToolTip("Sent as Authorization: Bearer …; kept in the system keyring only.")
        self.key_status = QLabel("no key")
        self.key_status.setAccessibleName("Key status")
        self.clear_key_button = QPushButton("Clear")
        self.clear_key_button.setAccessibleName("Remove the saved key when saving")
        self.clear_key_button.setAutoDefault(False)
        self.clear_key_button.setEnabled(False)
        self.clear_key_button.clicked.connect(self._ask_clear_key)
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.key_status)
        key_row.addWidget(self.clear_key_button)
        form.addRow("API key", key_row)

        # Extra headers: name, value, secret.
        headers_box = QVBoxLayout()
        self.header_grid = QGridLayout()
        self.header_grid.setColumnStretch(0, 2)
        self.header_grid.setColumnStretch(1, 3)
        for col, text in enumerate(("Header", "Value", "Secret")):
            head = QLabel(text)
            head.setObjectName("columnHead")
            self.header_grid.addWidget(head, 0, col)
        headers_box.addLayout(self.header_grid)
        add_header = QPushButton("Add header")
        add_header.setAccessibleName("Add an extra header")
        add_header.setAutoDefault(False)
        add_header.clicked.connect(lambda: self.add_header_row())
        add_row = QHBoxLayout()
        add_row.addWidget(add_header)
        add_row.addStretch(1)
        headers_box.addLayout(add_row)
        form.addRow("Extra headers", headers_box)

        # TLS.
        self.verify_box = QCheckBox("Verify certificates")
        self.verify_box.setChecked(True)
        self.verify_box.setAccessibleName("Verify TLS certificates")
        ca_row = QHBoxLayout()
        self.ca_edit = QLineEdit()
        self.ca_edit.setAccessibleName("CA bundle file")
        self.ca_edit.setPlaceholderText("system certificates")
        ca_choose = QPushButton("Choose…")
        ca_choose.setAccessibleName("Choose a CA bundle file")
        ca_choose.setAutoDefault(False)
        ca_choose.clicked.connect(self.choose_ca_bundle)
        ca_row.addWidget(self.ca_edit, 1)
        ca_row.addWidget(ca_choose)
        form.addRow("TLS", self.verify_box)
        form.addRow("CA bundle", ca_row)

        # Timeouts (0 = the app's default).
        timeouts = QHBoxLayout()
        self.connect_spin = self._timeout_spin("Connect timeout", 600)
        self.read_spin = self._timeout_spin("Read timeout", 3600)
        timeouts.addWidget(QLabel("connect"))
        timeouts.addWidget(self.connect_spin)
        timeouts.addSpacing(12)
        timeouts.addWidget(QLabel("read"))
        timeouts.addWidget(self.read_spin)
        timeouts.addStretch(1)
        form.addRow("Timeouts", timeouts)

        # Clear-text key warning (hidden unless it applies).
        self.insecure_warning = QLabel()
        self.insecure_warning.setObjectName("insecureWarning")
        self.insecure_warning.setWordWrap(True)
        self.insecure_warning.setAccessibleName("Unencrypted key warning")
        self.insecure_warning.setStyleSheet(
            # Translucent amber over the window colour: reads in the light and the dark theme.
            "QLabel#insecureWarning { background: rgba(178, 106, 0, 0.16); border: 1px solid #b26a00;"
            " border-radius: 4px; padding: 6px; }")
        self.insecure_box = QCheckBox()
        self.insecure_box.setAccessibleName("Allow sending the key without encryption")
        outer.addWidget(self.insecure_warning)
        outer.addWidget(self.insecure_box)

        self.error_label = QLabel()
        self.error_label.setStyleSheet(f"color: {RED};")
        self.error_label.setWordWrap(True)
        self.error_label.setAccessibleName("Endpoint errors")
        outer.addWidget(self.error_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        outer.addWidget(self.buttons)

        self._fill(original, name, kind)
        for signal in (self.url_edit.textChanged, self.key_edit.textChanged):
            signal.connect(self._update_warning)
        self._update_warning()
        self.loading: asyncio.Task[Any] | None = (self._tasks.spawn(self.load()) if original is not None
                                                  else None)

    # -- building --------------------------------------------------------------------------------

    @staticmethod
    def _timeout_spin(name: str, limit: int) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(0, limit)
        spin.setDecimals(1)
        spin.setSuffix(" s")
        spin.setSpecialValueText("default")  # 0 means: the app's default for this kind of server
        spin.setAccessibleName(name)
        return spin

    def _fill(self, original: EndpointSetting | None, name: str, kind: str | None) -> None:
        if original is None:
            self.name_edit.setText(name)
            if self.old_url:
                self.url_edit.setText(self.old_url)
            self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(kind or "ollama")))
            return
        self.name_edit.setText(original.name)
        self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(original.kind)))
        self.url_edit.setText(original.url)
        self.group_combo.setEditText(original.group or "")
        for header, value in original.headers.items():
            self.add_header_row(header, value)
        for header in original.secret_headers:
            self.add_header_row(header, "", secret=True, saved=True)
        self.verify_box.setChecked(original.tls_verify)
        self.ca_edit.setText(original.ca_bundle or "")
        self.connect_spin.setValue(original.connect_timeout_s or 0)
        self.read_spin.setValue(original.read_timeout_s or 0)
        self.insecure_box.setChecked(original.allow_insecure_key)

    def add_header_row(self, name: str = "", value: str = "", *, secret: bool = False,
                       saved: bool = False) -> HeaderRow:
        """Add a row to the extra headers (``saved``: its secret value is in the keyring)."""
        row_index = len(self.headers) + 1
        name_edit = QLineEdit(name)
        name_edit.setPlaceholderText("X-Team")
        name_edit.setAccessibleName(f"Header {row_index} name")
        value_edit = QLineEdit(value)
        value_edit.setAccessibleName(f"Header {row_index} value")
        secret_box = QCheckBox()
        secret_box.setAccessibleName(f"Header {row_index} value is secret (kept in the keyring)")
        remove = QPushButton("Remove")
        remove.setAccessibleName(f"Remove header {row_index}")
        remove.setAutoDefault(False)
        row = HeaderRow(name_edit, value_edit, secret_box, remove, saved)

        def secret_toggled(checked: bool) -> None:
            value_edit.setEchoMode(QLineEdit.EchoMode.Password if checked else QLineEdit.EchoMode.Normal)
            value_edit.setPlaceholderText("saved — type to replace" if checked and row.saved else "")
            self._update_warning()

        secret_box.toggled.connect(secret_toggled)
        secret_box.setChecked(secret)
        secret_toggled(secret)
        name_edit.textChanged.connect(self._update_warning)
        remove.clicked.connect(lambda: self.remove_header_row(row))
        grid_row = row_index
        self.header_grid.addWidget(name_edit, grid_row, 0)
        self.header_grid.addWidget(value_edit, grid_row, 1)
        self.header_grid.addWidget(secret_box, grid_row, 2)
        self.header_grid.addWidget(remove, grid_row, 3)
        self.headers.append(row)
        self._update_warning()
        return row

    def remove_header_row(self, row: HeaderRow) -> None:
        """Drop a header (a secret one's keyring entry is deleted when the endpoint is saved)."""
        self.headers.remove(row)
        for widget in (row.name, row.value, row.secret, row.remove):
            self.header_grid.removeWidget(widget)
            widget.deleteLater()
        self._update_warning()

    # -- state -----------------------------------------------------------------------------------

    async def load(self) -> None:
        """Ask the keyring (in a thread: it can be slow) whether this endpoint has a key saved."""
        assert self.original is not None
        entry = endpoint_key_name(self.original.name)
        try:
            self.saved_key = bool(await asyncio.to_thread(self.keyring.get_key, entry))
        except Exception:  # no keyring: nothing is saved there
            log.exception("reading the endpoint key state failed")
            self.saved_key = False
        self._show_key_state()

    def _show_key_state(self) -> None:
        if self.clear_key:
            self.key_status.setText("will be removed")
        else:
            self.key_status.setText("saved in keyring" if self.saved_key else "no key")
        self.clear_key_button.setEnabled(self.saved_key and not self.clear_key)
        self._update_warning()

    def _ask_clear_key(self) -> None:
        self.clear_key = True
        self.key_edit.clear()
        self._show_key_state()

    def choose_ca_bundle(self) -> QFileDialog:
        """A file chooser for the CA bundle (opened with ``open()``: no nested event loop)."""
        dialog = QFileDialog(self, "CA bundle (PEM)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilters(["Certificates (*.pem *.crt *.cer)", "All files (*)"])
        dialog.fileSelected.connect(self.ca_edit.setText)
        dialog.open()
        self.file_dialog = dialog
        return dialog

    @property
    def carries_credentials(self) -> bool:
        """Whether a key or a secret header would be sent with this endpoint's requests."""
        key = bool(self.key_edit.text().strip()) or (self.saved_key and not self.clear_key)
        key = key or has_url_credentials(self.url_edit.text())
        return key or any(r.secret.isChecked() and r.name.text().strip() for r in self.headers)

    def insecure_host(self) -> str | None:
        """The host a credential would reach over plain http off this machine and network."""
        try:
            parts = urlsplit(self.url_edit.text().strip())
        except ValueError:
            return None
        host = parts.hostname or ""
        if parts.scheme.lower() != "http" or not host or is_loopback_or_private(host):
            return None
        return host

    def _update_warning(self, *_: Any) -> None:
        host = self.insecure_host() if self.carries_credentials else None
        if host is not None:
            self.insecure_warning.setText(
                f"⚠ {host} is reached over plain http and is neither this computer nor on a "
                f"private network: the key would cross the internet unencrypted, readable by anyone "
                f"on the way. Use https if {host} offers it.")
            self.insecure_box.setText(f"Send the key to {host} without encryption")
        self.insecure_warning.setVisible(host is not None)
        self.insecure_box.setVisible(host is not None)

    # -- saving ----------------------------------------------------------------------------------

    def submit(self) -> None:
        """Validate and save in the background (``task``); the dialog closes on success."""
        self.task = self._tasks.spawn(self._submit())

    def _headers(self, name: str) -> tuple[dict[str, str], list[str], SecretPlan, list[str]]:
        """(plain headers, secret header names, keyring plan, errors) from the header rows."""
        plain: dict[str, str] = {}
        secret: list[str] = []
        plan = SecretPlan()
        errors: list[str] = []
        seen: set[str] = set()
        old = self.original
        old_secret = {h.lower() for h in old.secret_headers} if old is not None else set()
        for row in self.headers:
            header, value = row.name.text().strip(), row.value.text()
            if not header and not value:
                continue
            if not _TOKEN.match(header):
                errors.append(f"header {header or '(no name)'!r}: not a valid header name")
                continue
            if header.lower() in seen:
                errors.append(f"header {header!r} is listed twice")
                continue
            seen.add(header.lower())
            if row.secret.isChecked():
                secret.append(header)
                entry = endpoint_header_name(name, header)
                if value.strip():
                    plan.put[entry] = value.strip()
                elif row.saved and old is not None and header.lower() in old_secret:
                    if old.name != name:  # the value is kept; only its keyring entry moves
                        plan.move[entry] = endpoint_header_name(old.name, header)
                    else:
                        plan.keep.add(entry)
                else:
                    errors.append(f"header {header!r}: give its value")
            elif header.lower() in CREDENTIAL_HEADERS:
                errors.append(f"header {header!r} carries a credential: tick Secret so it is kept "
                              "in the keyring, not in settings.yaml")
            elif not value.strip():
                errors.append(f"header {header!r}: give its value")
            else:
                plain[header] = value.strip()
        return plain, secret, plan, errors

    def _plan_key(self, name: str, plan: SecretPlan) -> None:
        entry = endpoint_key_name(name)
        typed = self.key_edit.text().strip()
        old = self.original
        if typed:
            plan.put[entry] = typed
        elif self.clear_key:
            plan.delete_after.append(entry)
        elif old is not None and old.name != name and self.saved_key:
            plan.move[entry] = endpoint_key_name(old.name)
        if old is not None:
            # Entries the saved endpoint no longer uses: the old name's, and headers now plain or gone.
            kept = {*plan.keep, *plan.put, *plan.move}
            if not self.clear_key:
                kept.add(entry)
            plan.delete_after.extend(e for e in secret_entries(old) if e not in kept)

    async def _submit(self) -> None:
        from pydantic import ValidationError

        self.error_label.clear()
        name = self.name_edit.text().strip()
        plain, secret, plan, errors = self._headers(name)
        if errors:
            self.error_label.setText("; ".join(errors))
            return
        # user:pass typed into the URL: the URL is saved without them, and they become a secret
        # Authorization header in the keyring (see split_url_credentials for why Basic).
        url, basic = split_url_credentials(self.url_edit.text().strip())
        if basic is not None:
            secret = [h for h in secret if h.lower() != URL_CREDENTIALS_HEADER.lower()]
            secret.append(URL_CREDENTIALS_HEADER)
            entry_name = endpoint_header_name(name, URL_CREDENTIALS_HEADER)
            plan.keep.discard(entry_name)
            plan.move.pop(entry_name, None)
            plan.put[entry_name] = basic
        self._plan_key(name, plan)
        host = self.insecure_host()
        fields: dict[str, Any] = {
            "group": self.group_combo.currentText().strip() or None,
            "headers": plain,
            "secret_headers": secret,
            "tls_verify": self.verify_box.isChecked(),
            "ca_bundle": self.ca_edit.text().strip() or None,
            "connect_timeout_s": self.connect_spin.value() or None,
            "read_timeout_s": self.read_spin.value() or None,
            # Consent only means something where the warning was shown.
            "allow_insecure_key": bool(host) and self.insecure_box.isChecked(),
        }
        if self.original is not None:
            fields["enabled"] = self.original.enabled
        try:
            entry = EndpointSetting(name=name, kind=self.kind_combo.currentData(),
                                    url=url, **fields)
        except ValidationError as exc:
            self.error_label.setText(_validation_text(exc))
            return
        if entry.ca_bundle and not await asyncio.to_thread(_is_file, entry.ca_bundle):
            self.error_label.setText(f"CA bundle: {entry.ca_bundle} is not a readable file")
            return
        try:
            await asyncio.to_thread(plan.write, self.keyring)
        except Exception as exc:  # StorageError (no keyring); its text never holds the value
            self.error_label.setText(f"The key could not be saved: {exc}")
            return
        try:
            await self._write(entry)
        except ValidationError as exc:
            self.error_label.setText(_validation_text(exc))
            return
        except ValueError as exc:  # a duplicate name or URL
            self.error_label.setText(str(exc))
            return
        except OSError as exc:
            self.error_label.setText(f"Could not save settings.yaml: {exc.strerror or exc}")
            return
        except Exception as exc:  # ConfigError: the file refused the write
            self.error_label.setText(f"Could not save settings.yaml: {exc}")
            return
        try:
            await asyncio.to_thread(plan.clean, self.keyring)
        except Exception:  # a stale entry left behind is harmless; the save itself worked
            log.exception("removing stale endpoint keyring entries failed")
        self.saved_entry = entry
        self.accept()

    async def _write(self, entry: EndpointSetting) -> None:
        options = entry.model_dump(exclude={"name", "kind", "url"})
        if self.endpoints is not None:
            if self.old_url:
                await self.endpoints.edit_endpoint(self.old_url, entry.name, entry.kind, entry.url, **options)
            else:
                await self.endpoints.add_endpoint(entry.name, entry.kind, entry.url, **options)
            return
        original = self.original

        def change(current: Any) -> dict[str, Any]:
            endpoints = list(current.endpoints)
            index = next((i for i, e in enumerate(endpoints)
                          if original is not None and e.name == original.name), None)
            others = [e for i, e in enumerate(endpoints) if i != index]
            for other in others:
                if server_root(other.url) == server_root(entry.url):
                    raise ValueError(f"{entry.url} is already in the list (as {other.name!r})")
                if other.name == entry.name:
                    raise ValueError(f"an endpoint named {entry.name!r} is already in the list")
            if index is None:
                endpoints.append(entry)
            else:
                endpoints[index] = entry  # keeps its place: the failover order is the list order
            return {"endpoints": endpoints}

        await self.settings.update(change)

    def done(self, result: int) -> None:
        current = None
        with contextlib.suppress(RuntimeError):  # no running loop: nothing is current
            current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:  # the save that closes the dialog must finish normally
                task.cancel()
        super().done(result)


def _is_file(path: str) -> bool:
    from pathlib import Path

    return Path(path).expanduser().is_file()


def _validation_text(exc: Any) -> str:
    parts = []
    for error in exc.errors():
        where = str(error["loc"][-1]) if error.get("loc") else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{FIELD_WORDS.get(where, where)}: {message}" if where else message)
    return "; ".join(parts)


__all__ = ["KIND_CHOICES", "EndpointEditor", "forget_secrets", "secret_entries"]
