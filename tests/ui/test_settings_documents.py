"""Settings → Documents: the embedding model and the passages per question, saved through the
settings service to settings.yaml, and a change made by another writer shown on the page."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.ui.conftest import wait_until
from tests.ui.test_settings_dialog import config_home  # noqa: F401
from victor_gui.config.settings import AttachmentSettings, EmbeddingChoice


async def _documents_page(window):  # type: ignore[no-untyped-def]
    dialog = window.open_settings()
    await wait_until(lambda: dialog.keys.rows["anthropic"].status.text() != "…")
    tabs = dialog.tabs
    tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == "Documents"))
    return dialog, dialog.documents


async def test_choosing_an_embedding_model_is_saved(clean_env, config_home: Path, window) -> None:  # noqa: F811
    dialog, page = await _documents_page(window)
    assert page.provider_combo.currentText().startswith("Automatic") and not page.model_edit.isEnabled()
    page.provider_combo.setCurrentIndex(page.provider_combo.findData("ollama"))
    assert page.model_edit.isEnabled() and "nomic-embed-text" in page.model_edit.placeholderText()
    page.save_button.click()  # no model named on a local server: said, nothing saved
    assert "Name the embedding model" in page.note.text()
    page.model_edit.setText("nomic-embed-text")
    page.k_spin.setValue(6)
    page.save_button.click()
    await wait_until(lambda: page.note.text().startswith("Saved"))
    saved = yaml.safe_load((config_home / "settings.yaml").read_text(encoding="utf-8"))
    assert saved["attachments"]["embedding"] == {"provider": "ollama", "model": "nomic-embed-text"}
    assert saved["attachments"]["retrieve_k"] == 6
    assert window.settings_service.settings.attachments.embedding == EmbeddingChoice(
        provider="ollama", model="nomic-embed-text")
    # A cloud provider without a model named takes its usual embedding model.
    page.provider_combo.setCurrentIndex(page.provider_combo.findData("openai"))
    page.model_edit.clear()
    page.save_button.click()
    await wait_until(lambda: window.settings_service.settings.attachments.embedding is not None
                     and window.settings_service.settings.attachments.embedding.provider == "openai")
    assert window.settings_service.settings.attachments.embedding.model == "text-embedding-3-small"
    dialog.close()


async def test_another_writer_shows_on_the_page(clean_env, config_home: Path, window) -> None:  # noqa: F811
    dialog, page = await _documents_page(window)
    await window.settings_service.update(attachments=AttachmentSettings(
        embedding=EmbeddingChoice(provider="lmstudio", model="text-embedding-bge"), retrieve_k=3))
    await wait_until(lambda: page.model_edit.text() == "text-embedding-bge")
    assert page.provider_combo.currentData() == "lmstudio" and page.k_spin.value() == 3
    await window.settings_service.update(attachments=AttachmentSettings())
    await wait_until(lambda: page.provider_combo.currentText().startswith("Automatic"))
    dialog.close()


@pytest.mark.parametrize("chunk", [100, 20000])
def test_passage_length_bounds_match_the_settings(chunk: int) -> None:
    assert AttachmentSettings(chunk_chars=chunk).chunk_chars == chunk
