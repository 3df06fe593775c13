"""Issue 17's whole path, from the window, with the REAL llama-server: Servers → Models → "Find
models on Hugging Face…" → search → the quant's fit badge (read from its header only) → Download →
the downloads panel verifies it → "Run…" → the plan's flags → Start → the server is in the chat
picker → a reply streams → Stop. The Hub is the simulator on 127.0.0.1 serving a real tiny GGUF."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.servers.base import free_port
from tests.servers.hub import HubFile, HubRepo, HubServer
from tests.support.llama_build import binary_for_tests
from tests.support.tiny_gguf import make_tiny_gguf
from tests.ui.conftest import wait_until
from tests.ui.engine_chat import chat_with_engine
from tests.ui.test_registry_picker import items, no_env  # noqa: F401 - the fixture is used by name
from victor_gui.services.downloads import JobState
from victor_gui.services.engine_runner import RUNNING, STOPPED
from victor_gui.services.settings_service import SettingsService
from victor_gui.ui.downloads_view import DownloadsView
from victor_gui.ui.engine_panel import RunEngineDialog
from victor_gui.ui.hub_browser import HubBrowser

pytest.importorskip("huggingface_hub")
pytestmark = [pytest.mark.llamacpp, pytest.mark.usefixtures("keep_running_when_closed")]
REPO = "victor-tests/Tiny-Chat-GGUF"
FILE = "Tiny-Chat-F16.gguf"


@pytest.fixture
def tiny_hub(tmp_path: Path) -> Iterator[HubServer]:
    gguf = make_tiny_gguf(tmp_path / "src" / FILE)
    with HubServer([HubRepo(REPO, [HubFile(FILE, Path(gguf))], downloads=5)]) as hub:
        yield hub


async def test_find_download_run_and_chat_from_the_window(no_env, window, tiny_hub: HubServer,  # noqa: F811
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", tiny_hub.url)
    for var in ("HF_TOKEN", "HF_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    models_dir = tmp_path / "models"
    settings_file = tmp_path / "settings.yaml"
    binary = str(binary_for_tests())
    settings_file.write_text(yaml.safe_dump({"config_version": 3, "llama_server_path": binary}))
    settings = SettingsService(settings_file)
    await settings.load()
    await settings.update(model_folders={"folders": [str(models_dir)], "reuse_libraries": False})
    views = window.server_windows
    chat = window.chat
    await views.start(chat.pool.http_client, settings=settings, on_registry=chat.start,
                      settings_path=settings_file, gpu_detector=None, interval=0.5, scan_processes=False,
                      env={"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}, engine_log_dir=tmp_path / "logs",
                      downloads_state=tmp_path / "downloads.json")
    try:
        # Find it, with its fit badge, before downloading anything.
        manager = views.open_view("models")
        manager.hub_button.click()  # type: ignore[union-attr]
        browser = next(w for w in manager.findChildren(HubBrowser))  # type: ignore[union-attr]
        browser.search_edit.setText("tiny-chat")
        browser.search_button.click()
        await wait_until(lambda: browser.results.rowCount() == 1 and browser.service.busy is None, 10)
        browser.results.selectRow(0)
        await wait_until(lambda: browser.badge_texts().get("F16", "Reading header…") != "Reading header…", 15)
        assert browser.badge_texts()["F16"].startswith("CPU only"), browser.badge_texts()  # no GPU here
        # (Header-only reads are proved on multi-GB files in tests/services/test_hf_fit.py; this
        # tiny model is smaller than one range read.)
        browser.quants.cellWidget(0, 5).click()  # Download

        # The downloads panel verifies it and offers to run it.
        panel = views.views["downloads"]
        assert isinstance(panel, DownloadsView)
        await wait_until(lambda: len(panel.rows) == 1, 10)
        [row] = panel.rows.values()
        await wait_until(lambda: row.job.state == JobState.DONE, 30)
        assert (models_dir / REPO / FILE).is_file() and "verified" in row.detail_label.text()
        assert row.run_button.isVisible()
        row.run_button.click()
        dialog = views.run_dialog
        assert isinstance(dialog, RunEngineDialog) and dialog.model == str(models_dir / REPO / FILE)
        await wait_until(lambda: dialog.start_button.isEnabled(), 10)
        flags = dialog.flags_text.toPlainText()
        assert "-ngl 0" in flags and "--jinja" in flags and "--host 127.0.0.1" in flags
        dialog.start_button.click()
        await wait_until(lambda: dialog.engine is not None, 60)
        engine = dialog.engine
        assert engine is not None and engine.state == RUNNING

        # The chat picker offers it; a reply streams from it; Stop takes it away.
        target, reply = await chat_with_engine(window, engine.url)
        assert reply.status == "complete", reply.error
        assert reply.content and reply.endpoint is not None and engine.url in reply.endpoint
        await asyncio.wait_for(views.engines.stop(engine), 15)  # type: ignore[union-attr]
        assert engine.state == STOPPED
        await wait_until(lambda: target.name not in items(chat.provider_combo), 10)
    finally:
        await views.aclose()
