"""The model manager's rough edges a new user hit (issue 14), each driven through the view
against the Ollama simulator: a switch of server leaves no row highlighted and a click selects;
a GGUF file estimated by hand has its own panel (no "file:" row in a server's list, no Load);
a CPU-only machine is described as one; the context box takes a typed value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import ollama
from tests.sizing.gguf_factory import Spec, write_gguf
from tests.ui.conftest import wait_until
from tests.ui.test_model_library_view import MACHINE, GiB, client, status_of, table_names  # noqa: F401
from victor_gui.services.model_library import ModelLibraryService
from victor_gui.sizing.hardware import GpuReport, RamInfo
from victor_gui.ui.model_library_view import ModelLibraryView

pytestmark = pytest.mark.usefixtures("keep_running_when_closed")
CPU_ONLY = GpuReport(ram=RamInfo(32 * GiB, 24 * GiB))


def _view(qtbot, http, report: GpuReport):  # type: ignore[no-untyped-def]
    service = ModelLibraryService(http, gpu_report=report)
    view = ModelLibraryView(service)
    qtbot.addWidget(view)
    view.show()
    return service, view


async def test_switching_server_leaves_no_stale_row_and_a_click_selects(qtbot, client) -> None:  # noqa: F811
    with ollama.make_server() as first, ollama.make_server() as second:
        service, view = _view(qtbot, client, MACHINE)
        await service.set_endpoint(status_of(first))
        view.table.selectRow(0)
        await wait_until(lambda: service.fit is not None)
        await service.set_endpoint(status_of(second))
        await wait_until(lambda: service.base_url == status_of(second).base_url and view.table.rowCount())
        assert service.selected is None and view.model_title.text() == "Choose a model"
        assert view.table.selectionModel().selectedRows() == []  # nothing highlighted
        view.table.selectRow(0)  # the click that "did nothing" before
        await wait_until(lambda: service.fit is not None)
        assert service.selected == table_names(view)[0] == view.model_title.text()
        await service.close()


async def test_a_gguf_file_has_its_own_panel(qtbot, client, tmp_path: Path) -> None:  # noqa: F811
    path = write_gguf(tmp_path / "mine.gguf", Spec(n_layer=4, n_ctx_train=32768), header_only=True)
    with ollama.make_server() as server:
        service, view = _view(qtbot, client, MACHINE)
        await service.set_endpoint(status_of(server))
        names = table_names(view)
        assert not view.file_panel.isVisible()
        await service.use_gguf(path)
        await wait_until(lambda: view.file_panel.badge.text() != "")
        assert view.file_panel.isVisible() and view.file_panel.model_title.text() == "mine.gguf"
        assert table_names(view) == names and not any(n.startswith("file:") for n in names)
        assert not view.load_button.isEnabled()  # nothing selected on the server: Load offers nothing
        view.file_panel.ctx_spin.setValue(5000)
        await wait_until(lambda: service.file is not None and service.file.fit is not None
                         and service.file.fit.n_ctx == 5000)
        assert "5,000" in view.file_panel.measured_label.text()
        await service.use_gguf(tmp_path / "missing.gguf")
        await wait_until(lambda: "missing.gguf" in view.file_panel.legend.text())
        assert "Cannot read missing.gguf" in view.file_panel.legend.text()
        service.close_file()
        assert not view.file_panel.isVisible()
        await service.close()


async def test_a_cpu_only_machine_is_described_as_one(qtbot, client) -> None:  # noqa: F811
    with ollama.make_server() as server:
        service, view = _view(qtbot, client, CPU_ONLY)
        await service.set_endpoint(status_of(server))
        view.table.selectRow(0)
        await wait_until(lambda: service.fit is not None)
        assert view.badge.text() == "CPU only (no GPU found)"
        assert view.ctx_label.text() == "no GPU: runs on the CPU from RAM"
        legend = view.legend.text()
        assert "free RAM" in legend and "no GPU found" in legend
        assert " 0 B" not in legend and "none" not in view.ctx_label.text()
        assert "on GPU" not in view.measured_label.text() and " in RAM" in view.measured_label.text()
        assert view.bar.capacity == 24 * GiB and sum(s.value for s in view.bar.segments) > 1 * GiB
        await service.close()
