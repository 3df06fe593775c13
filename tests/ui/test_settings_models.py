"""Settings → Models: model folders added and removed, the folder downloads go to, the number of
downloads at once and the reuse of other apps' libraries, saved through the settings service to
settings.yaml; the libraries found on this machine are listed; another writer's change shows."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.ui.conftest import wait_until
from tests.ui.test_settings_dialog import _open, config_home  # noqa: F401
from victor_gui.config.settings import ModelFolderSettings


@pytest.fixture
def no_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("XDG_CACHE_HOME", "LLAMA_CACHE", "HF_HOME", "HF_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)


async def _models_page(window):  # type: ignore[no-untyped-def]
    dialog = await _open(window)
    dialog.tabs.setCurrentWidget(dialog.models_page)
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Models"
    return dialog, dialog.models_page


async def test_folders_and_limit_are_saved(clean_env, no_caches, config_home: Path, window,  # noqa: F811
                                           tmp_path: Path) -> None:
    lmstudio = tmp_path / "home" / ".lmstudio" / "models"
    lmstudio.mkdir(parents=True)
    dialog, page = await _models_page(window)
    await wait_until(lambda: str(lmstudio) in page.libraries_label.text())
    assert page.libraries_label.text().startswith("LM Studio:")
    assert page.folder_list.count() == 0 and page.concurrency_spin.value() == 2
    first, second = str(tmp_path / "models-a"), str(tmp_path / "models-b")
    page.add_folder(first)
    page.add_folder(second)
    page.add_folder(first)  # listed once
    assert page.folders() == [first, second]
    page.target_combo.setCurrentIndex(page.target_combo.findData(second))
    page.concurrency_spin.setValue(3)
    page.reuse_check.setChecked(False)
    page.save_button.click()
    await wait_until(lambda: page.note.text().startswith("Saved"))
    saved = yaml.safe_load((config_home / "settings.yaml").read_text(encoding="utf-8"))
    assert saved["model_folders"] == {"folders": [first, second], "download_folder": second,
                                      "max_downloads": 3, "reuse_libraries": False}
    assert window.settings_service.settings.model_folders.max_downloads == 3
    page.folder_list.setCurrentRow(1)
    page.remove_selected()  # the download folder goes back to automatic with it
    assert page.folders() == [first] and page.target_combo.currentData() == ""
    page.save_button.click()
    await wait_until(lambda: window.settings_service.settings.model_folders.folders == [first])
    assert window.settings_service.settings.model_folders.download_folder is None
    dialog.close()


async def test_another_writer_shows_on_the_page(clean_env, no_caches, config_home: Path,  # noqa: F811
                                                window) -> None:
    dialog, page = await _models_page(window)
    await window.settings_service.update(model_folders=ModelFolderSettings(folders=["/srv/models"],
                                                                          max_downloads=5))
    await wait_until(lambda: page.folders() == ["/srv/models"])
    assert page.concurrency_spin.value() == 5
    dialog.close()
