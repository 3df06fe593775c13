"""The endpoint dashboard against real simulators on 127.0.0.1: states, colours, diagnoses,
live updates from the monitor, add/edit/remove persisted in settings.yaml, GPU/RAM bars."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from tests.servers import llamacpp
from tests.servers.base import SimServer, free_port
from tests.ui.conftest import wait_until
from victor_gui.config.settings import load_settings
from victor_gui.providers.http import PROBE_TIMEOUTS, make_client
from victor_gui.services.endpoints_service import EndpointsService
from victor_gui.sizing.hardware import GpuDevice, GpuReport, RamInfo
from victor_gui.ui.dashboard import AMBER, GREEN, GREY, RED, Dashboard

GiB = 1 << 30
NO_GPU = GpuReport(ram=RamInfo(16 * GiB, 9 * GiB), notes=["nvidia: nvidia-smi not found"])


def url(server: SimServer | int) -> str:
    return f"http://127.0.0.1:{server if isinstance(server, int) else server.port}"


pytestmark = pytest.mark.usefixtures("keep_running_when_closed")


@pytest.fixture
def sims() -> Iterator[dict[str, SimServer]]:
    servers = {"up": llamacpp.make_server(), "loading": llamacpp.make_server(loading=True),
               "unauthorized": llamacpp.make_server(api_key="sk-local-secret")}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[EndpointsService]:
    """A service over a temporary settings.yaml. Tests close it themselves before they end:
    pytest-qt processes Qt events between the test and fixture teardown, and qasync would fire
    the monitor's timers there, outside a running loop."""
    client = make_client(PROBE_TIMEOUTS)

    async def detect() -> GpuReport:
        return NO_GPU

    svc = EndpointsService(client, settings_path=tmp_path / "settings.yaml", discover_fn=None,
                           gpu_detector=detect, interval=0.2, tick_s=0.2)
    yield svc
    await svc.close()
    await client.aclose()


async def test_each_state_has_its_words_colour_and_diagnosis(qtbot, sims, service) -> None:
    dead = free_port()
    await service.start()
    service.watch([url(sims["up"]), url(sims["loading"]), url(sims["unauthorized"]), url(dead)])
    await service.refresh_now()
    dash = Dashboard(service)
    qtbot.addWidget(dash)
    dash.show()
    cards = dash.cards
    expect = {url(sims["up"]): ("up", GREEN, "is up; loaded: sim-model"),
              url(sims["loading"]): ("loading", AMBER, "model is loading"),
              url(sims["unauthorized"]): ("unauthorized", RED, "API key required (HTTP 401)"),
              url(dead): ("down", GREY, f"nothing listens on 127.0.0.1:{dead}")}
    for key, (words, colour, diagnosis) in expect.items():
        card = cards[key]
        assert card.state_text == words
        assert colour in card.state_label.styleSheet()
        assert diagnosis in card.diagnosis.text()
    up = cards[url(sims["up"])]
    assert up.title.text() == "llama.cpp" and up.version_label.text().startswith("vb")
    assert "sim-model (ctx 4,096" in up.models_label.text()
    assert up.sparkline.values and up.latency_label.text().endswith("ms")
    assert cards[url(dead)].title.text() == "no server"
    # The key never shows up anywhere on the card.
    assert "sk-local-secret" not in cards[url(sims["unauthorized"])].diagnosis.text()
    assert dash.hardware.notice.text() == "No GPU found — models run on the CPU"
    assert "RAM: 7.0 GiB used of 16.0 GiB" in dash.hardware.rows[0][0].text()
    await service.close()


async def test_live_update_from_loading_to_up_and_unsubscribe_on_close(qtbot, sims, service) -> None:
    await service.start()
    service.watch([url(sims["loading"])])
    dash = Dashboard(service)
    qtbot.addWidget(dash)
    dash.show()
    card = dash.cards[url(sims["loading"])]
    await wait_until(lambda: card.state_text == "loading")
    sims["loading"].loading = False
    # No refresh asked for: the monitor's next probe reaches the card through the subscription.
    await wait_until(lambda: card.state_text == "up", 5.0)
    assert GREEN in card.state_label.styleSheet()
    assert "is up" in card.diagnosis.text()
    listeners = len(service._listeners)
    dash.close()
    assert len(service._listeners) == listeners - 1
    await service.close()


async def test_add_edit_remove_persist_in_settings(qtbot, sims, service, tmp_path) -> None:
    await service.start()
    dash = Dashboard(service)
    qtbot.addWidget(dash)
    dash.show()
    dialog = dash.open_endpoint_dialog(None)
    dialog.name_edit.setText("Bench box")
    dialog.url_edit.setText("127.0.0.1:1")  # no scheme: refused, the dialog stays open
    dialog.submit()
    await dialog.task
    assert "url" in dialog.error_label.text() and dialog.isVisible()
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("llamacpp"))
    dialog.url_edit.setText(url(sims["up"]))
    dialog.submit()
    await dialog.task
    assert not dialog.isVisible()
    saved = (await load_settings(tmp_path / "settings.yaml")).settings.endpoints
    assert [(e.name, e.kind, e.url) for e in saved] == [("Bench box", "llamacpp", url(sims["up"]))]
    card = dash.cards[url(sims["up"])]
    await wait_until(lambda: card.state_text == "up")
    assert card.title.text() == "Bench box — llama.cpp"

    edit = dash.open_endpoint_dialog(url(sims["up"]))
    assert edit.name_edit.text() == "Bench box"
    edit.name_edit.setText("Renamed")
    edit.url_edit.setText(url(sims["loading"]))
    edit.submit()
    await edit.task
    saved = (await load_settings(tmp_path / "settings.yaml")).settings.endpoints
    assert [(e.name, e.url) for e in saved] == [("Renamed", url(sims["loading"]))]
    await wait_until(lambda: list(dash.cards) == [url(sims["loading"])])

    box = dash.confirm_remove(url(sims["loading"]))
    assert "also removed from settings.yaml" in box.text()
    box.button(QMessageBox.StandardButton.Yes).click()
    await wait_until(lambda: not dash.cards)
    assert (await load_settings(tmp_path / "settings.yaml")).settings.endpoints == []
    await service.close()


async def test_gpu_bars_and_refresh_now(qtbot, sims, service) -> None:
    await service.start()
    service.watch([url(sims["up"])])
    dash = Dashboard(service)
    qtbot.addWidget(dash)
    service.set_gpu_report(GpuReport([GpuDevice("nvidia", "RTX 4090", 24 * GiB, 20 * GiB)],
                                     RamInfo(64 * GiB, 40 * GiB)))
    assert not dash.hardware.notice.isVisibleTo(dash)
    label, bar = dash.hardware.rows[0]
    assert label.text() == "RTX 4090: 4.0 GiB used of 24.0 GiB, 20.0 GiB free"
    assert bar.capacity == 24 * GiB and bar.segments[0].value == 4 * GiB
    before = service.monitor.probe_counts[url(sims["up"])]
    dash.refresh_button.click()
    await wait_until(lambda: service.monitor.probe_counts[url(sims["up"])] > before)
    await service.close()
