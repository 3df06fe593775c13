"""The first-run recommendation (issue 17) against the Hub simulator: for each machine, the
largest recommended model whose best quant fits (full offload with a GPU, RAM with room
without), fitted from headers only, files too big for the machine not even read; repositories
the Hub lacks or gates are skipped; Q4_K_M preferred over other quants of one repo."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gguf import GGMLQuantizationType as Q

from tests.servers.hub import HubFile, HubRepo, HubServer
from tests.sizing.gguf_factory import Spec, write_gguf
from tests.support.hub_repos import MACHINE, NO_GPU, TOKENS, qwen8b
from victor_gui.services.first_run import RECOMMENDED, pick_quant, recommend
from victor_gui.services.hf_fit import HubFitter
from victor_gui.services.hf_hub import HubClient
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

