"""Screenshots of the endpoint dashboard and the model manager under Xvfb, against simulators.

    python -m bench.screenshots_models --out /tmp/shots

Saves ``dashboard.png`` (Ollama up with a model loaded, vLLM up, llama.cpp loading, llama.cpp
wanting an API key, a dead port; this machine's real GPU/RAM report) and
``model-manager.png`` (Ollama's models; the selected one at a context that only partly
offloads on an 8 GiB GPU with 6 GiB free, a "what if" machine injected into the service) and
``model-manager-cpu-only.png`` (the same on a machine without a GPU, with a GGUF file estimated
in its own panel).
Only for people and the README; nothing here is a test.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bench.xvfb import run_shots
from tests.servers import llamacpp, ollama, vllm
from tests.servers.base import free_port

GiB = 1 << 30
MODELS = [
    {"name": "qwen3:8b", "parameter_size": "8.2B", "size": 5_225_387_923, "context_length": 40960,
     "quantization_level": "Q4_K_M", "family": "qwen3"},
    {"name": "llama3.2:3b", "parameter_size": "3.2B", "size": 2_019_393_189},
    {"name": "gemma3:12b", "parameter_size": "12.2B", "size": 8_149_190_253, "family": "gemma3",
     "context_length": 131072},
]


async def shoot(out: Path) -> list[Path]:
    from victor_gui.providers.http import LOCAL_TIMEOUTS, PROBE_TIMEOUTS, make_client
    from victor_gui.services.endpoints_service import EndpointsService
    from victor_gui.services.model_library import ModelLibraryService
    from victor_gui.sizing.hardware import GpuDevice, GpuReport, RamInfo
    from victor_gui.ui.dashboard import Dashboard
    from victor_gui.ui.model_library_view import ModelLibraryView

    saved: list[Path] = []
    sims = [ollama.make_server(model="llama3.1:8b", models=MODELS), vllm.make_server(model="Qwen/Qwen3-8B"),
            llamacpp.make_server(loading=True), llamacpp.make_server(api_key="sk-local-secret")]
    for sim in sims:
        sim.start()
    sims[0].loading = False
    probe = make_client(PROBE_TIMEOUTS)
    client = make_client(LOCAL_TIMEOUTS)
    # A model in memory, so the card shows its context and GPU share.
    await client.post(f"http://127.0.0.1:{sims[0].port}/api/generate",
                      json={"model": "llama3.2:3b", "options": {"num_ctx": 8192}, "stream": False})
    settings = out / "settings.yaml"
    service = EndpointsService(probe, settings_path=settings, discover_fn=None, interval=0.5, tick_s=0.5)
    await service.start()
    await service.add_endpoint("Workstation Ollama", "ollama", f"http://127.0.0.1:{sims[0].port}")
    service.watch([f"http://127.0.0.1:{s.port}" for s in sims[1:]] + [f"http://127.0.0.1:{free_port()}"])
    await service.refresh_now()
    await asyncio.sleep(3.0)  # a few probes for the sparklines
    dash = Dashboard(service)
    dash.resize(980, 560)
    dash.show()
    await asyncio.sleep(0.3)
    path = out / "dashboard.png"
    dash.grab().save(str(path))
    saved.append(path)

    report = GpuReport([GpuDevice("nvidia", "NVIDIA GeForce RTX 4060", 8 * GiB, 6 * GiB, source="what-if")],
                       RamInfo(32 * GiB, 21 * GiB))
    models = ModelLibraryService(client, gpu_report=report)
    view = ModelLibraryView(models, service)
    view.resize(980, 600)
    view.show()
    await asyncio.sleep(0.5)
    ollama_status = service.monitor.status(f"http://127.0.0.1:{sims[0].port}")
    assert ollama_status is not None
    await models.set_endpoint(ollama_status)
    view.render_endpoints()
    await models.select("llama3.2:3b")
    models.set_context(49152)
    view.pull_edit.setText("tinyllama")
    sims[0].options["pull_step_seconds"] = 0.4
    models.start_pull("tinyllama")
    await asyncio.sleep(0.7)
    path = out / "model-manager.png"
    view.grab().save(str(path))
    saved.append(path)

    view.close()
    # The same server on a machine without a GPU, with a GGUF file estimated in its own panel.
    cpu_only = ModelLibraryService(client, gpu_report=GpuReport(ram=RamInfo(32 * GiB, 21 * GiB)))
    cpu_view = ModelLibraryView(cpu_only, service)
    cpu_view.resize(980, 760)
    cpu_view.show()
    await cpu_only.set_endpoint(ollama_status)
    cpu_view.render_endpoints()
    await cpu_only.select("llama3.2:3b")
    from tests.sizing.gguf_factory import Spec, write_gguf

    gguf = write_gguf(out / "Mistral-7B-Q4_K_M.gguf", Spec(n_layer=32, n_ctx_train=32768), header_only=True)
    await cpu_only.use_gguf(gguf)
    await asyncio.sleep(0.5)
    path = out / "model-manager-cpu-only.png"
    cpu_view.grab().save(str(path))
    saved.append(path)
    cpu_view.close()
    await cpu_only.close()
    dash.close()
    await models.close()
    await service.close()
    await probe.aclose()
    await client.aclose()
    for sim in sims:
        sim.stop()
    return saved


def main() -> int:
    return run_shots("bench.screenshots_models", __doc__, shoot)


if __name__ == "__main__":
    sys.exit(main())
