"""The model manager view against the Ollama (and llama.cpp) simulators on 127.0.0.1: the models
table, fit badge and bar moving with the context slider, pull progress and Cancel closing the
connection, load/unload with measured figures, delete behind a confirmation."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from PySide6.QtWidgets import QMessageBox

from tests.servers import llamacpp, ollama
from tests.servers.ollama import OllamaHandler, OllamaServer
from tests.ui.conftest import wait_until
from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
from victor_gui.servers.status import EndpointState, EndpointStatus, ServerKind
from victor_gui.services.model_library import NOT_SUPPORTED, ModelLibraryService
from victor_gui.sizing.hardware import GpuDevice, GpuReport, RamInfo
from victor_gui.ui.model_library_view import ModelLibraryView

GiB = 1 << 30
# An 8 GiB card with 6 GiB free and plenty of RAM: the simulator's 3B model (1.9 GiB, 28 layers,
# 8 KV heads of 128) offloads fully up to about 29k tokens and partially beyond.
MACHINE = GpuReport([GpuDevice("nvidia", "RTX 4060", 8 * GiB, 6 * GiB)], RamInfo(32 * GiB, 24 * GiB))


class RecordingOllamaHandler(OllamaHandler):
    """Notes in ``server.disconnected`` when a client went away in the middle of a pull."""

    def pull(self) -> None:
        try:
            super().pull()
        except (BrokenPipeError, ConnectionResetError):
            self.server.disconnected.set()
            self.close_connection = True


pytestmark = pytest.mark.usefixtures("keep_running_when_closed")


@pytest.fixture
def sim() -> Iterator[OllamaServer]:
    server = ollama.make_server(models=[{"name": "qwen3:8b", "size": 5_225_387_923,
                                         "parameter_size": "8.2B"}], pull_step_seconds=0.1)
    server.RequestHandlerClass = RecordingOllamaHandler
    server.disconnected = threading.Event()  # type: ignore[attr-defined]
    with server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[object]:
    http = make_client(LOCAL_TIMEOUTS)
    yield http
    await http.aclose()


def status_of(server: object, kind: ServerKind = ServerKind.OLLAMA) -> EndpointStatus:
    return EndpointStatus(base_url=f"http://127.0.0.1:{server.port}", kind=kind,  # type: ignore[attr-defined]
                          state=EndpointState.UP)


async def open_view(qtbot, client, server) -> tuple[ModelLibraryService, ModelLibraryView]:  # type: ignore[no-untyped-def]
    service = ModelLibraryService(client, gpu_report=MACHINE)
    view = ModelLibraryView(service)
    qtbot.addWidget(view)
    view.show()
    await service.set_endpoint(status_of(server))
    return service, view


def table_names(view: ModelLibraryView) -> list[str]:
    return [view.table.item(r, 0).text() for r in range(view.table.rowCount())]


async def test_fit_badge_and_bar_follow_the_slider(qtbot, client, sim) -> None:
    service, view = await open_view(qtbot, client, sim)
    assert table_names(view) == ["sim-model:latest", "qwen3:8b"]
    assert [view.table.item(0, c).text() for c in (1, 2, 3)] == ["1.9 GiB", "Q4_K_M", "3.2B"]
    view.table.selectRow(0)
    await wait_until(lambda: service.fit is not None)
    assert any(r.path == "/api/show" for r in sim.requests)
    best = service.fit.max_full_offload_ctx
    assert best is not None and 16384 < best < 65536
    assert view.slider.maximum() == 131072  # the model's trained context

    view.ctx_spin.setValue(best)  # typed in the box beside the slider: any value, exactly
    await wait_until(lambda: service.fit.n_ctx == best)
    assert view.slider.value() == best
    assert view.badge.text() == "Full GPU offload"
    assert not view.bar.overflows
    assert [s.label for s in view.bar.segments] == ["weights", "KV cache", "compute", "overhead", "margin"]
    assert view.bar.capacity == 6 * GiB

    view.slider.setValue(best + 4096)
    stepped = round((best + 4096) / 1024) * 1024  # the slider steps on round values
    assert view.slider.value() == stepped and view.ctx_spin.value() == stepped
    assert service.fit.n_ctx == best  # debounced: nothing recomputed until the slider rests
    await wait_until(lambda: service.fit.n_ctx == stepped)
    assert service.fit.verdict == "partial"
    assert view.badge.text() == f"Partial offload: {service.fit.n_gpu_layers} of 29 layers on GPU"
    assert view.bar.overflows and view.bar.segments[-1].label == "in RAM (CPU layers)"
    assert f"full offload up to {best:,}" in view.ctx_label.text()
    await service.close()


async def test_pull_shows_progress_and_cancel_closes_the_connection(qtbot, client, sim) -> None:
    service, view = await open_view(qtbot, client, sim)
    view.pull_edit.setText("tinyllama")
    view.pull_button.click()
    # The first progress line may report 0 bytes done: wait for one with bytes.
    await wait_until(lambda: " of " in view.progress_label.text() and view.progress.value() > 0)
    text = view.progress_label.text()
    assert text.startswith("tinyllama: ") and "/s" in text and "ETA" in text
    assert view.cancel_button.isEnabled() and not view.pull_button.isEnabled()
    assert 0 < view.progress.value() < 1000
    view.cancel_button.click()
    await wait_until(lambda: service.pulls["tinyllama"].cancelled)
    await wait_until(sim.disconnected.is_set, 5.0)  # the server saw the client go
    assert "tinyllama:latest" not in sim.store
    assert view.progress_label.text() == "tinyllama: cancelled"
    assert "cancelled" in view.message.text()
    assert view.pull_button.isEnabled() and not view.cancel_button.isEnabled()

    sim.options["pull_step_seconds"] = 0.0  # pulling again finishes and lists the model
    view.pull_button.click()
    await wait_until(lambda: "tinyllama:latest" in table_names(view))
    assert view.progress_label.text() == "tinyllama: done"
    await service.close()


async def test_load_unload_and_measured_beside_the_estimate(qtbot, client, sim) -> None:
    service, view = await open_view(qtbot, client, sim)
    await service.select("sim-model:latest")
    assert view.measured_label.text().startswith("Not loaded")
    planned = service.n_ctx  # the fit plan's context (issue 17), not Ollama's default 4,096
    assert planned == service.planned_context(service.architecture) and planned != 4096
    view.load_button.click()
    await wait_until(lambda: service.entry("sim-model:latest").loaded)
    said = f"Measured at {planned:,} (ollama /api/ps)"
    await wait_until(lambda: view.measured_label.text().startswith(said))
    assert view.table.item(0, 5).text() == "yes"
    assert sim.loaded["sim-model:latest"].context_length == planned  # Load sent num_ctx
    view.unload_button.click()
    await wait_until(lambda: not service.entry("sim-model:latest").loaded)
    assert "sim-model:latest" not in sim.loaded
    await service.close()


async def test_delete_asks_first(qtbot, client, sim) -> None:
    service, view = await open_view(qtbot, client, sim)
    await service.select("qwen3:8b")
    view.delete_button.click()
    box = view.confirm_box
    assert box is not None and box.isVisible() and "Delete qwen3:8b" in box.text()
    box.button(QMessageBox.StandardButton.No).click()
    await wait_until(lambda: not box.isVisible())
    assert not any(r.method == "DELETE" for r in sim.requests)
    assert "qwen3:8b" in sim.store

    view.delete_button.click()
    view.confirm_box.button(QMessageBox.StandardButton.Yes).click()
    await wait_until(lambda: table_names(view) == ["sim-model:latest"])
    assert "qwen3:8b" not in sim.store
    assert view.model_title.text() == "Choose a model"
    await service.close()


async def test_single_model_llamacpp_says_not_supported(qtbot, client) -> None:
    with llamacpp.make_server() as server:
        service = ModelLibraryService(client, gpu_report=MACHINE)
        view = ModelLibraryView(service)
        qtbot.addWidget(view)
        await service.set_endpoint(status_of(server, ServerKind.LLAMACPP))
        assert table_names(view) == ["sim-model"]
        await service.select("sim-model")
        assert "choose the GGUF file" in view.legend.text()  # no architecture over HTTP
        assert not view.delete_button.isEnabled()
        view.load_button.click()
        await wait_until(lambda: NOT_SUPPORTED in view.message.text())
        assert "router mode" in view.message.text()
        view.pull_edit.setText("qwen3:8b")
        view.pull_button.click()
        assert NOT_SUPPORTED in view.message.text()
        await service.close()


async def test_lmstudio_load_from_the_window_sends_the_plans_context(qtbot, client, tmp_path) -> None:
    """LM Studio (REST v1): once the model's GGUF is known, the Load BUTTON sends
    ``POST /api/v1/models/load`` with ``context_length`` = the fit plan's context."""
    from tests.servers import lmstudio
    from tests.sizing.gguf_factory import Spec, write_gguf

    path = write_gguf(tmp_path / "qwen.gguf", Spec(n_layer=32, n_ctx_train=131072), header_only=True)
    with lmstudio.make_server(model="first-model", models=["first-model", "qwen-7b"], rest_v1=True) as server:
        service = ModelLibraryService(client, gpu_report=MACHINE)
        view = ModelLibraryView(service)
        qtbot.addWidget(view)
        view.show()
        await service.set_endpoint(status_of(server, ServerKind.LMSTUDIO))
        view.table.selectRow(table_names(view).index("qwen-7b"))
        await wait_until(lambda: service.selected == "qwen-7b" and view.attach_button.isVisible())
        await service.attach_file("qwen-7b", path)  # what "Its GGUF file…" does once a file is chosen
        planned = service.n_ctx
        assert service.fit is not None and planned == service.fit.max_full_offload_ctx and planned != 4096
        view.load_button.click()
        await wait_until(lambda: "Loading qwen-7b: done" in view.message.text())
        loads = [r.body for r in server.requests if r.path == "/api/v1/models/load"]
        assert loads == [{"model": "qwen-7b", "context_length": planned}]
        await service.close()


async def test_llamacpp_router_lists_states_and_load_waits_for_loaded(qtbot, client) -> None:
    """A llama-server in router mode (the simulator, servers.md §4.5): the Loaded column says
    each model's status; Load is done only once the model is ``loaded`` (the router answers the
    POST at once, then reports ``loading``); Unload waits for ``unloaded``."""
    with llamacpp.make_server(router=True, models=["qwen-7b", "gemma-2b"], router_load_s=0.4) as server:
        service = ModelLibraryService(client, gpu_report=MACHINE)
        view = ModelLibraryView(service)
        qtbot.addWidget(view)
        await service.set_endpoint(status_of(server, ServerKind.LLAMACPP))
        column = lambda: {view.table.item(r, 0).text(): view.table.item(r, 5).text()  # noqa: E731
                          for r in range(view.table.rowCount())}
        assert column() == {"qwen-7b": "unloaded", "gemma-2b": "unloaded"}
        await service.select("gemma-2b")
        seen: list[str] = []
        service.subscribe(lambda event, _p: seen.append(column()["gemma-2b"]) if event == "models" else None)
        view.load_button.click()
        await wait_until(lambda: service.busy == "Loading gemma-2b…")
        await wait_until(lambda: column()["gemma-2b"] == "loaded", 5)
        assert seen[0] == "loading" and view.message.text() == "Loading gemma-2b: done"
        view.unload_button.click()
        await wait_until(lambda: column()["gemma-2b"] == "unloaded", 5)
        assert [r.body for r in server.requests if r.path.startswith("/models/")] == [
            {"model": "gemma-2b"}, {"model": "gemma-2b"}]
        await service.close()
