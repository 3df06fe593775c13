"""llama-server ROUTER mode, headless, with the REAL binary:

* ``victor-gui serve --router --models-dir D`` (a subprocess, as a user runs it) plans each GGUF,
  prints the router's command and URL; ``/models`` lists both models ``unloaded`` with the
  plans' flags; ``victor-gui chat --endpoint URL --model tiny-b`` gets a reply (the router loads
  the model on request); Ctrl+C stops the router and its model processes;
* usage errors exit 2;
* the process scan finds the router and not its model processes, and the probe recognises it
  (llama.cpp, router mode, each model's status) without being told;
* every flag the planner can write (tensor split, one-GPU placement, experts in RAM, projector)
  is a key the real binary's preset reader accepts, and a model whose load fails comes back as
  a typed error with the child's exit code, in the model manager's words; the chat reads a
  router model's own context (``/props?model=``).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.test_serve_cli_real import serving, stop_with_ctrl_c
from tests.services.chat_cli_support import Home
from tests.sizing.gguf_factory import Spec, write_gguf
from tests.support.tiny_gguf import make_tiny_gguf
from victor_gui.errors import ProviderError
from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.servers.models import LlamaCppModels
from victor_gui.servers.status import EndpointState, EndpointStatus, ServerKind
from victor_gui.services.context_window import props_context
from victor_gui.services.engine_router import RouterModel, RouterPlan, plan_router
from victor_gui.services.engine_runner import EngineRunner
from victor_gui.services.model_folders import FOLDER, Library, scan_libraries
from victor_gui.services.model_library import ModelLibraryService
from victor_gui.sizing.fit import FitOptions
from victor_gui.sizing.hardware import GpuDevice, GpuReport, RamInfo

pytestmark = pytest.mark.llamacpp
GiB = 1 << 30


def _states(url: str) -> dict[str, str]:
    data = httpx.get(url + "/models", timeout=10).json()["data"]
    return {m["id"]: m["status"]["value"] for m in data}


def test_serve_router_plans_each_model_chats_on_request_and_stops(tmp_path: Path, llama_binary: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    make_tiny_gguf(folder / "tiny-a.gguf")
    make_tiny_gguf(folder / "tiny-b.gguf", n_ctx_train=2048)
    home = Home(tmp_path / "user")
    with serving(home, "--router", "--models-dir", str(folder), "--llama-server", str(llama_binary)) as (
            proc, text, url):
        assert "Router    2 models, at most 1 loaded at once" in text
        assert re.search(r"tiny-a\s+fits in RAM without GPU at 4,096 tokens", text)
        assert re.search(r"tiny-b\s+fits in RAM without GPU at 2,048 tokens", text)
        assert "--models-preset" in text and "--models-max 1" in text and " -m " not in text
        assert _states(url) == {"tiny-a": "unloaded", "tiny-b": "unloaded"}
        listed = httpx.get(url + "/models", timeout=10).json()["data"]
        args_b = next(m for m in listed if m["id"] == "tiny-b")["status"]["args"]
        assert args_b[args_b.index("--ctx-size") + 1] == "2048" and str(folder / "tiny-b.gguf") in args_b

        # The headless chat names the model; the router loads it for the request.
        result = home.run("chat", "--endpoint", url, "--model", "tiny-b", "--max-tokens", "8", "--no-save",
                          "Say hello", timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip()
        assert _states(url) == {"tiny-a": "unloaded", "tiny-b": "loaded"}
        router = psutil.Process(proc.pid).children()[0]
        children = router.children(recursive=True)
        assert children  # the model runs in its own process
        stop_with_ctrl_c(proc, url)
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)


def test_serve_router_usage_errors_exit_2(tmp_path: Path) -> None:
    home = Home(tmp_path)
    both = home.run("serve", "--router", str(tmp_path / "a.gguf"))
    assert both.returncode == 2 and "either a .gguf PATH, or --router" in both.stderr
    neither = home.run("serve")
    assert neither.returncode == 2
    stray = home.run("serve", str(tmp_path / "a.gguf"), "--models-dir", str(tmp_path))
    assert stray.returncode == 2 and "go with --router" in stray.stderr


async def test_every_planned_flag_is_a_preset_key_and_a_failed_load_says_so(tmp_path: Path,
                                                                             llama_binary: Path) -> None:
    folder = tmp_path / "models"
    (folder / "vision").mkdir(parents=True)
    tiny = make_tiny_gguf(folder / "tiny.gguf")
    # A header with no tensor data: planned like any model, its child exits while loading.
    write_gguf(folder / "vision" / "hollow.gguf", Spec(n_layer=4, n_ctx_train=2048), header_only=True)
    make_tiny_gguf(folder / "vision" / "mmproj-hollow.gguf")
    two_gpus = GpuReport([GpuDevice("nvidia", "a", 24 * GiB, 20 * GiB, index=0),
                          GpuDevice("nvidia", "b", 24 * GiB, 20 * GiB, index=1)], RamInfo(64 * GiB, 48 * GiB))
    found = scan_libraries([Library(FOLDER, folder)])
    async with make_client(LOCAL_TIMEOUTS) as client:
        runner = EngineRunner(client, log_dir=tmp_path / "logs", binary_setting=lambda: str(llama_binary))
        plan = await plan_router(runner, found)
        assert sorted(m.name for m in plan.models) == ["hollow", "tiny"]
        hollow = plan.model_named("hollow")
        assert hollow is not None and hollow.plan.mmproj == str(folder / "vision" / "mmproj-hollow.gguf")
        # Plans on other machines write more keys; the same binary must accept them all.
        split = EngineRunner(client, log_dir=tmp_path / "logs", gpu_report=lambda: two_gpus,
                             options=FitOptions(cpu_moe=True))
        one_gpu = EngineRunner(client, log_dir=tmp_path / "logs", gpu_report=lambda: two_gpus,
                               options=FitOptions(main_gpu=1))
        extra = [RouterModel("tiny-split", await split.plan(tiny)),
                 RouterModel("tiny-gpu1", await one_gpu.plan(tiny))]
        assert {"tensor-split", "cpu-moe"} <= set(extra[0].options) and extra[1].options["main-gpu"] == "1"
        plan = RouterPlan(plan.models + extra, plan.skipped, binary=plan.binary)
        engine = await runner.start(plan)
        try:
            listed = {e.name: e for e in await LlamaCppModels(client, engine.url).entries()}
            assert set(listed) == {"hollow", "tiny", "tiny-split", "tiny-gpu1"}  # nothing from a cache
            assert all(e.status == "unloaded" for e in listed.values())
            assert listed["tiny"].path == str(tiny) and listed["tiny"].context_length == 4096

            service = ModelLibraryService(client, gpu_detector=None)
            await service.set_endpoint(EndpointStatus(engine.url, ServerKind.LLAMACPP, EndpointState.UP))
            assert service.entry("tiny").size_bytes == tiny.stat().st_size  # type: ignore[union-attr]
            assert await service.load("tiny")
            assert service.entry("tiny").status == "loaded"  # type: ignore[union-attr]
            # The chat's context for a router model is that model's own (the router's /props says 0).
            provider = ProviderRegistry.create("llamacpp", base_url=engine.url + "/v1")
            try:
                assert await props_context(provider, "tiny") == 4096
            finally:
                await provider.close()
            assert await service.unload("tiny")
            assert service.entry("tiny").status == "unloaded"  # type: ignore[union-attr]
            assert not await service.load("hollow")
            assert "Loading hollow failed: llama-server could not load 'hollow' (exit code" in service.message
            with pytest.raises(ProviderError, match="could not load 'hollow'"):
                models = LlamaCppModels(client, engine.url)
                await models.load("hollow")
                await models.wait_loaded("hollow")
            assert service.entry("hollow").status == "unloaded"  # type: ignore[union-attr]
            await service.close()
        finally:
            await runner.close()
        assert engine.process is not None and engine.process.returncode is not None


async def test_a_router_is_found_by_the_scan_and_recognised_not_its_model_processes(tmp_path: Path,
                                                                         llama_binary: Path) -> None:
    from victor_gui.servers.discovery import find_process_endpoints
    from victor_gui.servers.probe import probe_endpoint
    from victor_gui.servers.status import Endpoint

    (tmp_path / "models").mkdir()
    make_tiny_gguf(tmp_path / "models" / "tiny.gguf")
    async with make_client(LOCAL_TIMEOUTS) as client:
        runner = EngineRunner(client, log_dir=tmp_path / "logs", binary_setting=lambda: str(llama_binary))
        plan = await plan_router(runner, scan_libraries([Library(FOLDER, tmp_path / "models")]))
        engine = await runner.start(plan)
        try:
            models = LlamaCppModels(client, engine.url)
            await models.load("tiny")
            await models.wait_loaded("tiny")
            assert engine.process is not None
            (child,) = psutil.Process(engine.process.pid).children()
            child_ports = {c.laddr.port for c in child.net_connections(kind="tcp")
                           if c.status == psutil.CONN_LISTEN}
            assert child_ports  # the model's own llama-server, on a private port
            found = {e.base_url for e in await find_process_endpoints()}
            assert engine.url in found
            assert not any(url.endswith(f":{port}") for url in found for port in child_ports)
            # Told nothing about it, the probe recognises llama.cpp in router mode with its models.
            status = await probe_endpoint(client, Endpoint(engine.url))
            assert status.kind is ServerKind.LLAMACPP and status.state is EndpointState.UP
            assert status.detail("router_mode") is True
            assert [(m.name, m.status, m.loaded) for m in status.models] == [("tiny", "loaded", True)]
        finally:
            await runner.close()
