"""Screenshots of the downloads panel with a download in progress, in light and dark, under Xvfb,
against the Hub simulator (a throttled transfer, one paused part, one corrupt file, one already
on disk).

    python -m bench.screenshots_downloads --out /tmp/dl-shots

Saves ``downloads-light.png`` and ``downloads-dark.png``. Only for people and the README;
nothing here is a test.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from bench.xvfb import run_shots, until
from tests.servers.hub import HubFile, HubRepo, HubServer

REPO = "bartowski/Qwen3-0.6B-GGUF"


class _Folders:
    def __init__(self, folder: Path) -> None:
        from victor_gui.config.settings import ModelFolderSettings, Settings

        folders = ModelFolderSettings(folders=[str(folder)], reuse_libraries=False)
        self.settings = Settings(model_folders=folders)


async def shoot(out: Path) -> list[Path]:
    from victor_gui.providers.http import make_client
    from victor_gui.services.downloads import DownloadManager, JobState
    from victor_gui.services.model_folders import ModelFolders
    from victor_gui.ui.downloads_view import DownloadsView
    from victor_gui.ui.theme import apply_theme

    work = Path(tempfile.mkdtemp(prefix="dl-shots-"))
    files = [HubFile("Qwen3-0.6B-Q8_0.gguf", os.urandom(6_000_000)),
             HubFile("Qwen3-0.6B-Q4_K_M-00001-of-00002.gguf", os.urandom(3_000_000)),
             HubFile("Qwen3-0.6B-Q4_K_M-00002-of-00002.gguf", os.urandom(2_000_000)),
             HubFile("Qwen3-0.6B-F16.gguf", os.urandom(400_000))]
    saved: list[Path] = []
    with HubServer([HubRepo(REPO, files)]) as hub:
        hub.corrupt.add("Qwen3-0.6B-F16.gguf")
        client = make_client()
        folder = work / "models"
        manager = DownloadManager(client, folders=ModelFolders(_Folders(folder)),
                                  state_path=work / "downloads.json", endpoint=hub.url, token=None,
                                  max_downloads=3)
        await manager.start()
        view = DownloadsView(manager)
        view.resize(760, 560)
        view.show()
        [bad] = await manager.enqueue(REPO, ["Qwen3-0.6B-F16.gguf"])
        await until(lambda: manager.job(bad.id).state == JobState.FAILED,  # type: ignore[union-attr]
                    what="the checksum failure")
        hub.throttle_bps = 1_500_000
        [big] = await manager.enqueue(REPO, ["Qwen3-0.6B-Q8_0.gguf"])
        part1, _part2 = await manager.enqueue(REPO, ["Qwen3-0.6B-Q4_K_M-00001-of-00002.gguf"])
        await until(lambda: (manager.job(part1.id).done_bytes or 0) > 1_000_000,  # type: ignore[union-attr]
                    what="the split part")
        await manager.pause(part1.id)
        await until(lambda: (manager.job(big.id).fraction or 0) > 0.35, what="the download")  # type: ignore[union-attr]
        for mode in ("light", "dark"):
            apply_theme(mode, view)
            await until(lambda: True)
            path = out / f"downloads-{mode}.png"
            view.grab().save(str(path))
            saved.append(path)
        view.close()
        await manager.close()
        await client.aclose()
    return saved


def main() -> int:
    return run_shots("bench.screenshots_downloads", __doc__, shoot)


if __name__ == "__main__":
    sys.exit(main())
