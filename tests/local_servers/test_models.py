"""Model management against the simulators: Ollama pull/delete/preload/unload, LM Studio REST v1,
llama.cpp router mode, and the typed "not supported" answers."""

from __future__ import annotations

import asyncio
import itertools
import time
from contextlib import aclosing

import httpx
import pytest

from tests.servers import llamacpp, lmstudio, ollama
from victor_gui.errors import ModelNotFoundError, ProviderUnavailableError
from victor_gui.servers.models import (
    LlamaCppModels,
    LMStudioModels,
    OllamaModels,
    RateMeter,
    TransferProgress,
    manager_for,
)
from victor_gui.servers.status import ServerKind


async def test_ollama_pull_reports_bytes_speed_and_eta(client: httpx.AsyncClient) -> None:
    with ollama.make_server(pull_step_seconds=0.02) as server:
        models = OllamaModels(client, server.url)
        async with aclosing(models.pull("tinyllama")) as stream:
            updates = [p async for p in stream]
        assert "tinyllama:latest" in server.store
    assert updates[0].status == "pulling manifest" and updates[0].total == 0
    assert updates[-1].done and updates[-1].status == "success"
    byte_updates = [u for u in updates if u.digest]
    assert byte_updates[-1].completed == byte_updates[-1].total == 1_001_000  # both layers
    assert all(b.completed >= a.completed for a, b in itertools.pairwise(byte_updates))
    assert any(u.bytes_per_s for u in byte_updates)
    mid = next(u for u in byte_updates if u.bytes_per_s and u.completed < u.total)
    assert mid.eta_s is not None and mid.eta_s > 0 and mid.fraction is not None and 0 < mid.fraction < 1


async def test_ollama_pull_cancel_closes_the_connection_and_pulling_again_completes(
        client: httpx.AsyncClient) -> None:
    with ollama.make_server(pull_step_seconds=0.1) as server:
        models = OllamaModels(client, server.url)
        seen: list[TransferProgress] = []
        bytes_arrived = asyncio.Event()

        async def consume() -> None:
            async for progress in models.pull("tinyllama"):
                seen.append(progress)
                if progress.completed:
                    bytes_arrived.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(bytes_arrived.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The simulator's writer hits the closed connection and never finishes the pull.
        await asyncio.sleep(0.8)  # longer than the remaining steps would take
        assert "tinyllama:latest" not in server.store
        assert not seen[-1].done
        # Pulling again resumes (Ollama keeps the partial blobs) and completes.
        async with aclosing(models.pull("tinyllama")) as stream:
            final = [p async for p in stream][-1]
        assert final.done and "tinyllama:latest" in server.store


async def test_ollama_pull_unknown_model_is_model_not_found(client: httpx.AsyncClient) -> None:
    with ollama.make_server() as server:
        with pytest.raises(ModelNotFoundError, match="file does not exist"):
            async for _ in OllamaModels(client, server.url).pull("no-such-model"):
                pass


async def test_ollama_delete_preload_unload(client: httpx.AsyncClient) -> None:
    with ollama.make_server(models=["qwen3:8b"]) as server:
        models = OllamaModels(client, server.url)
        await models.preload("qwen3:8b", keep_alive=-1)
        assert "qwen3:8b" in server.loaded
        assert server.requests[-1].body == {"model": "qwen3:8b", "stream": False, "keep_alive": -1}
        await models.unload("qwen3:8b")
        assert "qwen3:8b" not in server.loaded
        await models.delete("qwen3:8b")
        assert "qwen3:8b" not in server.store
        with pytest.raises(ModelNotFoundError):
            await models.delete("qwen3:8b")


async def test_lmstudio_rest_v1_load_unload_and_list(client: httpx.AsyncClient) -> None:
    with lmstudio.make_server(rest_v1=True, models=["qwen-7b", "llama-3b"]) as server:
        models = LMStudioModels(client, server.url)
        result = await models.load("llama-3b", context_length=16384)
        assert result.instance_id == "llama-3b" and result.status == "loaded"
        listed = {m.name: m for m in await models.list()}
        assert listed["llama-3b"].loaded and listed["llama-3b"].context_length == 16384
        await models.unload("llama-3b")
        assert not {m.name: m for m in await models.list()}["llama-3b"].loaded


async def test_lmstudio_download_progress(client: httpx.AsyncClient) -> None:
    with lmstudio.make_server(rest_v1=True, download_seconds=0.3) as server:
        models = LMStudioModels(client, server.url, poll_interval=0.05)
        updates = [p async for p in models.download("qwen/qwen3-4b")]
        assert "qwen/qwen3-4b" in server.models
        again = [p async for p in models.download("qwen/qwen3-4b")]
    assert updates[-1].done and updates[-1].status == "completed"
    assert updates[-1].completed == updates[-1].total == 4_000_000
    running = [u for u in updates if not u.done]
    assert running and running[0].bytes_per_s and running[0].eta_s is not None
    assert [(p.status, p.done) for p in again] == [("already_downloaded", True)]


async def test_old_lmstudio_says_not_supported(client: httpx.AsyncClient) -> None:
    with lmstudio.make_server() as server:  # 0.3.x: no REST v1, 200 + "Unexpected endpoint"
        models = LMStudioModels(client, server.url)
        with pytest.raises(ProviderUnavailableError, match=r"LM Studio 0\.4 or later"):
            await models.load("sim-model")
        with pytest.raises(ProviderUnavailableError):
            async for _ in models.download("x"):
                pass


async def test_llamacpp_router_load_and_unload(client: httpx.AsyncClient) -> None:
    with llamacpp.make_server(router=True, models=["qwen-7b", "gemma-2b"], router_load_s=0.1) as server:
        models = LlamaCppModels(client, server.url)
        assert await models.is_router()
        await models.load("gemma-2b")
        states = {m.name: m.status for m in await models.list()}
        assert states == {"qwen-7b": "unloaded", "gemma-2b": "loading"}
        deadline = time.monotonic() + 2
        while {m.name: m.status for m in await models.list()}["gemma-2b"] != "loaded":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await models.unload("gemma-2b")
        assert {m.name: m.loaded for m in await models.list()} == {"qwen-7b": False, "gemma-2b": False}


async def test_llamacpp_single_model_says_not_supported(client: httpx.AsyncClient) -> None:
    with llamacpp.make_server() as server:
        with pytest.raises(ProviderUnavailableError, match="router mode"):
            await LlamaCppModels(client, server.url).load("other")
        assert not any(r.path == "/models/load" for r in server.requests)


def test_vllm_has_no_model_management(client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderUnavailableError, match="one model per process"):
        manager_for(ServerKind.VLLM, client, "http://127.0.0.1:8000")
    assert isinstance(manager_for(ServerKind.OLLAMA, client, "http://x"), OllamaModels)


def test_rate_meter_speed_and_eta() -> None:
    now = [0.0]
    meter = RateMeter(window_s=3.0, clock=lambda: now[0])
    assert meter.add(0) is None
    now[0] = 1.0
    assert meter.add(1000) == 1000.0
    now[0] = 2.0
    assert meter.add(3000) == 1500.0
    assert RateMeter.eta(3000, 6000, 1500.0) == 2.0
    assert RateMeter.eta(6000, 6000, None) == 0.0
