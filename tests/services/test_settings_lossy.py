"""A settings file that is not fully read loses nothing: the bad part is left out and reported
by line, the rest is used, and the first save keeps the original bytes first."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from victor_gui.config.settings import load_settings
from victor_gui.services.settings_service import SettingsService


def backups_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("settings.yaml.bak-*"))


TYPO_FILE = """\
config_version: 3
theme: dark
data_dir: {data}
endpoints:
  - name: box
    kind: vllm
    url: http://10.0.0.2:8000
  - name: broken
    kind: nosuchserver
    url: http://10.0.0.3:8000
  - name: gateway
    kind: openai-compatible
    url: https://llm.example.org/v1
health_probe_intervall_s: 30
"""


async def test_typo_keeps_data_folder_and_endpoints_and_first_save_keeps_a_backup(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Before: the unknown key failed the whole file, the defaults (no data folder, no endpoints)
    # were used, and the first update() wrote them over the file: the chats seemed gone.
    path = tmp_path / "settings.yaml"
    original = TYPO_FILE.format(data=tmp_path / "my-chats").encode()
    path.write_bytes(original)
    service = SettingsService(path)
    with caplog.at_level(logging.WARNING, logger="victor_gui.services.settings_service"):
        settings = await service.load()
    assert settings.data_dir == str(tmp_path / "my-chats")
    assert settings.theme == "dark"
    assert [e.name for e in settings.endpoints] == ["box", "gateway"]
    assert service.load_error is None
    problems = {(p.line, str(p).split(": ")[1].split(":")[0]) for p in service.dropped}
    assert problems == {(14, "health_probe_intervall_s"), (9, "endpoints.1.kind")}, service.dropped
    assert all(p.path == str(path) for p in service.dropped)
    notice = service.load_notice()
    assert notice is not None and "left out" in notice and str(path) in notice
    assert "settings.yaml:14" in caplog.text and "settings.yaml:9" in caplog.text

    assert path.read_bytes() == original  # loading writes nothing
    await service.update(theme="light")
    backups = backups_in(tmp_path)
    assert backups == [service.backup_path] and backups[0].read_bytes() == original
    reloaded = await load_settings(path)
    assert reloaded.error is None and not reloaded.dropped
    assert reloaded.settings.theme == "light"
    assert reloaded.settings.data_dir == str(tmp_path / "my-chats")
    assert [e.name for e in reloaded.settings.endpoints] == ["box", "gateway"]

    await service.update(theme="dark")  # one backup per lossy load, not one per save
    assert backups_in(tmp_path) == backups


async def test_unreadable_file_is_backed_up_before_defaults_are_saved(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    original = b"theme: dark\nendpoints: [\n  {name: a\n"
    path.write_bytes(original)
    service = SettingsService(path)
    await service.load()
    assert service.load_error is not None and service.load_error.line == 4
    assert (service.load_notice() or "").startswith("Settings not applied")
    await service.update(theme="light")
    assert service.backup_path is not None and service.backup_path.read_bytes() == original


async def test_a_clean_file_is_saved_without_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("theme: dark\n")
    service = SettingsService(path)
    await service.load()
    assert service.load_notice() is None
    await service.update(theme="light")
    assert service.backup_path is None and backups_in(tmp_path) == []
