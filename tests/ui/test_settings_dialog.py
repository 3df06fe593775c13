"""The Settings dialog against a real (in-memory) keyring backend and a real 401 simulator:
keys go to the keyring only, never to settings.yaml; Test connection says why it failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.memory_keyring import MemoryKeyring, no_backend, use_backend
from tests.servers import anthropic
from tests.support.app_env import isolated_dirs_env
from tests.ui.conftest import wait_until
from victor_gui.config.secrets import SERVICE, KeyringStore, install_keyring_store
from victor_gui.providers.keys import set_secret_store
from victor_gui.services.engine_places import EXE

SECRET = "sk-ant-test-0123456789abcdefSECRET"


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """settings.yaml and profiles.yaml under tmp (XDG; on Windows %LOCALAPPDATA%, which the XDG
    variables do not move), Victor's profiles under a tmp HOME."""
    for name, value in isolated_dirs_env(tmp_path / "home", tmp_path / "config", tmp_path / "data").items():
        monkeypatch.setenv(name, value)
    return tmp_path / "config" / "victor_gui"


async def _open(window):  # type: ignore[no-untyped-def]
    dialog = window.open_settings()
    await wait_until(lambda: dialog.keys.rows["anthropic"].status.text() != "…")
    return dialog


async def test_keys_go_to_the_keyring_and_never_to_settings_yaml(clean_env, config_home, window) -> None:
    backend = MemoryKeyring()
    with use_backend(backend):
        window.keyring_store = install_keyring_store(KeyringStore())
        try:
            dialog = await _open(window)
            row = dialog.keys.rows["anthropic"]
            assert row.status.text() == "no key"
            assert "keyring" in dialog.keys.backend_label.text()
            assert row.edit.echoMode() == row.edit.EchoMode.Password
            row.edit.setText(SECRET)
            row.save.click()
            await wait_until(lambda: row.status.text() == "saved in keyring")
            assert backend.entries[(SERVICE, "anthropic")] == SECRET
            assert row.edit.text() == ""  # the key is not left on screen
            assert all(SECRET not in w.text() for w in (row.status, row.result, dialog.message))
            # Something that writes settings.yaml: the key must not be in it.
            await dialog.set_proxy("http://127.0.0.1:3128")
            await dialog.set_theme("dark")
            text = (config_home / "settings.yaml").read_text(encoding="utf-8")
            assert "proxy: http://127.0.0.1:3128" in text and "theme: dark" in text
            assert SECRET not in text and "sk-ant" not in text
            # The drop-down now knows Anthropic has a key.
            await wait_until(lambda: "Anthropic — no API key" not in [
                window.chat.provider_combo.itemText(i) for i in range(window.chat.provider_combo.count())])
            row.remove.click()
            await wait_until(lambda: row.status.text() == "no key")
            assert (SERVICE, "anthropic") not in backend.entries
            dialog.close()
        finally:
            set_secret_store(None)


async def test_no_keyring_backend_is_said_plainly(clean_env, config_home, window) -> None:
    with use_backend(no_backend()):
        window.keyring_store = KeyringStore()
        dialog = await _open(window)
        assert "keyring" in dialog.keys.backend_label.text().lower()
        ok, _message = window.keyring_store.backend_status()
        assert not ok and "cannot be saved" in dialog.keys.backend_label.text()
        assert not dialog.keys.rows["openai"].save.isEnabled()
        dialog.close()


async def test_test_connection_shows_the_auth_error_for_a_401(clean_env, config_home, window) -> None:
    with anthropic.make_server(api_key="the-right-key") as server:
        config_home.mkdir(parents=True, exist_ok=True)
        (config_home / "profiles.yaml").write_text(
            f"providers:\n  anthropic:\n    base_url: {server.url}\n", encoding="utf-8")
        with use_backend(MemoryKeyring()):
            window.keyring_store = KeyringStore()
            dialog = await _open(window)
            row = dialog.keys.rows["anthropic"]
            row.edit.setText("a-wrong-key")
            row.test.click()
            await wait_until(lambda: "Anthropic refused the key" in row.result.text())
            assert "Settings → API keys" not in row.result.text()  # that is this page
            assert "a-wrong-key" not in row.result.text()
            assert "HTTP 401" in row.result.text()
            assert any(r.path.startswith("/v1/models") for r in server.requests)
            row.edit.setText("the-right-key")
            assert "Connected: 1 model(s)" in await dialog.keys.test_connection("anthropic")
            dialog.close()


async def test_profiles_and_their_errors_are_listed_by_file_and_line(clean_env, config_home, window) -> None:
    config_home.mkdir(parents=True, exist_ok=True)
    path = config_home / "profiles.yaml"
    path.write_text("profiles:\n  local:\n    provider: ollama\n    model: qwen3:8b\n"
                    "  broken:\n    provider: openai\n    temperature: 9\n", encoding="utf-8")
    with use_backend(MemoryKeyring()):
        window.keyring_store = KeyringStore()
        dialog = await _open(window)
        await wait_until(lambda: dialog.profile_list.count() > 0)
        items = [dialog.profile_list.item(i).text() for i in range(dialog.profile_list.count())]
        assert any(t.startswith("local — ollama · qwen3:8b") and str(path) in t for t in items)
        errors = [dialog.profile_errors.item(i).text() for i in range(dialog.profile_errors.count())]
        assert any(e.startswith(f"{path}:7:") for e in errors), errors
        dialog.close()


async def test_endpoints_are_added_and_removed_in_settings_yaml(clean_env, config_home, window) -> None:
    with use_backend(MemoryKeyring()):
        window.keyring_store = KeyringStore()
        dialog = await _open(window)
        editor = dialog.add_endpoint()
        editor.name_edit.setText("Box under the desk")
        editor.kind_combo.setCurrentIndex(editor.kind_combo.findText("Ollama"))
        editor.url_edit.setText("not a url")
        editor.submit()
        await editor.task
        assert "url: must start with http" in editor.error_label.text() and editor.isVisible()
        assert dialog.endpoint_list.count() == 0
        editor.url_edit.setText("http://192.168.1.20:11434/")
        editor.submit()
        await editor.task
        assert not editor.isVisible()
        assert dialog.endpoint_list.item(0).text() == "Box under the desk — Ollama — http://192.168.1.20:11434"
        text = (config_home / "settings.yaml").read_text(encoding="utf-8")
        assert "http://192.168.1.20:11434" in text
        dialog.endpoint_list.setCurrentRow(0)
        await dialog.remove_endpoint()
        assert dialog.endpoint_list.count() == 0
        assert "192.168.1.20" not in (config_home / "settings.yaml").read_text(encoding="utf-8")
        dialog.close()


async def test_move_data_folder_keeps_the_chats(clean_env, config_home, window, store, tmp_path) -> None:
    conv = await store.create_conversation("Keep me")
    await store.add_message(conv.id, "user", "still here after the move")
    with use_backend(MemoryKeyring()):
        window.keyring_store = KeyringStore()
        dialog = await _open(window)
        assert dialog.data_label.text() == str(store.path.parent)
        target = tmp_path / "moved"
        await dialog.move_data(str(target))
        assert "now in" in dialog.message.text(), dialog.message.text()
        assert window.store is not store and window.store.path.parent == target
        assert window.chat.store is window.store
        messages = await window.store.get_messages(conv.id)
        assert [m.content for m in messages] == ["still here after the move"]
        assert str(target) in (config_home / "settings.yaml").read_text(encoding="utf-8")
        dialog.close()
        await window.store.close()


async def test_llama_server_path_is_checked_and_saved(clean_env, config_home, window, tmp_path) -> None:
    """Settings → General → llama-server: what "Run with llama-server" starts (issue 17)."""
    with use_backend(MemoryKeyring()):
        window.keyring_store = KeyringStore()
        dialog = await _open(window)
        await dialog.set_llama_server(str(tmp_path / "nope"))
        assert "No executable llama-server" in dialog.message.text()
        folder = tmp_path / "llama"
        folder.mkdir()
        binary = folder / EXE  # llama-server.exe on Windows, which runs files by that extension
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
        await dialog.set_llama_server(str(folder))  # the folder holding it counts
        assert "saved" in dialog.message.text()
        assert dialog.service.settings.llama_server_path == str(folder)
        assert f"llama_server_path: {folder}" in (config_home / "settings.yaml").read_text(encoding="utf-8")
        await wait_until(lambda: dialog.llama_edit.text() == str(folder))
        await dialog.set_llama_server("")
        assert dialog.service.settings.llama_server_path is None
        dialog.close()
