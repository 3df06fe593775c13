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
