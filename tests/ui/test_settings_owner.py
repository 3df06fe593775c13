"""One settings owner in the window, the shared endpoint editor, and keys without a keyring.

Real widgets (offscreen), a real settings.yaml in tmp_path read back from disk, llama.cpp
simulators on 127.0.0.1 for the endpoints, and the in-memory keyring backend.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.config.memory_keyring import MemoryKeyring, no_backend, use_backend
from tests.servers import llamacpp
from tests.servers.base import SimServer
from tests.ui.conftest import wait_until
from victor_gui.config.secrets import SERVICE, KeyringStore
from victor_gui.config.settings import load_settings
from victor_gui.services.settings_service import SettingsService
from victor_gui.sizing.hardware import GpuReport, RamInfo
from victor_gui.ui.endpoint_editor import EndpointEditor
from victor_gui.ui.settings_keys import no_keyring_sentence
from victor_gui.ui.theme import DARK, stylesheet

pytestmark = pytest.mark.usefixtures("keep_running_when_closed")

TOKEN = "tok-gateway-0123456789SECRET"
HEADER_SECRET = "hdr-value-9876543210SECRET"


def url(server: SimServer) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
def sims() -> Iterator[list[SimServer]]:
    servers = [llamacpp.make_server(), llamacpp.make_server()]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "cfg" / "settings.yaml"


async def _start_servers(window, pool, settings_file: Path):  # type: ignore[no-untyped-def]
    """The window wired as the app wires it: one SettingsService for everything."""
    service = SettingsService(settings_file)
    await service.load()
    window.use_settings(service)

    async def detect() -> GpuReport:
        return GpuReport(ram=RamInfo(8 << 30, 4 << 30))

    # A long probe interval: a new endpoint that shows "up" was probed at once, not by the timer.
    await window.server_windows.start(pool.http_client, settings=service, discover=False,
                                      gpu_detector=detect, interval=60.0, tick_s=60.0)
    return service


async def _save(editor: EndpointEditor) -> None:
    editor.submit()
    assert editor.task is not None
    await editor.task
    assert not editor.isVisible(), editor.error_label.text()


async def _saved(settings_file: Path):  # type: ignore[no-untyped-def]
    return (await load_settings(settings_file)).settings


async def test_dashboard_and_settings_endpoints_both_kept_and_shown_in_both_views(
        qtbot, clean_env, window, pool, sims, settings_file) -> None:
    with use_backend(MemoryKeyring()):
        window.keyring_store = KeyringStore()
        service = await _start_servers(window, pool, settings_file)
        views = window.server_windows
        dash = views.open_view("endpoints")
        settings = window.open_settings()
        await wait_until(lambda: settings.keys.keyring_ok is not None)
        assert settings.endpoint_list.count() == 0

        # 1. Added in the dashboard: the open Settings list shows it at once.
        editor = dash.open_endpoint_dialog(None)
        editor.name_edit.setText("Desk")
        editor.kind_combo.setCurrentIndex(editor.kind_combo.findText("llama.cpp"))
        editor.url_edit.setText(url(sims[0]))
        await _save(editor)
        await wait_until(lambda: settings.endpoint_list.count() == 1)
        assert settings.endpoint_list.item(0).text() == f"Desk — llama.cpp — {url(sims[0])}"

        # 2. Added in Settings → Endpoints: the first one is kept, and the dashboard watches and
        #    probes the new one at once (the probe timer is a minute away).
        before = len(sims[1].requests)
        editor = settings.add_endpoint()
        editor.name_edit.setText("Rack")
        editor.kind_combo.setCurrentIndex(editor.kind_combo.findText("llama.cpp"))
        editor.url_edit.setText(url(sims[1]))
        await _save(editor)
        await wait_until(lambda: url(sims[1]) in dash.cards and dash.cards[url(sims[1])].state_text == "up")
        assert len(sims[1].requests) > before
        assert dash.cards[url(sims[1])].title.text() == "Rack — llama.cpp"
        assert [e.name for e in (await _saved(settings_file)).endpoints] == ["Desk", "Rack"]
        assert [settings.endpoint_list.item(i).text().split(" — ")[0]
                for i in range(settings.endpoint_list.count())] == ["Desk", "Rack"]
        assert set(dash.cards) == {url(sims[0]), url(sims[1])}
        assert service.settings is window.settings_service.settings  # one owner, one copy
        settings.close()
        dash.close()
        await views.aclose()


def qapp_sheet() -> str:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    return app.styleSheet()


async def test_theme_then_endpoint_both_kept_and_the_theme_applies_to_the_window(
        qtbot, clean_env, window, pool, sims, settings_file) -> None:
    with use_backend(MemoryKeyring()):
        window.keyring_store = KeyringStore()
        await _start_servers(window, pool, settings_file)
        settings = window.open_settings()
        await wait_until(lambda: settings.keys.keyring_ok is not None)
        try:
            assert await settings.set_theme("dark")
            assert qapp_sheet() == stylesheet(DARK)  # applied by the window on SettingsChanged
            dash = window.server_windows.open_view("endpoints")
            editor = dash.open_endpoint_dialog(None)
            editor.name_edit.setText("Desk")
            editor.url_edit.setText(url(sims[0]))
            await _save(editor)
            saved = await _saved(settings_file)
            assert saved.theme == "dark" and [e.name for e in saved.endpoints] == ["Desk"]
            # The theme combo follows a change made elsewhere too.
            await window.settings_service.update(theme="light")
            assert settings.theme_combo.currentData() == "light"
            assert qapp_sheet() != stylesheet(DARK)
        finally:
            window.apply_theme("light")
            settings.close()
            await window.server_windows.aclose()


async def test_editor_keeps_secrets_in_the_keyring_moves_them_on_rename_and_asks_consent(
        qtbot, clean_env, settings_file, tmp_path) -> None:
    backend = MemoryKeyring()
    ca = tmp_path / "team-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    with use_backend(backend):
        service = SettingsService(settings_file)
        await service.load()
        editor = EndpointEditor(None, settings=service, keyring_store=KeyringStore())
        qtbot.addWidget(editor)
        editor.show()
        editor.name_edit.setText("Gateway")
        editor.kind_combo.setCurrentIndex(editor.kind_combo.findText("OpenAI-compatible"))
        assert [editor.kind_combo.itemText(i) for i in range(editor.kind_combo.count())] == [
            "Ollama", "LM Studio", "vLLM", "llama.cpp", "OpenAI-compatible", "Anthropic-compatible"]
        editor.url_edit.setText("http://gateway.example.com:4000/v1")
        assert not editor.insecure_warning.isVisible()  # no credential yet: nothing to warn about
        editor.key_edit.setText(TOKEN)
        assert editor.insecure_warning.isVisible()
        assert "gateway.example.com" in editor.insecure_warning.text()
        assert editor.insecure_box.text() == "Send the key to gateway.example.com without encryption"
        editor.insecure_box.setChecked(True)
        editor.add_header_row("X-Team", "blue")
        editor.add_header_row("X-Secret", HEADER_SECRET, secret=True)
        editor.add_header_row("Authorization", "Bearer oops")  # plain: refused, not written
        editor.group_combo.setEditText("team")
        editor.ca_edit.setText(str(tmp_path / "missing.pem"))
        editor.submit()
        await editor.task
        assert "Authorization" in editor.error_label.text() and editor.isVisible()
        editor.remove_header_row(editor.headers[2])
        editor.submit()
        await editor.task
        assert "CA bundle" in editor.error_label.text() and editor.isVisible()
        editor.ca_edit.setText(str(ca))
        editor.read_spin.setValue(120)
        await _save(editor)

        text = settings_file.read_text(encoding="utf-8")
        assert TOKEN not in text and HEADER_SECRET not in text and "SECRET" not in text
        [saved] = (await _saved(settings_file)).endpoints
        assert (saved.kind, saved.url, saved.group) == ("openai-compatible", "http://gateway.example.com:4000/v1",
                                                        "team")
        assert saved.headers == {"X-Team": "blue"} and saved.secret_headers == ["X-Secret"]
        assert saved.allow_insecure_key and saved.ca_bundle == str(ca) and saved.read_timeout_s == 120
        assert saved.tls_verify and saved.connect_timeout_s is None
        assert backend.entries[(SERVICE, "endpoint:Gateway")] == TOKEN
        assert backend.entries[(SERVICE, "endpoint:Gateway:header:x-secret")] == HEADER_SECRET

        # Edit: the key shows as saved, never as its value; renaming moves the keyring entries.
        edit = EndpointEditor(None, settings=service, keyring_store=KeyringStore(), original=saved)
        qtbot.addWidget(edit)
        edit.show()
        await edit.loading
        assert edit.key_status.text() == "saved in keyring" and edit.key_edit.text() == ""
        secret_row = edit.headers[1]
        assert secret_row.name.text() == "X-Secret" and secret_row.value.text() == ""
        assert secret_row.value.placeholderText() == "saved — type to replace"
        assert edit.insecure_warning.isVisible() and edit.insecure_box.isChecked()
        edit.name_edit.setText("Team gateway")
        await _save(edit)
        assert (SERVICE, "endpoint:Gateway") not in backend.entries
        assert (SERVICE, "endpoint:Gateway:header:x-secret") not in backend.entries
        assert backend.entries[(SERVICE, "endpoint:Team gateway")] == TOKEN
        assert backend.entries[(SERVICE, "endpoint:Team gateway:header:x-secret")] == HEADER_SECRET
        [renamed] = (await _saved(settings_file)).endpoints
        assert renamed.name == "Team gateway" and renamed.secret_headers == ["X-Secret"]
        assert TOKEN not in settings_file.read_text(encoding="utf-8")

        # https, or a host on the private network: no warning, and no consent is stored.
        third = EndpointEditor(None, settings=service, keyring_store=KeyringStore(), original=renamed)
        qtbot.addWidget(third)
        third.show()
        await third.loading
        third.url_edit.setText("https://gateway.example.com/v1")
        assert not third.insecure_warning.isVisible()
        third.url_edit.setText("http://192.168.1.20:4000")
        assert not third.insecure_warning.isVisible()
        third.clear_key_button.click()
        assert third.key_status.text() == "will be removed"
        await _save(third)
        [last] = (await _saved(settings_file)).endpoints
        assert not last.allow_insecure_key
        assert (SERVICE, "endpoint:Team gateway") not in backend.entries
        assert backend.entries[(SERVICE, "endpoint:Team gateway:header:x-secret")] == HEADER_SECRET


async def test_without_a_keyring_the_page_names_the_variables_and_send_names_the_missing_one(
        qtbot, clean_env, window, settings_file) -> None:
    window.use_settings(SettingsService(settings_file))
    with use_backend(no_backend()):
        window.keyring_store = KeyringStore()
        dialog = window.open_settings()
        await wait_until(lambda: dialog.keys.keyring_ok is not None)
        text = dialog.keys.backend_label.text()
        assert "OpenAI: OPENAI_API_KEY" in text and "Anthropic: ANTHROPIC_API_KEY" in text
        assert "GOOGLE_API_KEY or GEMINI_API_KEY" in text
        if sys.platform == "win32":  # how to get a keyring, and where variables are set, on this OS
            assert "Credential Manager" in text and "~/.profile" not in text
            assert "Edit environment variables for your account" in text
        else:
            assert "Secret Service" in text and "~/.profile" in text
        assert "keyrings.alt" not in text
        windows = no_keyring_sentence([], "win32")  # what a Windows user reads, on every OS
        assert "Edit environment variables for your account" in windows and "~/.profile" not in windows
        row = dialog.keys.rows["openai"]
        assert not row.save.isEnabled() and row.edit.isEnabled()  # a pasted key can still be tested
        # Said once, on the page, not on every row.
        assert all("OPENAI_API_KEY" not in r.status.text() for r in dialog.keys.rows.values())
        result = await dialog.keys.test_connection("openai")
        assert result == "No key to test: paste one in the field and press Test, or set OPENAI_API_KEY " \
                         "and restart."
        assert "Settings" not in row.result.text()
        dialog.close()

    chat = window.chat
    chat.reload_providers()
    chat.select_provider("openai")
    await asyncio.sleep(0.2)  # the picker says its own thing about the missing key first
    chat.input.setPlainText("hello")
    chat.send()
    assert chat.status_label.text() == ("OpenAI needs a key: set OPENAI_API_KEY, or save one in "
                                        "Settings → API keys.")
    assert chat.input.toPlainText() == "hello"  # nothing was sent, nothing lost
