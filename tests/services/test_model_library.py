"""ModelLibraryService without a window: estimates from a local GGUF file (a llama.cpp server's
model on this machine, or a file chosen by hand) and a GPU report injected as a "what if"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.servers import llamacpp
from tests.sizing.gguf_factory import Spec, write_gguf
from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
from victor_gui.servers.status import EndpointState, EndpointStatus, ServerKind
from victor_gui.services.model_library import ModelLibraryService
from victor_gui.sizing.hardware import GpuDevice, GpuReport, RamInfo

MiB = 1 << 20
GiB = 1 << 30


async def test_llamacpp_model_on_this_machine_is_read_from_its_gguf(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "sim-model.gguf", Spec(n_layer=8, n_ctx_train=32768), header_only=True)
    gpu = GpuDevice("nvidia", "tiny", 2 * GiB, 1 * GiB + 200 * MiB)
    report = GpuReport([gpu], RamInfo(16 * GiB, 8 * GiB))
    with llamacpp.make_server() as sim:
        status = EndpointStatus(base_url=f"http://127.0.0.1:{sim.port}", kind=ServerKind.LLAMACPP,
                                state=EndpointState.UP, details=(("model_path", str(path)),))
        async with make_client(LOCAL_TIMEOUTS) as client:
            service = ModelLibraryService(client, gpu_report=report)
            await service.set_endpoint(status)
            assert [m.name for m in service.models] == ["sim-model"]
            await service.select("sim-model")
            arch = service.architecture
            assert arch is not None and arch.n_layer == 8 and arch.n_ctx_train == 32768
            assert service.max_context == 32768
            fit = service.fit
            assert fit is not None and fit.n_layers_total == 9
            # Not loaded: the context is the plan's, the whole trained 32,768 fully offloads here.
            assert service.n_ctx == fit.n_ctx == fit.max_full_offload_ctx == 32768
            service.n_ctx = 4096
            small = service.estimate_now()
            service.n_ctx = 32768
            large = service.estimate_now()
            assert small is not None and large is not None and large.total.kv > small.total.kv
            await service.close()


async def test_a_gguf_chosen_by_hand_is_estimated(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "other.gguf", Spec(n_layer=4), header_only=True)
    with llamacpp.make_server() as sim:
        status = EndpointStatus(base_url=f"http://127.0.0.1:{sim.port}", kind=ServerKind.LLAMACPP,
                                state=EndpointState.UP)
        async with make_client(LOCAL_TIMEOUTS) as client:
            service = ModelLibraryService(client, gpu_report=GpuReport(ram=RamInfo(8 * GiB, 4 * GiB)))
            await service.set_endpoint(status)
            listed = [m.name for m in service.models]
            estimate = await service.use_gguf(path)
            # Its own estimate: not a row of the llama.cpp server's list, nor its selection.
            assert [m.name for m in service.models] == listed and service.selected is None
            assert service.file is estimate and estimate.name == "other.gguf"
            assert estimate.fit is not None and estimate.fit.verdict == "cpu"  # no GPU in the report
            service.set_file_context(4096)
            await asyncio.sleep(0.2)
            assert estimate.fit.n_ctx == 4096
            broken = tmp_path / "broken.gguf"
            broken.write_bytes(b"GGUF\x03\x00")
            bad = await service.use_gguf(broken)
            assert bad.fit is None and bad.error is not None and "broken.gguf" in bad.error
            await service.close()


async def test_lmstudio_loads_at_the_plans_context_once_its_file_is_known(tmp_path: Path) -> None:
    """LM Studio does not describe a model's layers over HTTP: once the user points the model
    manager at its GGUF, the fit plan picks the context (the most that fully offloads on this
    2 GiB card) and Load sends it as REST v1 ``context_length``."""
    from tests.servers import lmstudio

    path = write_gguf(tmp_path / "qwen.gguf", Spec(n_layer=32, n_ctx_train=131072), header_only=True)
    gpu = GpuDevice("nvidia", "small", 2 * GiB, 1 * GiB + 200 * MiB)
    report = GpuReport([gpu], RamInfo(16 * GiB, 8 * GiB))
    with lmstudio.make_server(model="first-model", models=["first-model", "qwen-7b"], rest_v1=True) as sim:
        status = EndpointStatus(base_url=f"http://127.0.0.1:{sim.port}", kind=ServerKind.LMSTUDIO,
                                state=EndpointState.UP)
        async with make_client(LOCAL_TIMEOUTS) as client:
            service = ModelLibraryService(client, gpu_report=report)
            await service.set_endpoint(status)
            await service.select("qwen-7b")
            assert service.architecture is None and service.arch_error  # no layers over HTTP
            await service.attach_file("qwen-7b", path)
            fit = service.fit
            assert service.architecture is not None and fit is not None
            planned = fit.max_full_offload_ctx
            assert planned is not None and 4096 < planned < 131072  # this card limits it
            assert service.n_ctx == planned and fit.verdict == "full"
            assert await service.load("qwen-7b")
            await service.close()
        loads = [r.body for r in sim.requests if r.path == "/api/v1/models/load"]
    assert loads == [{"model": "qwen-7b", "context_length": planned}]
    assert sim.options["lms_loaded"]["qwen-7b"]["context_length"] == planned
