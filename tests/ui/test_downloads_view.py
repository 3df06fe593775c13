"""The downloads panel driven like a user, against the Hub simulator on 127.0.0.1 and real files:
type a file → its progress shows → Pause → Resume → done and verified; Cancel; a corrupt file's
error shown and the file removed; a restart brings the job back paused and it resumes; the panel
opens from the model manager."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.servers import llamacpp
from tests.servers.hub import HubFile, HubRepo, HubServer
from tests.ui.conftest import wait_until
from victor_gui.services.downloads import DownloadManager, JobState
from victor_gui.services.model_folders import ModelFolders
from victor_gui.sizing.hardware import GpuReport, RamInfo
from victor_gui.ui.downloads_view import DownloadsView

pytestmark = pytest.mark.usefixtures("keep_running_when_closed")

REPO = "bartowski/Tiny-GGUF"
PAYLOAD = os.urandom(500_000)


class _NoLibraries:
    """Settings as the folders read them: downloads into ``folder``, no other app's library."""

    def __init__(self, folder: Path) -> None:
        from victor_gui.config.settings import ModelFolderSettings, Settings

        folders = ModelFolderSettings(folders=[str(folder)], reuse_libraries=False)
        self.settings = Settings(model_folders=folders)


@pytest.fixture
def hub() -> Iterator[HubServer]:
    repo = HubRepo(REPO, [HubFile("Tiny-Q4_K_M.gguf", PAYLOAD), HubFile("Tiny-Q8_0.gguf", PAYLOAD[:80_000])])
    with HubServer([repo]) as server:
        yield server


def make_manager(pool: object, hub: HubServer, tmp_path: Path) -> DownloadManager:
    return DownloadManager(pool.http_client, folders=ModelFolders(_NoLibraries(tmp_path / "models")),  # type: ignore[attr-defined]
                           state_path=tmp_path / "downloads.json", endpoint=hub.url, token=None)


@pytest.fixture
async def manager(pool: object, hub: HubServer, tmp_path: Path) -> AsyncIterator[DownloadManager]:
    dm = make_manager(pool, hub, tmp_path)
    await dm.start()
    yield dm
    await dm.close()


def part_size(view: DownloadsView) -> int:
    [row] = view.rows.values()
    path = row.job.part_path
    return path.stat().st_size if path.exists() else -1


async def test_download_pause_resume_and_verify(qtbot, manager: DownloadManager, hub: HubServer,
                                                tmp_path: Path) -> None:
    hub.throttle_bps = 300_000
    view = DownloadsView(manager)
    qtbot.addWidget(view)
    view.show()
    assert view.empty_label.isVisible()
    view.ref_edit.setText(f"hf:{REPO}/Tiny-Q4_K_M.gguf")
    view.download_button.click()
    await wait_until(lambda: len(view.rows) == 1)
    [row] = view.rows.values()
    assert not view.empty_label.isVisible() and row.name_label.text().startswith("<b>Tiny-Q4_K_M.gguf</b>")
    await wait_until(lambda: 100 < row.progress.value() < 1000 and "/s" in row.detail_label.text())
    assert "Downloading" in row.detail_label.text() and "ETA" in row.detail_label.text()
    assert row.pause_button.text() == "Pause"
    row.pause_button.click()
    await wait_until(lambda: row.job.state == JobState.PAUSED)
    assert row.pause_button.text() == "Resume" and row.detail_label.text().startswith("Paused")
    kept = part_size(view)
    assert 0 < kept < len(PAYLOAD)
    hub.throttle_bps = 0
    row.pause_button.click()  # Resume
    await wait_until(lambda: row.job.state == JobState.DONE, limit_s=20)
    assert "sha256 verified" in row.detail_label.text() and row.progress.value() == 1000
    assert (tmp_path / "models" / REPO / "Tiny-Q4_K_M.gguf").read_bytes() == PAYLOAD
    assert not row.pause_button.isVisible() and row.cancel_button.text() == "Remove from list"


async def test_cancel_removes_the_row_and_the_part(qtbot, manager: DownloadManager, hub: HubServer) -> None:
    hub.throttle_bps = 200_000
    view = DownloadsView(manager)
    qtbot.addWidget(view)
    view.show()
    await view.download(REPO, ["Tiny-Q4_K_M.gguf"])
    [row] = view.rows.values()
    part = row.job.part_path
    await wait_until(lambda: part_size(view) > 0)
    row.cancel_button.click()
    await wait_until(lambda: not view.rows)
    assert not part.exists() and view.empty_label.isVisible()


async def test_corrupt_file_shows_the_error_and_is_removed(qtbot, manager: DownloadManager,
                                                           hub: HubServer) -> None:
    hub.corrupt.add("Tiny-Q8_0.gguf")
    view = DownloadsView(manager)
    qtbot.addWidget(view)
    view.show()
    await view.download(REPO, ["Tiny-Q8_0.gguf"])
    [row] = view.rows.values()
    await wait_until(lambda: row.job.state == JobState.FAILED, limit_s=20)
    assert row.error_label.isVisible() and "did not match the Hub's checksum" in row.error_label.text()
    assert "the file was deleted" in row.error_label.text()
    assert not Path(row.job.dest).exists() and not row.job.part_path.exists()  # noqa: ASYNC240
    assert row.pause_button.text() == "Resume"  # try again


async def test_restart_brings_the_download_back_paused(qtbot, pool: object, hub: HubServer,
                                                       tmp_path: Path) -> None:
    hub.throttle_bps = 300_000
    first = make_manager(pool, hub, tmp_path)
    await first.start()
    view = DownloadsView(first)
    qtbot.addWidget(view)
    await view.download(REPO, ["Tiny-Q4_K_M.gguf"])
    await wait_until(lambda: part_size(view) > 50_000)
    view.close()
    await first.close()  # the app quits mid-download
    hub.throttle_bps = 0
    second = make_manager(pool, hub, tmp_path)  # the next start, same data folder
    await second.start()
    again = DownloadsView(second)
    qtbot.addWidget(again)
    again.show()
    [row] = again.rows.values()
    assert row.job.state == JobState.PAUSED and row.pause_button.text() == "Resume"
    assert row.progress.value() > 0
    row.pause_button.click()
    await wait_until(lambda: row.job.state == JobState.DONE, limit_s=20)
    assert Path(row.job.dest).read_bytes() == PAYLOAD  # noqa: ASYNC240
    await second.close()


async def test_downloads_open_from_the_model_manager(qtbot, window, pool, hub: HubServer,
                                                     tmp_path: Path) -> None:
    views = window.server_windows

    async def detect() -> GpuReport:
        return GpuReport(ram=RamInfo(8 << 30, 4 << 30))

    with llamacpp.make_server():
        (tmp_path / "settings.yaml").write_text("config_version: 2\n")
        await views.start(pool.http_client, settings_path=tmp_path / "settings.yaml", discover_fn=None,
                          gpu_detector=detect, downloads_state=tmp_path / "downloads.json")
        views.models_action.trigger()
        models = views.views["models"]
        assert models.downloads_button.isVisible()
        models.downloads_button.click()
        panel = views.views["downloads"]
        assert isinstance(panel, DownloadsView) and panel.isVisible() and panel.manager is views.downloads
        await views.aclose()
