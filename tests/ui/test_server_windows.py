"""The Servers menu of the main window: disabled until the app's client exists, then opens the
dashboard and the model manager on live services (a llama.cpp simulator in settings.yaml)."""

from __future__ import annotations

import pytest

from tests.servers import llamacpp
from tests.ui.conftest import wait_until
from victor_gui.sizing.hardware import GpuReport, RamInfo
from victor_gui.ui.dashboard import Dashboard
from victor_gui.ui.model_library_view import ModelLibraryView

pytestmark = pytest.mark.usefixtures("keep_running_when_closed")


async def test_servers_menu_opens_both_views(qtbot, window, pool, tmp_path) -> None:
    views = window.server_windows
    assert not views.endpoints_action.isEnabled()
    assert views.open_view("endpoints") is None
    report = GpuReport(ram=RamInfo(8 << 30, 4 << 30))

    async def detect() -> GpuReport:
        return report

    with llamacpp.make_server() as sim:
        base = f"http://127.0.0.1:{sim.port}"
        (tmp_path / "settings.yaml").write_text(
            f"config_version: 2\nendpoints:\n  - name: Desk\n    kind: llamacpp\n    url: {base}\n")
        await views.start(pool.http_client,
                          settings_path=tmp_path / "settings.yaml", discover_fn=None, gpu_detector=detect)
        assert views.endpoints_action.isEnabled() and views.models_action.isEnabled()
        views.endpoints_action.trigger()
        dash = views.views["endpoints"]
        assert isinstance(dash, Dashboard) and dash.isVisible()
        await wait_until(lambda: base in dash.cards and dash.cards[base].state_text == "up")
        assert dash.cards[base].title.text() == "Desk — llama.cpp"
        assert views._models is None  # the model manager's service is built when first asked for
        assert views.models.gpu_report is report  # one detection serves both views, also a later one
        views.models_action.trigger()
        manager = views.views["models"]
        assert isinstance(manager, ModelLibraryView)
        await wait_until(lambda: manager.table.rowCount() == 1)
        assert manager.endpoint_combo.currentData() == base
        dash.close()
        await wait_until(lambda: "endpoints" not in views.views)
        await views.aclose()
        assert not views.views
