"""Planning llama-server's router mode over real GGUF files on disk (no server here; the
real-binary runs are tests/ui/test_router_window.py and tests/integration/test_router_real.py):
names as ``--models-dir`` gives them, one fit plan per model written into the preset INI, the
files left out and why, projectors only where they are unambiguous, the shared GPU with
``--models-max`` above 1."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.sizing.gguf_factory import Spec, write_gguf
from victor_gui.services.engine_router import (
    ROUTER_CACHE,
    RouterPlan,
    plan_router,
    preset_options,
    router_name,
    shared_report,
)
from victor_gui.services.engine_runner import EngineRunner
from victor_gui.services.model_folders import FOLDER, Library, scan_libraries
from victor_gui.sizing.hardware import GpuDevice, GpuReport, RamInfo

GiB = 1 << 30
# An 8 GiB card with 2 GiB free: the 32-layer model below fully offloads at its whole trained
# context alone, and at a smaller one on half of it.
SMALL_GPU = GpuReport([GpuDevice("nvidia", "small", 8 * GiB, 2 * GiB)], RamInfo(16 * GiB, 8 * GiB))


def _runner(client: httpx.AsyncClient, tmp_path: Path, report: GpuReport | None = None) -> EngineRunner:
    return EngineRunner(client, log_dir=tmp_path / "logs", gpu_report=lambda: report)


def test_names_follow_models_dir_and_flags_become_preset_keys() -> None:
    assert router_name(Path("/m/Qwen3-8B-Q4_K_M.gguf")) == "Qwen3-8B-Q4_K_M"
    assert router_name(Path("/m/Kimi-K2-IQ1_S-00001-of-00006.gguf")) == "Kimi-K2-IQ1_S"
    assert router_name(Path("/m/My Model [v2].gguf")) == "My-Model-v2"  # section-safe
    args = ["-m", "/m/a.gguf", "--host", "127.0.0.1", "--port", "0", "-c", "8192", "-np", "1", "-ngl", "33",
            "-fa", "on", "--cache-type-k", "q8_0", "--cache-type-v", "q8_0", "--tensor-split", "20,13",
            "--cpu-moe", "--mmproj", "/m/mmproj-f16.gguf", "--jinja"]
    assert preset_options(args) == {
        "model": "/m/a.gguf", "ctx-size": "8192", "parallel": "1", "n-gpu-layers": "33", "flash-attn": "on",
        "cache-type-k": "q8_0", "cache-type-v": "q8_0", "tensor-split": "20,13", "cpu-moe": "true",
        "mmproj": "/m/mmproj-f16.gguf", "jinja": "true"}  # host and port are the router's


async def test_plan_router_over_a_folder(tmp_path: Path) -> None:
    models = tmp_path / "models"
    for sub in ("a", "b", "odd;dir"):
        (models / sub).mkdir(parents=True)
    spec = Spec(n_layer=4, n_ctx_train=2048)
    write_gguf(models / "a" / "alpha.gguf", spec)
    write_gguf(models / "a" / "mmproj-alpha-f16.gguf", spec)  # alone with alpha: its projector
    write_gguf(models / "b" / "alpha.gguf", spec)  # the same name in another folder
    write_gguf(models / "b" / "beta.gguf", spec)
    write_gguf(models / "b" / "mmproj-which.gguf", spec)  # beside two models: nobody's
    first_part = write_gguf(models / "split.gguf", spec, split_max_tensors=4)  # split-0000i-of-0000n
    (models / "broken.gguf").write_bytes(b"GGUF\x03\x00")
    write_gguf(models / "odd;dir" / "gamma.gguf", spec)
    found = scan_libraries([Library(FOLDER, models)])
    async with httpx.AsyncClient() as client:
        plan = await plan_router(_runner(client, tmp_path), found)
    names = {m.name: m for m in plan.models}
    assert sorted(names) == ["alpha", "alpha-2", "beta", "split"]
    assert names["alpha"].plan.mmproj == str(models / "a" / "mmproj-alpha-f16.gguf")
    assert names["alpha-2"].plan.mmproj is None and names["beta"].plan.mmproj is None
    assert names["split"].plan.model == str(first_part) and "-00001-of-" in first_part.name  # once
    skipped = {Path(s.path).name: s.reason for s in plan.skipped}
    assert set(skipped) == {"broken.gguf", "gamma.gguf"}
    assert "broken.gguf" in skipped["broken.gguf"] and "preset files cannot" in skipped["gamma.gguf"]
    assert all(m.plan.n_ctx == 2048 for m in plan.models)  # no GPU: 8192 capped by the trained 2048
    assert plan.binary is not None  # searched once, for the command the window shows

    text = plan.preset_text()
    section = text.split("[beta]\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert section == [f"model = {models / 'b' / 'beta.gguf'}", "ctx-size = 2048", "parallel = 1",
                       "n-gpu-layers = 0", "flash-attn = on", "cache-type-k = f16", "cache-type-v = f16",
                       "jinja = true"]
    alpha = text.split("[alpha]\n", 1)[1].split("\n\n")[0]
    assert f"mmproj = {models / 'a' / 'mmproj-alpha-f16.gguf'}" in alpha
    args = plan.args(8080)
    assert "-m" not in args and args[args.index("--models-max") + 1] == "1"

    # prepare() writes the preset (named by its content) and the router's empty LLAMA_CACHE.
    await plan.prepare(tmp_path / "logs")
    assert plan.preset_path is not None and plan.preset_path.read_text() == text
    assert plan.args(8080)[plan.args(8080).index("--models-preset") + 1] == str(plan.preset_path)
    env = plan.environment({"HOME": "/h", "LLAMA_CACHE": "/user/cache"})
    assert env == {"HOME": "/h", "LLAMA_CACHE": str(tmp_path / "logs" / ROUTER_CACHE)}
    cache = tmp_path / "logs" / ROUTER_CACHE
    assert cache.is_dir() and not any(cache.iterdir())


async def test_models_max_shares_the_gpu_between_the_plans(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "qwen.gguf", Spec(n_layer=32, n_ctx_train=131072), header_only=True)
    found = scan_libraries([Library(FOLDER, tmp_path)])
    async with httpx.AsyncClient() as client:
        runner = _runner(client, tmp_path, SMALL_GPU)
        one = await plan_router(runner, found, models_max=1)
        two = await plan_router(runner, found, models_max=2)
    alone, shared = one.models[0].plan, two.models[0].plan
    assert alone.model == str(path) and alone.fit.verdict == "full" and alone.n_ctx == 131072
    # Half the card each: a smaller context still fully offloads.
    assert shared.fit.verdict == "full" and 4096 < shared.n_ctx < alone.n_ctx
    assert "--models-max 2" in two.command()
    assert two.estimate_bytes == shared.estimate_bytes  # one model: only it can be loaded
    halved = shared_report(SMALL_GPU, 2)
    assert halved.gpus[0].free == 1 * GiB and halved.gpus[0].total == 8 * GiB
    assert halved.ram is not None and halved.ram.available == 4 * GiB
    assert shared_report(SMALL_GPU, 1) is SMALL_GPU


async def test_an_empty_plan_cannot_start(tmp_path: Path) -> None:
    from victor_gui.errors import EngineError

    with pytest.raises(EngineError, match="no model to serve"):
        await RouterPlan([]).prepare(tmp_path / "logs")
    assert not (tmp_path / "logs").exists()  # nothing written
