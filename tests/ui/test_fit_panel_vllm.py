"""The fit panel in the model manager (issue 17 part 5): the safety margin drawn apart from the
runtime reserve, and the vLLM choice (tensor parallel, gpu_memory_utilization) stating the KV
memory per GPU, the KV token capacity and the longest request. Driven through the window against
the Ollama simulator on 127.0.0.1, as a user does: pick a model, pick the engine, turn the knobs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import ollama
from tests.servers.ollama import OllamaServer
from tests.ui.conftest import wait_until
from tests.ui.test_model_library_view import client  # noqa: F401  (the same real httpx client fixture)
from victor_gui.servers.status import EndpointState, EndpointStatus, ServerKind
from victor_gui.services.model_library import ModelLibraryService
from victor_gui.sizing.fit_vllm import VllmOptions, estimate_vllm
from victor_gui.sizing.hardware import GpuDevice, GpuReport, RamInfo
from victor_gui.ui.model_library_view import ModelLibraryView

GiB, MiB = 1 << 30, 1 << 20
# Two idle 24 GiB cards: vLLM's 0.9 pool is free on both.
TWO_CARDS = GpuReport([GpuDevice("nvidia", f"RTX 4090 #{i}", 24 * GiB, 24 * GiB, index=i) for i in range(2)],
                      RamInfo(64 * GiB, 48 * GiB))

pytestmark = pytest.mark.usefixtures("keep_running_when_closed")


@pytest.fixture
def sim() -> Iterator[OllamaServer]:
    with ollama.make_server() as server:
        yield server


async def test_margin_apart_and_vllm_mode_with_kv_capacity(qtbot, client, sim) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    service = ModelLibraryService(client, gpu_report=TWO_CARDS)
    view = ModelLibraryView(service)
    qtbot.addWidget(view)
    view.show()
    await service.set_endpoint(EndpointStatus(base_url=f"http://127.0.0.1:{sim.port}", kind=ServerKind.OLLAMA,
                                              state=EndpointState.UP))
    view.table.selectRow(0)
    await wait_until(lambda: service.fit is not None and service.architecture is not None)
    panel = view.fit_panel
    # llama.cpp family: the margin is its own part of the bar and of the legend, beside the reserve;
    # llama.cpp's default split puts layers on both cards, so both keep 256 MiB and 448 MiB.
    assert [d.layers > 0 for d in service.fit.devices] == [True, True]
    parts = {s.label: s.value for s in view.bar.segments}
    assert parts["margin"] == 2 * 256 * MiB and parts["overhead"] == 2 * 448 * MiB
    assert "margin 512.0 MiB" in view.legend.text() and "overhead 896.0 MiB" in view.legend.text()
    assert not panel.vllm_label.isVisible() and not panel.tp_spin.isEnabled()

    panel.engine.setCurrentIndex(1)  # the user picks vLLM
    assert panel.vllm_mode and panel.tp_spin.isEnabled() and panel.util_spin.isEnabled()
    assert panel.tp_spin.value() == 2  # one rank per GPU found
    fit = panel.vllm_fit
    assert fit is not None and fit.fits and fit.tensor_parallel_size == 2
    expected = estimate_vllm(service.architecture, 24 * GiB, 24 * GiB,
                             VllmOptions(max_model_len=service.n_ctx, tensor_parallel_size=2))
    assert fit.kv_tokens == expected.kv_tokens > 0
    assert f"{fit.kv_tokens:,} tokens" in panel.vllm_label.text() and panel.vllm_label.isVisible()
    assert view.badge.text() == "Fits in vLLM"
    assert [s.label for s in view.bar.segments][-1] == "KV cache" and view.bar.capacity == fit.pool

    panel.util_spin.setValue(0.5)  # less of each GPU for vLLM: less KV
    smaller = panel.vllm_fit
    assert smaller is not None and smaller.kv_available < fit.kv_available
    assert smaller.gpu_memory_utilization == 0.5
    panel.tp_spin.setValue(1)  # one GPU holds all the weights
    single = panel.vllm_fit
    assert single is not None and single.tensor_parallel_size == 1 and single.weights > smaller.weights

    panel.engine.setCurrentIndex(0)  # back: the llama.cpp answer as before
    assert view.badge.text() == "Full GPU offload" and not panel.vllm_label.isVisible()
    assert "margin" in [s.label for s in view.bar.segments]
    await service.close()
