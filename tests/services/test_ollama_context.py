"""No silent truncation on Ollama (issue 17 part 4), against the Ollama simulator over HTTP:
the chat sends ``options.num_ctx`` chosen from the fit plan (not Ollama's default), the chat's own
context length wins, the context Ollama really loaded is read back from ``/api/ps``, and a
conversation longer than the loaded context is trimmed with a note that says why."""

from __future__ import annotations

from pathlib import Path

from tests.providers import ollama_support
from tests.servers import ollama
from tests.servers.base import Script
from tests.servers.ollama_models import SimModel
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.ollama_context import CPU_CONTEXT, ContextPlanner
from victor_gui.sizing.architecture import from_ollama_show
from victor_gui.sizing.fit import CTX_PAD, FitOptions, estimate_fit
from victor_gui.sizing.hardware import GpuDevice, GpuReport, RamInfo
from victor_gui.storage import open_store

GiB = 1 << 30
RAM = RamInfo(64 * GiB, 48 * GiB)
LONG = "word " * 400  # ~550 estimated tokens a turn


def _gpu(free_gib: float) -> GpuReport:
    size = int(free_gib * GiB)
    return GpuReport(gpus=[GpuDevice("nvidia", "sim card", size, size)], ram=RAM)


def _sent_num_ctx(sim: ollama.OllamaServer) -> int | None:
    options = ollama_support.last_chat(sim).body.get("options") or {}
    return options.get("num_ctx")


def _ps_context(sim: ollama.OllamaServer, name: str = "sim-model:latest") -> int:
    return sim.loaded[name].context_length


async def _chat(tmp_path: Path, sim: ollama.OllamaServer, planner: ContextPlanner, **options):  # type: ignore[no-untyped-def]
    store, _ = await open_store(tmp_path / "data")
    conv = await store.create_conversation("ollama")
    session = ChatSession(store, conv.id, ollama_support.make_provider(sim.url), "sim-model",
                          context_planner=planner, **options)
    return store, session


async def test_num_ctx_is_the_largest_context_that_fully_offloads(tmp_path: Path) -> None:
    with ollama.make_server() as sim:
        store, session = await _chat(tmp_path, sim, ContextPlanner(_gpu(4)))
        result = await session.send("hi")
        assert result.status == "complete", result.error
        sent = _sent_num_ctx(sim)
        arch = from_ollama_show(SimModel("sim-model").show(), size_bytes=SimModel("sim-model").size)
        # What the estimator calls the largest fully offloading context on a 4 GiB card.
        assert sent is not None and sent % CTX_PAD == 0 and 4096 < sent < arch.n_ctx_train
        full = estimate_fit(arch, _gpu(4).gpus, RAM, FitOptions(n_ctx=sent))
        over = estimate_fit(arch, _gpu(4).gpus, RAM, FitOptions(n_ctx=sent + CTX_PAD))
        assert full.verdict == "full" and over.verdict != "full"
        assert _ps_context(sim) == sent  # Ollama loaded what was planned, not its default
        assert session.known_window() is not None and session.known_window().source == "plan"  # type: ignore[union-attr]
        await session.close()
        await store.close()


async def test_whole_trained_context_when_it_fits_and_cpu_default_without_gpu(tmp_path: Path) -> None:
    with ollama.make_server(models=[{"name": "small-ctx", "context_length": 32768}]) as sim:
        store, session = await _chat(tmp_path / "a", sim, ContextPlanner(_gpu(80)))
        session.model = "small-ctx"
        await session.send("hi")
        assert _sent_num_ctx(sim) == 32768  # capped by the trained context
        await session.close()
        await store.close()
        store, session = await _chat(tmp_path / "b", sim, ContextPlanner(GpuReport(ram=RAM)))
        await session.send("hi")
        assert _sent_num_ctx(sim) == CPU_CONTEXT  # no GPU: 8192, not Ollama's default
        await session.close()
        await store.close()


async def test_the_chats_context_length_wins(tmp_path: Path) -> None:
    with ollama.make_server() as sim:
        store, session = await _chat(tmp_path, sim, ContextPlanner(_gpu(4)), context_window=3000,
                                     sampling={"context_length": 3000})
        await session.send("hi")
        assert _sent_num_ctx(sim) == 3000
        await session.close()
        await store.close()


async def test_longer_than_the_planned_context_is_trimmed_with_a_note(tmp_path: Path) -> None:
    with ollama.make_server(models=[{"name": "tiny-ctx", "context_length": 2048}]) as sim:
        store, session = await _chat(tmp_path, sim, ContextPlanner(GpuReport(ram=RAM)), max_tokens=256)
        session.model = "tiny-ctx"
        for i in range(4):
            sim.script(Script(text=f"answer {i}"))
            assert (await session.send(f"{i} {LONG}")).status == "complete"
        assert _sent_num_ctx(sim) == 2048  # the plan, capped at the trained 2,048
        sent = ollama_support.last_chat(sim).body["messages"]
        assert len(sent) < 7 and sent[-1]["content"].startswith("3 ")  # older turns left out
        notes = [m for m in await store.get_messages(session.conversation_id) if m.is_note]
        trim = [n for n in notes if (n.meta or {}).get("kind") == "trim"]
        assert trim, [n.content for n in notes]
        assert "2,048-token context window" in trim[-1].content and "num_ctx" in trim[-1].content
        await session.close()
        await store.close()


async def test_the_loaded_context_is_read_back_and_trimmed_to(tmp_path: Path) -> None:
    """The runner loads less than asked (2,048 of 8,192): /api/ps says so, and the next request
    is trimmed to what is really there, with a note naming the server's figure."""
    with ollama.make_server(max_context=2048) as sim:
        store, session = await _chat(tmp_path, sim, ContextPlanner(GpuReport(ram=RAM)), max_tokens=256)
        assert (await session.send("hi")).status == "complete"
        assert _sent_num_ctx(sim) == CPU_CONTEXT and _ps_context(sim) == 2048
        for i in range(4):
            await session.send(f"{i} {LONG}")
        sent = ollama_support.last_chat(sim).body["messages"]
        assert sent[-1]["content"].startswith("3 ") and not any(m["content"] == "hi" for m in sent)
        trim = [m for m in await store.get_messages(session.conversation_id)
                if m.is_note and (m.meta or {}).get("kind") == "trim"]
        assert trim and trim[-1].meta["source"] == "loaded"  # type: ignore[index]
        assert "it reports 2,048 tokens" in trim[-1].content
        await session.close()
        await store.close()
