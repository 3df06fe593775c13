"""Screenshots of "Find models on Hugging Face" in light and dark under Xvfb, against the Hub
simulator (sparse GGUFs with real headers; a 12 GiB GPU with 11 GiB free as a "what if" machine).

    python -m bench.screenshots_hub --out /tmp/hub-shots

Saves ``hub-browser-{light,dark}.png`` (Qwen3-8B's quants at 16,384 tokens: full, full, partial,
the vision add-on; Download buttons shown) and ``hub-gated-{light,dark}.png`` (a gated repo
without a token). Only for people and the README; nothing here is a test.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.xvfb import run_shots, until


async def shoot_theme(out: Path, hub_url: str, mode: str) -> list[Path]:
    """The browser on Qwen3-8B at 16,384 tokens, then on the gated repo, in ``mode``."""
    from tests.support.hub_repos import GATED, MACHINE, QWEN
    from victor_gui.services.hf_hub import HubClient
    from victor_gui.services.hub_browser import HubBrowserService
    from victor_gui.ui.hub_browser import HubBrowser
    from victor_gui.ui.theme import apply_theme

    apply_theme(mode)
    service = HubBrowserService(HubClient(hub_url, env={}), gpu_report=MACHINE)
    view = HubBrowser(service, on_download=lambda repo, files: None)
    view.resize(1240, 560)
    view.show()
    view.search_edit.setText("GGUF")
    view.search()
    await until(lambda: bool(service.results))
    row = next(r for r in range(view.results.rowCount()) if view.results.item(r, 0).text() == QWEN)
    view.results.selectRow(row)
    await until(lambda: service.repo is not None and service.busy is None)
    view.ctx_spin.setValue(16384)
    await until(lambda: view.quants.horizontalHeaderItem(3).text() == "Fit at 16,384")
    saved = [out / f"hub-browser-{mode}.png", out / f"hub-gated-{mode}.png"]
    view.grab().save(str(saved[0]))
    row = next(r for r in range(view.results.rowCount()) if view.results.item(r, 0).text().startswith(GATED))
    view.results.selectRow(row)
    await until(lambda: service.repo is not None and service.repo.repo_id == GATED and service.busy is None)
    view.grab().save(str(saved[1]))
    view.close()
    await service.close()
    return saved


async def shoot(out: Path) -> list[Path]:
    from tests.support.hub_repos import make_repos, serve

    saved: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp, serve(make_repos(Path(tmp))) as hub:
        for mode in ("light", "dark"):
            saved += await shoot_theme(out, hub.url, mode)
    return saved


def main() -> int:
    return run_shots("bench.screenshots_hub", __doc__, shoot)


if __name__ == "__main__":
    sys.exit(main())
