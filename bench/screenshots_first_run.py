"""Screenshots of the first-run offer ("Get a model to chat with"), in light and dark, under Xvfb,
against the Hub simulator serving real-shaped sparse GGUFs under recommended repo ids, on a
machine described as one 12 GiB GPU (11 GiB free):

* ``first-run-<mode>.png`` — a model found on disk with its badge and Run…, the recommendation
  with its badge and size, Download and run;
* ``first-run-download-<mode>.png`` — the recommendation downloading (throttled), progress shown;
* ``first-run-no-engine-<mode>.png`` — no llama-server anywhere: the engine sentence.

    python -m bench.screenshots_first_run --out /tmp/first-shots

Only for people and the README; nothing here is a test.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.xvfb import run_shots, until
from tests.servers.hub import HubFile, HubRepo, HubServer
from tests.sizing.gguf_factory import Spec, write_gguf
from tests.support.hub_repos import MACHINE, TOKENS, qwen8b

BIG, SMALL = "Qwen/Qwen3-8B-GGUF", "Qwen/Qwen3-1.7B-GGUF"


class _Settings:
    """What the service and the folder scan read: ``.settings`` (no file, nothing saved)."""

    def __init__(self, folder: Path) -> None:
        from victor_gui.config.settings import FirstRunSettings, ModelFolderSettings, Settings

        self.settings = Settings(
            model_folders=ModelFolderSettings(folders=[str(folder)], reuse_libraries=False),
            first_run=FirstRunSettings(recommended=[SMALL, BIG]),
        )

    async def update(self, **_changes: Any) -> None:
        return None


def _spec(arch: str, n_layer: int, n_embd: int, n_head: int, n_ff: int, n_vocab: int, n_ctx: int) -> Spec:
    """A Q4_K_M model of that shape (8 KV heads of 128, as these families have)."""
    from gguf import GGMLQuantizationType as Q

    return Spec(arch=arch, n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_head_kv=8, head_dim=128,
                n_ff=n_ff, n_vocab=n_vocab, n_ctx_train=n_ctx, wtype=Q.Q4_K, tokens=TOKENS)


async def shoot(out: Path) -> list[Path]:
    from gguf import GGMLQuantizationType as Q

    from victor_gui.providers.http import make_client
    from victor_gui.services.downloads import DownloadManager
    from victor_gui.services.engine_runner import EngineRunner
    from victor_gui.services.first_run import FirstRunService
    from victor_gui.services.hf_fit import HubFitter
    from victor_gui.services.hf_hub import HubClient
    from victor_gui.services.model_folders import ModelFolders
    from victor_gui.ui.first_run_panel import FirstRunPanel
    from victor_gui.ui.theme import apply_theme

    work = Path(tempfile.mkdtemp(prefix="first-shots-"))
    src = work / "hub"
    src.mkdir()
    small = _spec("qwen3", 28, 2048, 16, 6144, 151936, 40960)
    repos = [
        HubRepo(
            BIG,
            [
                HubFile("Qwen3-8B-Q4_K_M.gguf", write_gguf(src / "Qwen3-8B-Q4_K_M.gguf", qwen8b(Q.Q4_K))),
                HubFile("Qwen3-8B-Q8_0.gguf", write_gguf(src / "Qwen3-8B-Q8_0.gguf", qwen8b(Q.Q8_0))),
            ],
        ),
        HubRepo(
            SMALL, [HubFile("Qwen3-1.7B-Q4_K_M.gguf", write_gguf(src / "Qwen3-1.7B-Q4_K_M.gguf", small))]
        ),
    ]
    folder = work / "models"
    local = folder / "bartowski" / "Llama-3.2-3B-Instruct-GGUF" / "Llama-3.2-3B-Instruct-Q4_K_M.gguf"
    local.parent.mkdir(parents=True)
    write_gguf(local, _spec("llama", 28, 3072, 24, 8192, 128256, 131072))
    saved: list[Path] = []
    with HubServer(repos) as hub:
        client = make_client()
        settings = _Settings(folder)
        downloads = DownloadManager(
            client,
            folders=ModelFolders(settings),
            state_path=work / "downloads.json",
            endpoint=hub.url,
            token=None,
        )
        await downloads.start()

        async def scene(
            name: str, env: dict[str, str] | None = None
        ) -> tuple[FirstRunService, FirstRunPanel]:
            runner = EngineRunner(client, log_dir=work / "logs", gpu_report=lambda: MACHINE, env=env)
            service = FirstRunService(
                registry=None,
                runner=runner,
                downloads=downloads,
                settings=settings,
                fitter=HubFitter(HubClient(hub.url, env={})),
            )
            panel = FirstRunPanel(service, None, open_run_dialog=lambda *_: None)
            panel.resize(720, 480)
            panel.show()
            await service.build()
            return service, panel

        async def grab(panel: FirstRunPanel, name: str) -> None:
            for mode in ("light", "dark"):
                apply_theme(mode, panel)
                await until(lambda: True)
                path = out / f"{name}-{mode}.png"
                panel.grab().save(str(path))
                saved.append(path)

        service, panel = await scene("first-run")
        await grab(panel, "first-run")
        hub.throttle_bps = 40_000_000
        panel.download_button.click()
        await until(lambda: panel.progress.value() >= 50, 60, "the download")  # 5 %
        await grab(panel, "first-run-download")
        for job in downloads.jobs:
            await downloads.cancel(job.id)
        panel.close()
        await service.close()
        hub.throttle_bps = 0
        service, panel = await scene(
            "first-run-no-engine",
            env={"PATH": "", "VICTOR_LLAMA_CACHE": str(work / "none"), "HOME": str(work)},
        )
        await grab(panel, "first-run-no-engine")
        panel.close()
        await service.close()
        await downloads.close()
        await client.aclose()
    return saved


def main() -> int:
    return run_shots("bench.screenshots_first_run", __doc__, shoot)


if __name__ == "__main__":
    sys.exit(main())
