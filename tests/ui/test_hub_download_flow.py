"""From the window, the whole way: Servers → Models → "Find models on Hugging Face…" → search →
a quant with its fit badge → Download → the downloads panel shows it, it completes, its sha256 is
verified and the GGUF lies in the models folder chosen in Settings. Against the Hub simulator on
127.0.0.1 serving a real (tiny) GGUF, with the app's own services (settings owner, download
manager) rather than parts built by the test."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import llamacpp
from tests.servers.hub import HubFile, HubRepo, HubServer
from tests.support.tiny_gguf import make_tiny_gguf
from tests.ui.conftest import wait_until
from victor_gui.services.downloads import JobState
from victor_gui.services.settings_service import SettingsService
from victor_gui.sizing.hardware import GpuReport, RamInfo
from victor_gui.ui.downloads_view import DownloadsView
from victor_gui.ui.hub_browser import HubBrowser

pytest.importorskip("huggingface_hub")
pytestmark = pytest.mark.usefixtures("keep_running_when_closed")
REPO = "victor-tests/Tiny-Llama-GGUF"


@pytest.fixture
def tiny_hub(tmp_path: Path) -> Iterator[tuple[HubServer, Path]]:
    gguf = make_tiny_gguf(tmp_path / "src" / "Tiny-Llama-F16.gguf")
    with HubServer([HubRepo(REPO, [HubFile("Tiny-Llama-F16.gguf", Path(gguf))], downloads=5)]) as hub:
        yield hub, Path(gguf)


async def test_browse_fit_download_and_verify_from_the_window(qtbot, window, pool, tiny_hub,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    hub, source = tiny_hub
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    for var in ("HF_TOKEN", "HF_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    models_dir = tmp_path / "models"
    (tmp_path / "settings.yaml").write_text("config_version: 2\n")
    settings = SettingsService(tmp_path / "settings.yaml")
    await settings.load()
    await settings.update(model_folders={"folders": [str(models_dir)], "reuse_libraries": False})

    async def detect() -> GpuReport:
        return GpuReport(ram=RamInfo(8 << 30, 4 << 30))

    views = window.server_windows
    with llamacpp.make_server():
        await views.start(pool.http_client, settings=settings, settings_path=tmp_path / "settings.yaml",
                          discover_fn=None, gpu_detector=detect, downloads_state=tmp_path / "downloads.json")
        views.models_action.trigger()
        manager = views.views["models"]
        manager.hub_button.click()
        browser = next(w for w in manager.findChildren(HubBrowser))
        browser.search_edit.setText("tiny")
        browser.search_button.click()
        await wait_until(lambda: browser.results.rowCount() == 1 and browser.service.busy is None, 10)
        browser.results.selectRow(0)
        await wait_until(lambda: browser.badge_texts().get("F16", "").startswith("CPU only"), 15)
        button = browser.quants.cellWidget(0, 5)
        assert button is not None and button.text() == "Download"
        button.click()

        panel = views.views["downloads"]
        assert isinstance(panel, DownloadsView) and panel.isVisible()
        await wait_until(lambda: len(panel.rows) == 1, 10)
        [row] = panel.rows.values()
        await wait_until(lambda: row.job.state == JobState.DONE, 20)
        target = models_dir / "victor-tests" / "Tiny-Llama-GGUF" / "Tiny-Llama-F16.gguf"
        assert target.is_file()
        assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
        assert "verified" in row.detail_label.text()
        await views.aclose()
