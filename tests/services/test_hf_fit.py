"""Fit verdicts per quant from GGUF headers read over range requests from the Hub simulator:
the verdict of each quant on a known machine, header-only reads (bytes counted by the server),
one cache entry per URL + ETag, and new contexts planned without a request."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.hub import HubFile, HubRepo, HubServer
from tests.support.hub_repos import LLAMA, MACHINE, NO_GPU, QWEN
from victor_gui.services.hf_fit import HubFitter
from victor_gui.services.hf_hub import HubClient
from victor_gui.sizing.fit import FitOptions, FitResult, estimate_fit
from victor_gui.sizing.sources import load_model

pytest.importorskip("huggingface_hub")

MiB = 1 << 20


async def local_fit(hub: HubServer, repo_id: str, path: str, n_ctx: int) -> FitResult:
    """The estimator's plan from the same file read on disk (no HTTP)."""
    source = hub.repos[repo_id].file(path)
    assert source is not None and isinstance(source.source, Path)
    arch = (await load_model(str(source.source))).arch
    return estimate_fit(arch, MACHINE.gpus, MACHINE.ram, FitOptions(n_ctx=n_ctx))


async def test_each_quant_gets_its_verdict_from_its_header_only(hub: HubServer) -> None:
    client = HubClient(hub.url, env={})
    fitter = HubFitter(client)
    try:
        qwen = await fitter.fit_repo(await client.repo_files(QWEN), MACHINE, 8192)
        (llama,) = await fitter.fit_repo(await client.repo_files(LLAMA), MACHINE, 8192)
    finally:
        await fitter.aclose()
    assert {f.quant.quant: f.fit.verdict for f in qwen if f.fit} == {"Q4_K_M": "full", "Q8_0": "full",
                                                                     "F16": "partial"}
    for f in qwen:  # the same plan as the estimator makes from the file on disk
        assert f.fit == await local_fit(hub, QWEN, f.quant.first.path, 8192)
    assert qwen[0].max_full_ctx == 40960  # the trained context: a 4.3 GiB model on 11 GiB free
    assert qwen[1].max_full_ctx is not None and 8192 <= qwen[1].max_full_ctx < 40960
    assert llama.fit is not None and llama.fit.verdict == "no_fit" and llama.arch is not None
    assert llama.arch.n_layer == 80 and llama.arch.weights_exact  # every shard's tensor table was read
    # Header only: at most the reader's first 1 MiB range of each file (and of each shard).
    for repo_id in (QWEN, LLAMA):
        for f in hub.repos[repo_id].files:
            if f.path.endswith(".gguf") and "mmproj" not in f.path:
                assert 0 < hub.bytes_sent[f.path] <= 1 * MiB, f.path
                assert hub.bytes_sent[f.path] / f.size < 0.001
    assert "mmproj-Qwen3-8B-f16.gguf" not in hub.bytes_sent  # the vision add-on is not a quant


async def test_headers_are_cached_per_url_and_etag_and_contexts_need_no_request(hub: HubServer) -> None:
    client = HubClient(hub.url, env={})
    fitter = HubFitter(client)
    try:
        repo = await client.repo_files(QWEN)
        fits = await fitter.fit_repo(repo, MACHINE, 8192)
        sent = dict(hub.bytes_sent)
        again = await fitter.fit_repo(repo, MACHINE, 8192)
        assert hub.bytes_sent == sent and [f.fit for f in again] == [f.fit for f in fits]
        wide = fitter.refit(fits, MACHINE, 32768)
        assert hub.bytes_sent == sent
        assert [f.fit.verdict for f in wide if f.fit] == ["full", "partial", "partial"]
        for f in wide:
            assert f.fit == await local_fit(hub, QWEN, f.quant.first.path, 32768)
        # New bytes under the same URL carry a new ETag (LFS sha256): read again.
        q4 = hub.repos[QWEN].file("Qwen3-8B-Q4_K_M.gguf")
        assert q4 is not None
        q4.sha256 = "0" * 64
        await fitter.fit_repo(await client.repo_files(QWEN), MACHINE, 8192)
        assert hub.bytes_sent["Qwen3-8B-Q4_K_M.gguf"] == 2 * sent["Qwen3-8B-Q4_K_M.gguf"]
        assert hub.bytes_sent["Qwen3-8B-Q8_0.gguf"] == sent["Qwen3-8B-Q8_0.gguf"]
    finally:
        q4 = hub.repos[QWEN].file("Qwen3-8B-Q4_K_M.gguf")
        if q4 is not None:
            q4.sha256 = None
        await fitter.aclose()


async def test_without_a_gpu_every_quant_that_fits_ram_is_cpu_only(hub: HubServer) -> None:
    client = HubClient(hub.url, env={})
    fitter = HubFitter(client)
    try:
        fits = await fitter.fit_repo(await client.repo_files(QWEN), NO_GPU, 8192)
    finally:
        await fitter.aclose()
    assert [f.fit.verdict for f in fits if f.fit] == ["cpu", "cpu", "cpu"]
    assert [f.max_full_ctx for f in fits] == [None, None, None]


async def test_an_unreadable_header_is_a_row_error_not_a_failure(hub: HubServer) -> None:
    good = hub.repos[QWEN].files[0]
    hub.add(HubRepo("odd/Mixed-GGUF", [HubFile("broken-Q4_0.gguf", b"not a gguf at all" * 100), good]))
    client = HubClient(hub.url, env={})
    fitter = HubFitter(client)
    try:
        fits = await fitter.fit_repo(await client.repo_files("odd/Mixed-GGUF"), MACHINE, 8192)
    finally:
        await fitter.aclose()
    by_quant = {f.quant.quant: f for f in fits}
    assert by_quant["Q4_0"].fit is None and (by_quant["Q4_0"].error or "").startswith("header unreadable")
    assert by_quant["Q4_K_M"].fit is not None and by_quant["Q4_K_M"].fit.verdict == "full"
