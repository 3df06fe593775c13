"""The first-run recommendation (issue 17) against the Hub simulator: for each machine, the
largest recommended model whose best quant fits (full offload with a GPU, RAM with room
without), fitted from headers only, files too big for the machine not even read; repositories
the Hub lacks or gates are skipped; Q4_K_M preferred over other quants of one repo."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gguf import GGMLQuantizationType as Q

from tests.servers.hub import HubFile, HubRepo, HubServer
from tests.sizing.gguf_factory import Spec, write_gguf
from tests.support.hub_repos import MACHINE, NO_GPU, TOKENS, qwen8b
from tests.support.tiny_cmake import write_fake_sdist, write_tiny_project
from tests.support.tiny_gguf import make_tiny_gguf
from victor_gui.errors import DownloadError
from victor_gui.services.downloads import DownloadManager
from victor_gui.services.engine_runner import EngineRunner
from victor_gui.services.first_run import (
    ENGINE_COMMAND,
    RECOMMENDED,
    FirstRunOffer,
    FirstRunService,
    pick_quant,
    plan_local,
    recommend,
)
from victor_gui.services.hf_fit import HubFitter
from victor_gui.services.hf_hub import HubClient
from victor_gui.services.model_folders import ModelFolders
from victor_gui.services.settings_service import SettingsService
from victor_gui.sizing.hardware import GpuDevice, GpuReport, RamInfo

pytest.importorskip("huggingface_hub")

GiB = 1 << 30
MiB = 1 << 20
SMALL, MID, BIG, GATED = "Qwen/Qwen3-1.7B-GGUF", "Qwen/Qwen3-4B-GGUF", "Qwen/Qwen3-8B-GGUF", "acme/Gated-GGUF"
MISSING = "Qwen/Qwen3-0.6B-GGUF"  # in the list, not on this Hub


def spec(n_layer: int, n_embd: int, n_ff: int, wtype: Q) -> Spec:
    return Spec(arch="qwen3", n_layer=n_layer, n_embd=n_embd, n_head=16, n_head_kv=8, head_dim=128, n_ff=n_ff,
                n_vocab=151936, n_ctx_train=40960, wtype=wtype, tokens=TOKENS)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    root = tmp_path_factory.mktemp("first-run-hub")

    def gguf(name: str, s: Spec) -> HubFile:
        return HubFile(name, write_gguf(root / name, s))

    repos = [
        HubRepo(SMALL, [gguf("Qwen3-1.7B-Q8_0.gguf", spec(28, 2048, 6144, Q.Q8_0)),
                        gguf("Qwen3-1.7B-Q4_K_M.gguf", spec(28, 2048, 6144, Q.Q4_K))]),
        HubRepo(MID, [gguf("Qwen3-4B-Q4_K_M.gguf", spec(36, 2560, 9728, Q.Q4_K))]),
        HubRepo(BIG, [gguf("Qwen3-8B-Q4_K_M.gguf", qwen8b(Q.Q4_K)),
                      gguf("Qwen3-8B-Q8_0.gguf", qwen8b(Q.Q8_0))]),
        HubRepo(GATED, [gguf("Gated-Q4_K_M.gguf", spec(28, 2048, 6144, Q.Q4_K))], gated="manual"),
    ]
    with HubServer(repos) as server:
        yield server


async def choose(hub: HubServer, report: GpuReport) -> tuple[str | None, str, dict[str, int]]:
    hub.bytes_sent.clear()
    fitter = HubFitter(HubClient(hub.url, env={}))
    try:
        rec, note = await recommend(fitter, report, (MISSING, SMALL, MID, BIG, GATED))
    finally:
        await fitter.aclose()
    return (rec.quant.name if rec else None), note, dict(hub.bytes_sent)


def gpu(free_gib: float) -> GpuReport:
    return GpuReport([GpuDevice("nvidia", "test GPU", int(free_gib * GiB) + GiB, int(free_gib * GiB))],
                     RamInfo(32 * GiB, 24 * GiB))


async def test_a_big_gpu_gets_the_largest_model_at_q4_k_m_read_from_its_header_only(hub: HubServer) -> None:
    name, note, sent = await choose(hub, MACHINE)  # 11 GiB free
    assert (name, note) == ("Qwen3-8B-Q4_K_M.gguf", "")
    assert 0 < sent["Qwen3-8B-Q4_K_M.gguf"] <= MiB  # the header, not the 4.7 GB
    assert set(sent) == {"Qwen3-8B-Q4_K_M.gguf"}  # the first that fits ends the search


async def test_a_small_gpu_gets_the_largest_model_that_fully_offloads(hub: HubServer) -> None:
    name, _note, sent = await choose(hub, gpu(5))
    assert name == "Qwen3-4B-Q4_K_M.gguf"
    # The 8B file (4.4 GiB) is under 5 GiB: its header was read, and it only partly offloads.
    assert set(sent) == {"Qwen3-8B-Q4_K_M.gguf", "Qwen3-4B-Q4_K_M.gguf"}
    name, _note, sent = await choose(hub, gpu(4))
    assert name == "Qwen3-1.7B-Q4_K_M.gguf"  # 4B needs 4.0 GiB on the GPU at 8,192 tokens + margin
    assert "Qwen3-8B-Q4_K_M.gguf" not in sent  # 4.4 GiB > 4 GiB free: not even its header


async def test_without_a_gpu_the_model_must_fit_in_half_the_available_ram(hub: HubServer) -> None:
    name, _note, _sent = await choose(hub, NO_GPU)  # 24 GiB available: 12 GiB allowed
    assert name == "Qwen3-8B-Q4_K_M.gguf"
    name, _note, sent = await choose(hub, GpuReport([], RamInfo(8 * GiB, 3 * GiB)))  # 1.5 GiB allowed
    assert name == "Qwen3-1.7B-Q4_K_M.gguf"
    assert "Qwen3-4B-Q4_K_M.gguf" not in sent and "Qwen3-8B-Q4_K_M.gguf" not in sent
    assert "Gated-Q4_K_M.gguf" not in sent  # a gated repo needs a token: never recommended


async def test_nothing_fits_says_so(hub: HubServer) -> None:
    name, note, _sent = await choose(hub, GpuReport([], RamInfo(1 * GiB, 256 * MiB)))
    assert name is None and note


async def test_an_unreachable_hub_gives_its_sentence() -> None:
    fitter = HubFitter(HubClient("http://127.0.0.1:9", env={}))
    try:
        rec, note = await recommend(fitter, NO_GPU, (SMALL,))
    finally:
        await fitter.aclose()
    assert rec is None and "not reachable" in note


async def test_the_quant_preference_and_the_builtin_list(hub: HubServer) -> None:
    client = HubClient(hub.url, env={})
    small = await client.repo_files(SMALL)
    assert [q.quant for q in small.quants] == ["Q4_K_M", "Q8_0"]
    chosen = pick_quant(small)
    assert chosen is not None and chosen.quant == "Q4_K_M"
    assert len(RECOMMENDED) == len(set(RECOMMENDED)) >= 6
    assert all(r.count("/") == 1 and r.endswith("-GGUF") for r in RECOMMENDED)



async def settings_in(tmp_path: Path, models: Path) -> SettingsService:
    settings = SettingsService(tmp_path / "settings.yaml")
    await settings.load()
    await settings.update(model_folders={"folders": [str(models)], "reuse_libraries": False},
                          first_run={"recommended": [SMALL]})
    return settings


async def test_no_engine_the_offer_says_so_and_install_the_engine_builds_one(
        hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No llama-server anywhere (PATH, build cache, the data folder's engines): the offer says so
    and "Install the engine" runs the real installer (here on a tiny CMake project posing as
    llama.cpp's sdist, built for real); the offer built afterwards has the binary."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # engine install's folder
    settings = await settings_in(tmp_path, tmp_path / "models")
    sdist = write_fake_sdist(tmp_path / "dl", "9.9.9", write_tiny_project(tmp_path / "tree"))
    offers: list[object] = []
    steps: list[str] = []
    async with httpx.AsyncClient() as client:
        runner = EngineRunner(client, log_dir=tmp_path / "logs", gpu_report=lambda: NO_GPU,
                              env={"PATH": "", "VICTOR_LLAMA_CACHE": str(tmp_path / "no-cache")})
        downloads = DownloadManager(client, settings=settings, endpoint=hub.url, token=None)
        service = FirstRunService(registry=None, runner=runner, downloads=downloads, settings=settings,
                                  fitter=HubFitter(HubClient(hub.url, env={})))
        service.subscribe(lambda event, payload: (offers if event == "offer" else steps).append(payload))
        try:
            offer = await service.build()
            assert offer.engine_missing and offer.local == []
            assert offer.recommendation is not None
            assert offer.recommendation.quant.name == "Qwen3-1.7B-Q4_K_M.gguf"
            assert offer.can_install and "Install the engine" in offer.engine_sentence
            assert ENGINE_COMMAND in offer.engine_sentence
            binary = await asyncio.wait_for(
                service.install_engine(sdist=sdist, opt="O0", native=False, jobs=2), 50)
        finally:
            await service.close()
    assert binary == tmp_path / "data" / "victor_gui" / "engines" / "llama-server" / "9.9.9" / "llama-server"
    assert any("build (100 %)" in str(s) for s in steps), steps[-5:]
    after = offers[-1]
    assert isinstance(after, FirstRunOffer) and not after.engine_missing and after.engine_sentence == ""
    assert after.binary is not None and after.binary.path == binary


async def test_a_cancelled_download_ends_with_a_sentence(hub: HubServer, tmp_path: Path) -> None:
    """Before: cancelling the offer's download in the downloads panel raised KeyError out of
    DownloadManager.wait (the job is forgotten), and the panel showed nothing."""
    settings = await settings_in(tmp_path, tmp_path / "models")
    events: list[tuple[str, object]] = []
    hub.throttle_bps = 2_000_000
    try:
        async with httpx.AsyncClient() as client:
            runner = EngineRunner(client, log_dir=tmp_path / "logs", gpu_report=lambda: NO_GPU)
            downloads = DownloadManager(client, settings=settings, endpoint=hub.url, token=None,
                                        state_path=tmp_path / "downloads.json")
            await downloads.start()
            service = FirstRunService(registry=None, runner=runner, downloads=downloads, settings=settings,
                                      fitter=HubFitter(HubClient(hub.url, env={})))
            moving = asyncio.Event()

            def heard(event: str, payload: object) -> None:
                events.append((event, payload))
                if event == "download":
                    moving.set()

            service.subscribe(heard)
            try:
                offer = await service.build()
                assert offer.recommendation is not None
                task = asyncio.create_task(service.download_and_run(offer.recommendation))
                await asyncio.wait_for(moving.wait(), 20)
                done, total = next(p for e, p in events if e == "download")  # type: ignore[misc]
                assert total == offer.recommendation.size and 0 <= done < total
                [job] = downloads.jobs
                await downloads.cancel(job.id)
                with pytest.raises(DownloadError, match="was cancelled"):
                    await asyncio.wait_for(task, 20)
                assert not service.busy
            finally:
                await service.close()
                await downloads.close()
    finally:
        hub.throttle_bps = 0



async def test_local_models_offered_are_runnable_files_each_planned(tmp_path: Path) -> None:
    """Vision projectors and later parts of a split model are not offered; a file whose header
    cannot be read is offered with the reason (its Run disabled), the others with their plan."""
    folder = tmp_path / "models"
    good = make_tiny_gguf(folder / "a" / "b" / "Tiny-F16.gguf")
    for name in ("mmproj-Tiny-F16.gguf", "Big-Q4_K_M-00001-of-00002.gguf", "Big-Q4_K_M-00002-of-00002.gguf"):
        (folder / "a" / "b" / name).write_bytes(b"not a gguf")
    settings = await settings_in(tmp_path, folder)
    async with httpx.AsyncClient() as client:
        runner = EngineRunner(client, log_dir=tmp_path / "logs", gpu_report=lambda: NO_GPU)
        found = await ModelFolders(settings).scan()
        choices = {c.name: c for c in await plan_local(runner, found)}
    assert set(choices) == {"Tiny-F16.gguf", "Big-Q4_K_M-00001-of-00002.gguf"}
    tiny = choices["Tiny-F16.gguf"]
    assert tiny.model.path == Path(good) and tiny.plan is not None and tiny.plan.fit.verdict == "cpu"
    broken = choices["Big-Q4_K_M-00001-of-00002.gguf"]
    assert broken.plan is None and broken.error and "Cannot read" in broken.error
