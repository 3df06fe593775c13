"""The app's own engine (services/engine_runner.py) against the REAL llama-server: planned flags,
start, registration in the server registry, a streamed reply, crash report, stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from victor_gui.errors import EngineError
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message
from victor_gui.services.engine_runner import EXITED, RUNNING, STOPPED, Engine, EngineRunner
from victor_gui.services.server_registry import ServerRegistry

pytestmark = pytest.mark.llamacpp


async def until(predicate: Callable[[], object], limit_s: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.fixture
async def registered(tmp_path: Path, llama_binary: Path):  # type: ignore[no-untyped-def]
    """``(registry, runner)``: a started server registry (no discovery) and a runner that
    registers its engines there, with the real binary from "Settings"."""
    async with httpx.AsyncClient() as client:
        registry = ServerRegistry(client, settings_path=tmp_path / "settings.yaml", env={}, discover=False,
                                  gpu_detector=None, interval=0.5)
        await registry.start()
        runner = EngineRunner(client, log_dir=tmp_path / "logs", registry=registry,
                              binary_setting=lambda: str(llama_binary), env={"PATH": ""})
        yield registry, runner
        await runner.close()
        await registry.close()


async def test_start_register_chat_and_stop(registered, llama_binary: Path, tiny_model) -> None:
    model = tiny_model()
    registry, runner = registered
    async with httpx.AsyncClient() as client:
        events: list[tuple[str, str]] = []
        runner.subscribe(lambda event, engine: events.append((event, engine.state)))
        plan = await runner.plan(model)
        # No GPU here: the plan is CPU-only at the default context, capped by the trained 4096.
        assert plan.n_ctx == 4096 and plan.fit.verdict == "cpu"
        assert "--port (free port)" in plan.command() and str(llama_binary) in plan.command()
        plan = runner.replan(plan, 2048)  # the context field in the window
        engine = await runner.start(plan)
        try:
            assert engine.state == RUNNING and engine.ready_s is not None
            assert _flag(engine.args, "-c") == "2048" and _flag(engine.args, "-ngl") == "0"
            assert _flag(engine.args, "--host") == "127.0.0.1" and "--jinja" in engine.args
            assert _flag(engine.args, "-np") == "1"  # one sequence, as the estimate assumed
            # Measured beside the estimate: the loaded process's resident memory.
            assert engine.measured is not None and engine.measured.total_bytes
            assert engine.measured.total_bytes > engine.plan.fit.total.kv
            props = (await client.get(engine.url + "/props")).json()
            assert props["default_generation_settings"]["n_ctx"] == 2048  # the server runs as planned
            # The registry lists it like any endpoint: the dashboard and the chat picker show it.
            await until(lambda: any(t.working and any(m.key == engine.url for m in t.members)
                                    for t in registry.targets()))
            target = next(t for t in registry.targets() if any(m.key == engine.url for m in t.members))
            assert target.kind == "llamacpp"
            provider = ProviderRegistry.create("llamacpp", base_url=target.members[0].base_url)
            chunks = [c async for c in provider.stream([Message(role="user", content="hi")], model="tiny",
                                                       temperature=0, max_tokens=5)]
            await provider.close()
            assert "".join(c.content or "" for c in chunks)
            log_text = await runner.read_log(engine)
            assert log_text.startswith("$ ") and "--jinja" in log_text.splitlines()[0]
            assert "HTTP server" in log_text or "listening" in log_text  # the server's own lines
        finally:
            code = await runner.stop(engine)
        assert engine.state == STOPPED and code is not None
        assert not any(m.key == engine.url for m in registry.endpoints())
        with pytest.raises(httpx.ConnectError):
            await client.get(engine.url + "/health")
        assert ("engines", RUNNING) in events and events[-1] == ("engines", STOPPED)


async def test_a_crash_is_reported_with_the_log_tail(registered, tiny_model) -> None:
    registry, runner = registered
    exited: list[Engine] = []
    runner.subscribe(lambda event, engine: exited.append(engine) if event == "exited" else None)
    engine = await runner.start(await runner.plan(tiny_model(), 1024))
    assert any(m.key == engine.url for m in registry.endpoints())
    assert engine.process is not None
    engine.process.kill()
    await until(lambda: exited)
    assert exited == [engine] and engine.state == EXITED
    assert engine.error is not None and "stopped on its own" in engine.error
    assert "Last lines of its log" in engine.error and engine.log_tail()
    assert not any(m.key == engine.url for m in registry.endpoints())


async def test_a_model_that_fails_to_load_says_why(tmp_path: Path, llama_binary: Path, tiny_model) -> None:
    broken = tmp_path / "broken.gguf"
    data = tiny_model().read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # header intact, tensors cut short
    async with httpx.AsyncClient() as client:
        runner = EngineRunner(client, log_dir=tmp_path / "logs", binary_setting=lambda: str(llama_binary),
                              env={"PATH": ""})
        plan = await runner.plan(broken, 1024)
        with pytest.raises(EngineError) as caught:
            await runner.start(plan)
        assert "exited with code" in caught.value.message and caught.value.log_tail
        assert not runner.running
        await runner.close()


async def test_no_binary_is_said_with_the_places_looked(tmp_path: Path, tiny_model) -> None:
    async with httpx.AsyncClient() as client:
        runner = EngineRunner(client, log_dir=tmp_path / "logs", env={"PATH": "", "HOME": str(tmp_path),
                                                                     "XDG_CACHE_HOME": str(tmp_path)})
        plan = await runner.plan(tiny_model(), 1024)
        with pytest.raises(EngineError) as caught:
            await runner.start(plan)
        assert "No llama-server was found" in caught.value.message and "PATH" in caught.value.message
        await runner.close()


async def test_log_file_stays_bounded(tmp_path: Path, llama_binary: Path, tiny_model) -> None:
    async with httpx.AsyncClient() as client:
        runner = EngineRunner(client, log_dir=tmp_path / "logs", binary_setting=lambda: str(llama_binary),
                              env={"PATH": ""}, log_limit=1024)
        plan = await runner.plan(tiny_model(), 1024)
        engine = await runner.start(plan)
        await runner.stop(engine)
        size = engine.log_path.stat().st_size
        assert size <= 1024 + 64, size  # the server prints several KiB while it starts
        assert (await runner.read_log(engine)).startswith("[... older log lines dropped ...]")
        await runner.close()


async def test_close_stops_engines_unless_kept(tmp_path: Path, llama_binary: Path, tiny_model) -> None:
    async with httpx.AsyncClient() as client:
        runner = EngineRunner(client, log_dir=tmp_path / "logs", binary_setting=lambda: str(llama_binary),
                              env={"PATH": ""})
        plan = await runner.plan(tiny_model(), 1024)
        stopped = await runner.start(plan)
        kept = await runner.start(plan, keep_running=True)
        await runner.close()  # the app quits
        with pytest.raises(httpx.ConnectError):
            await client.get(stopped.url + "/health")
        try:
            assert (await client.get(kept.url + "/health")).status_code == 200  # still serving
            assert "main: " in kept.log_path.read_text() or kept.log_path.stat().st_size > 200
        finally:
            assert kept.process is not None
            kept.process.kill()
            await kept.process.wait()


async def test_a_chat_longer_than_the_engines_context_is_trimmed_with_a_note(
        tmp_path: Path, llama_binary: Path, tiny_model) -> None:
    """The engine runs at -c 1024 (the model was trained for 4096): the chat reads the running
    context back from /props and trims to it with a note, instead of failing on a 400."""
    from victor_gui.services.chat_session import ChatSession
    from victor_gui.storage import open_store

    async with httpx.AsyncClient() as client:
        runner = EngineRunner(client, log_dir=tmp_path / "logs", binary_setting=lambda: str(llama_binary),
                              env={"PATH": ""})
        engine = await runner.start(await runner.plan(tiny_model(), 1024))
        store, _ = await open_store(tmp_path / "data")
        conv = await store.create_conversation("long")
        provider = ProviderRegistry.create("llamacpp", base_url=engine.url + "/v1")
        session = ChatSession(store, conv.id, provider, "tiny", max_tokens=8, temperature=0)
        try:
            for i in range(4):
                # " the" is one token of the tiny vocabulary: the real count stays under the estimate.
                result = await session.send(f"{i}" + " the" * 250)
                assert result.status == "complete", result.error
            stored = await store.get_messages(conv.id)
            trims = [m for m in stored if m.is_note and (m.meta or {}).get("kind") == "trim"]
            assert trims and trims[-1].meta["source"] == "loaded"  # type: ignore[index]
            assert "1,024-token" in trims[-1].content and "it reports 1,024 tokens" in trims[-1].content
        finally:
            await session.close()
            await store.close()
            await runner.close()
