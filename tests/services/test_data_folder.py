"""Switching the data folder at run time: the app always ends up holding a working store."""

from __future__ import annotations

import sys
from pathlib import Path

from victor_gui.config.settings import load_settings
from victor_gui.services.data_folder import switch_data_dir
from victor_gui.services.settings_service import SettingsService
from victor_gui.storage import open_store


async def test_switch_moves_updates_settings_and_reopens(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path / "old")
    conv = await store.create_conversation("keep")
    await store.add_message(conv.id, "user", "precious words")
    cfg = tmp_path / "cfg" / "settings.yaml"
    settings = SettingsService(cfg)
    switch = await switch_data_dir(store, settings, tmp_path / "new")
    try:
        assert switch.error is None and switch.result is not None
        assert switch.store.path == (tmp_path / "new" / "conversations.sqlite3").resolve()
        assert len(await switch.store.search("precious")) == 1
        assert (await load_settings(cfg)).settings.data_dir == str((tmp_path / "new").resolve())
        assert (tmp_path / "old" / "conversations.sqlite3").exists()
    finally:
        await switch.store.close()


async def test_failed_switch_reopens_old_store_and_keeps_settings(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path / "old")
    conv = await store.create_conversation("keep")
    await store.add_message(conv.id, "user", "still here")
    cfg = tmp_path / "settings.yaml"
    settings = SettingsService(cfg)
    switch = await switch_data_dir(store, settings, Path(sys.prefix) / "chats")
    try:
        assert switch.error is not None and "install folder" in str(switch.error)
        assert switch.store.path.parent == tmp_path / "old"
        assert len(await switch.store.search("still")) == 1
        assert settings.settings.data_dir is None and not cfg.exists()
    finally:
        await switch.store.close()
