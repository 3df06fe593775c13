"""The "Serve all my models…" dialog without a real server (fast; the real-binary run is
tests/ui/test_router_window.py): what it says when the folders hold no model, when no
llama-server is found (Start stays off, the places looked at are listed), and how "Models loaded
at once" re-plans each model on its share of the GPU."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.sizing.gguf_factory import Spec, write_gguf
from tests.ui.conftest import wait_until
from victor_gui.services.engine_runner import EngineRunner
from victor_gui.services.model_folders import FOLDER, Library, LocalModel, scan_libraries
from victor_gui.sizing.hardware import GpuDevice, GpuReport, RamInfo
from victor_gui.ui.router_panel import RouterDialog

GiB = 1 << 30
CARD = GpuReport([GpuDevice("nvidia", "card", 8 * GiB, 2 * GiB)], RamInfo(16 * GiB, 8 * GiB))


@pytest.fixture
def no_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment where no llama-server can be found."""
    for var, sub in (("HOME", "home"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return {"PATH": "", "HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}


async def test_no_model_and_no_binary_are_said_and_start_stays_off(qtbot, tmp_path: Path,
                                                                   no_binary: dict[str, str]) -> None:
    async def nothing() -> list[LocalModel]:
        return []

    async with httpx.AsyncClient() as client:
        runner = EngineRunner(client, log_dir=tmp_path / "logs", env=no_binary)
        dialog = RouterDialog(runner, nothing)
        qtbot.addWidget(dialog)
        await wait_until(lambda: dialog.plan is not None, 10)
        assert dialog.summary.text().startswith("No model to serve")
        assert "No llama-server was found" in dialog.status.toPlainText()
        assert not dialog.start_button.isEnabled() and dialog.table.rowCount() == 0
        await runner.close()


async def test_models_at_once_replans_on_a_share_of_the_gpu(qtbot, tmp_path: Path,
                                                           no_binary: dict[str, str]) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    write_gguf(folder / "qwen.gguf", Spec(n_layer=32, n_ctx_train=131072), header_only=True)

    async def scan() -> list[LocalModel]:
        return scan_libraries([Library(FOLDER, folder)])

    async with httpx.AsyncClient() as client:
        runner = EngineRunner(client, log_dir=tmp_path / "logs", env=no_binary, gpu_report=lambda: CARD)
        dialog = RouterDialog(runner, scan)
        qtbot.addWidget(dialog)
        await wait_until(lambda: dialog.max_spin.isEnabled(), 10)
        assert [dialog.table.item(0, c).text() for c in (0, 2)] == ["qwen", "131,072"]
        assert "--models-max 1" in dialog.flags_text.toPlainText()
        dialog.max_spin.setValue(2)
        await wait_until(lambda: dialog.plan is not None and dialog.plan.models_max == 2, 10)
        ctx = int(dialog.table.item(0, 2).text().replace(",", ""))
        assert 4096 < ctx < 131072 and "--models-max 2" in dialog.flags_text.toPlainText()
        assert dialog.summary.text() == "1 model, at most 2 loaded at once."
        assert not dialog.start_button.isEnabled()  # still no binary
        await runner.close()
