"""A password written into an endpoint's URL in settings.yaml is moved to the keyring on load.

Before: it stayed in the file and in memory, so it reached log lines, error texts and exports
(and, once redaction caught URL credentials, every save of the file was refused)."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.config.memory_keyring import MemoryKeyring, no_backend, use_backend
from victor_gui.config.secrets import SERVICE
from victor_gui.config.settings import Endpoint, load_settings
from victor_gui.services.settings_service import SettingsService

PASSWORD = "pw-FileCanary-0815"
FILE = f"""\
config_version: 3
endpoints:
  - name: Box
    kind: vllm
    url: http://alice:{PASSWORD}@10.0.0.9:8000/v1
  - name: Plain
    kind: ollama
    url: http://127.0.0.1:11434
"""


def _listing(folder: Path) -> list[Path]:
    return list(folder.iterdir())


async def test_url_credentials_in_the_file_move_to_the_keyring(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(FILE)
    backend = MemoryKeyring()
    with use_backend(backend):
        service = SettingsService(path)
        settings = await service.load()
    box, plain = settings.endpoints
    assert box.url == "http://10.0.0.9:8000/v1" and box.secret_headers == ["Authorization"]
    assert plain.url == "http://127.0.0.1:11434" and plain.secret_headers == []
    expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert backend.entries[(SERVICE, "endpoint:Box:header:authorization")] == expected
    text = path.read_text()
    assert PASSWORD not in text and "alice" not in text
    assert service.load_notice() is None
    assert not any(p.name.startswith("settings.yaml.bak") for p in _listing(tmp_path))
    reloaded = await load_settings(path)
    assert reloaded.settings.endpoints == settings.endpoints


async def test_without_a_keyring_the_credentials_are_reported_and_the_original_backed_up(
        tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(FILE)
    with use_backend(no_backend()):
        service = SettingsService(path)
        settings = await service.load()
        assert settings.endpoints[0].url == "http://10.0.0.9:8000/v1"
        notice = service.load_notice() or ""
        assert "endpoints.0.url" in notice and PASSWORD not in notice
        assert path.read_text() == FILE  # not written over until the user changes something
        await service.update(theme="dark")  # a save is possible (it was refused before)
    assert PASSWORD not in path.read_text()
    assert service.backup_path is not None and service.backup_path.read_text() == FILE


async def test_proxy_and_changed_urls_keep_their_credentials_in_the_keyring(tmp_path: Path) -> None:
    # Before: a proxy with user:pass sat in settings.yaml, and an endpoint added with one (the
    # dashboard's add) was written as typed.
    proxy_password = "pw-ProxyCanary-2024"
    path = tmp_path / "settings.yaml"
    path.write_text(f"proxy: http://bob:{proxy_password}@proxy.lan:3128\n")
    backend = MemoryKeyring()
    with use_backend(backend):
        service = SettingsService(path)
        settings = await service.load()
        assert settings.proxy == "http://proxy.lan:3128"
        assert service.proxy_url() == f"http://bob:{proxy_password}@proxy.lan:3128"
        assert proxy_password not in path.read_text()

        await service.update(endpoints=[Endpoint(name="Lan", kind="vllm",
                                                 url=f"http://carol:{PASSWORD}@10.0.0.7:8000")])
        [lan] = service.settings.endpoints
        assert lan.url == "http://10.0.0.7:8000" and lan.secret_headers == ["Authorization"]
        assert (SERVICE, "endpoint:Lan:header:authorization") in backend.entries
        assert PASSWORD not in path.read_text() and "carol" not in path.read_text()

        await service.update(proxy="http://other.lan:3128")  # a new proxy: the old user:pass goes
        assert service.proxy_url() == "http://other.lan:3128"
        assert (SERVICE, "settings:proxy") not in backend.entries
