"""The server registry against real sockets: simulators on 127.0.0.1, a real settings.yaml.

* start-up costs ONE probe per endpoint per cycle (discovery hands candidates to the monitor,
  the chat reads model lists from the monitor's statuses);
* a hidden default endpoint stays hidden after a restart (a new SettingsService, same file);
* endpoints sharing a group are one chat target that fails over before any output, and the
  transcript (and the store) says which one answered; after output, no resend.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers.base import Fault, Script, SimServer, free_port
from tests.support.recording import make_llamacpp
from victor_gui.config.settings import Endpoint as EndpointSetting
from victor_gui.providers.catalog import SPECS
from victor_gui.providers.http import LOCAL_TIMEOUTS, PROBE_TIMEOUTS, make_client
from victor_gui.providers.keys import set_secret_store
from victor_gui.providers.types import Message
from victor_gui.servers.status import EndpointState
from victor_gui.services import notes
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.provider_choices import ProviderPool, registry_choices, target_choice
from victor_gui.services.server_registry import ChatTarget, ServerRegistry
from victor_gui.services.settings_service import SettingsService
from victor_gui.storage import open_store
from victor_gui.storage.store import ConversationStore


@pytest.fixture(autouse=True)
def no_seed_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """None of the seed's server variables or keys: only what a test sets."""
    for spec in SPECS:
        for var in spec.key_env_vars + spec.host_env_vars:
            monkeypatch.delenv(var, raising=False)
    set_secret_store(None)
    yield


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ConversationStore]:
    s, _notice = await open_store(tmp_path / "data")
    yield s
    await s.close()


async def wait_for(predicate: Callable[[], object], limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def closed_defaults() -> dict[str, str]:
    """Env pointing every local kind at a closed port (so the test does not depend on what runs
    on this machine's default ports)."""
    return {"OLLAMA_HOST": f"127.0.0.1:{free_port()}", "VICTOR_LM_STUDIO_HOST": f"127.0.0.1:{free_port()}",
            "VICTOR_VLLM_HOST": f"127.0.0.1:{free_port()}"}


async def test_start_up_probes_each_endpoint_once_per_cycle(tmp_path: Path) -> None:
    """Before the registry, one start-up sent 3 rounds to the same server (probe_local's
    list_models, discovery's probe, the monitor's probe): 9 requests to a llama.cpp simulator.
    Now: the monitor's one probe (4 requests: /, /props, /slots, /v1/models), and the chat's
    model list comes from it."""
    with make_llamacpp(model="tiny-a") as sim:
        env = {"VICTOR_LLAMACPP_HOST": f"127.0.0.1:{sim.port}"}
        async with make_client(PROBE_TIMEOUTS) as client:
            registry = ServerRegistry(client, settings_path=tmp_path / "settings.yaml", env=env,
                                      scan_processes=False, gpu_detector=None, interval=30.0)
            await registry.start()
            await wait_for(lambda: any(t.working for t in registry.targets()))
            target = next(t for t in registry.targets() if t.working)
            models = registry.models_of(target)
            await asyncio.sleep(0.5)  # anything else start-up would send has been sent
            probes = dict(registry.monitor.probe_counts)
            await registry.close()
        paths = Counter(r.path for r in sim.requests)
    assert target.id == "llamacpp" and target.name == "llama.cpp"
    assert [m.id for m in models or []] == ["tiny-a"]  # what a list_models would have said
    assert probes[f"http://127.0.0.1:{sim.port}"] == 1
    assert paths["/v1/models"] == 1, paths
    assert len(sim.requests) == 4, paths  # one probe; was 9 (3 rounds) before the registry


async def test_hidden_default_endpoint_stays_hidden_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    lmstudio_default = "http://127.0.0.1:1234"
    async with make_client(PROBE_TIMEOUTS) as client:
        registry = ServerRegistry(client, settings_path=path, env={}, scan_processes=False,
                                  gpu_detector=None, interval=30.0)
        await registry.start()
        assert lmstudio_default in {m.key for m in registry.endpoints()}
        await registry.remove_endpoint(lmstudio_default)  # the dashboard's Remove on a default: hide
        assert lmstudio_default not in {m.key for m in registry.endpoints()}
        await registry.close()

        again = ServerRegistry(client, settings=SettingsService(path), env={}, scan_processes=False,
                               gpu_detector=None, interval=30.0)
        await again.start()
        keys = {m.key for m in again.endpoints()}
        watched = set(again.monitor.statuses)
        assert again.settings_service.settings.hidden_endpoints == [lmstudio_default]
        await again.close()
    assert lmstudio_default not in keys and lmstudio_default not in watched  # not even probed
    assert "http://127.0.0.1:11434" in keys  # the other defaults are still there
    assert "hidden_endpoints" in path.read_text()


async def test_hand_added_endpoints_first_and_down_defaults_fold(tmp_path: Path) -> None:
    with make_llamacpp() as sim:
        async with make_client(PROBE_TIMEOUTS) as client:
            registry = ServerRegistry(client, settings_path=tmp_path / "settings.yaml", env={},
                                      scan_processes=False, gpu_detector=None, interval=30.0)
            await registry.start()
            await registry.add_endpoint("Desk box", "llamacpp", sim.url)
            await wait_for(lambda: registry.target("endpoint:Desk box") is not None
                           and registry.target("endpoint:Desk box").working)  # type: ignore[union-attr]
            await wait_for(lambda: all(m.status is not None and m.state is not EndpointState.UNKNOWN
                                       for m in registry.endpoints()))
            targets = registry.targets()
            choices = registry_choices(registry, env={"OPENAI_API_KEY": "sk-test-1234567890"})
            folded = registry.not_running
            cards = [s.base_url for s in registry.statuses]
            await registry.close()
    assert targets[0].name == "Desk box" and targets[0].dot == "green"
    # Down default ports fold (only when nothing answers there: the test machine's own servers
    # would stay as cards).
    assert all(m.origin == "default" and m.state is EndpointState.DOWN for m in folded)
    assert not {m.key for m in folded} & set(cards)
    names = [c.display_name for c in choices]
    assert names[0] == "Desk box"
    assert names.index("OpenAI") < names.index("Anthropic")  # keyed cloud before keyless
    assert all(c.usable for c in choices[: names.index("Anthropic")])
    assert not any(c.usable for c in choices[names.index("Anthropic"):])


async def _group_registry(tmp_path: Path, client: httpx.AsyncClient, first: SimServer,
                          second: SimServer) -> ServerRegistry:
    registry = ServerRegistry(client, settings_path=tmp_path / "settings.yaml", env=closed_defaults(),
                              discover=False, gpu_detector=None, interval=30.0)
    await registry.start()
    await registry.settings_service.update(endpoints=[
        EndpointSetting(name="Desk llama.cpp", kind="llamacpp", url=first.url, group="Lab"),
        EndpointSetting(name="Lab box", kind="llamacpp", url=second.url, group="Lab"),
    ])

    def both_up() -> bool:
        target = registry.target("endpoint:Lab")
        return target is not None and all(m.state is EndpointState.UP for m in target.members)

    await wait_for(both_up)
    return registry


async def _session(store: ConversationStore, pool: ProviderPool, target: ChatTarget) -> ChatSession:
    choice = target_choice(target)
    conv = await store.create_conversation("failover")
    first = target.ordered[0]
    return ChatSession(store, conv.id, pool.get(choice), "sim-model",
                       fallback=pool.fallback(choice, "sim-model"), label=first.label)


async def test_group_fails_over_before_output_and_says_so(tmp_path: Path, store: ConversationStore) -> None:
    with make_llamacpp() as first, make_llamacpp() as second:
        second.script(Script(text="Lab box here."))
        async with make_client(PROBE_TIMEOUTS) as probe_client, make_client(LOCAL_TIMEOUTS) as client:
            registry = await _group_registry(tmp_path, probe_client, first, second)
            target = registry.target("endpoint:Lab")
            assert target is not None and [m.name for m in target.ordered] == ["Desk llama.cpp", "Lab box"]
            assert target.name == "Lab"
            pool = ProviderPool(client)
            session = await _session(store, pool, target)
            first.stop()  # killed; the monitor has not noticed yet (next probe in 30 s)
            result = await session.send("hello")
            messages = await store.get_messages(session.conversation_id)
            await session.close()
            await pool.close()
            await registry.close()
    assert result.status == "complete" and result.fell_back
    reply = next(m for m in messages if m.role == "assistant")
    assert reply.content == "Lab box here."
    assert reply.meta is not None and reply.meta["answered_by"] == f"Lab box ({second.url})"
    note = next(m for m in messages if m.is_note and notes.kind_of(m) == notes.FAILOVER)
    assert note.content == (f"Desk llama.cpp ({first.url}) did not answer (connection refused); "
                            f"Lab box ({second.url}) answered.")
    assert len(second.chat_requests()) == 1


async def test_group_keeps_partial_after_output_and_does_not_resend(tmp_path: Path,
                                                                    store: ConversationStore) -> None:
    with make_llamacpp() as first, make_llamacpp() as second:
        first.script(Script(text="Partial answer that breaks", fault=Fault.TRUNCATED, pieces=6, fail_after=2))
        async with make_client(PROBE_TIMEOUTS) as probe_client, make_client(LOCAL_TIMEOUTS) as client:
            registry = await _group_registry(tmp_path, probe_client, first, second)
            target = registry.target("endpoint:Lab")
            assert target is not None
            pool = ProviderPool(client)
            session = await _session(store, pool, target)
            result = await session.send("hello")
            messages = await store.get_messages(session.conversation_id)
            await session.close()
            await pool.close()
            await registry.close()
    assert result.status == "error" and not result.fell_back
    reply = next(m for m in messages if m.role == "assistant")
    assert reply.content and "Partial answer that breaks".startswith(reply.content)
    assert second.chat_requests() == []  # no resend to the next endpoint once output began
    assert not any(notes.kind_of(m) == notes.FAILOVER for m in messages)


async def test_a_new_key_or_an_edit_reaches_the_next_reply(tmp_path: Path) -> None:
    """The pool builds a hand-added endpoint's provider from its settings and its keyring entries;
    a key saved anew (settings.yaml untouched) or an edited header is used by the next request,
    without a restart."""
    from victor_gui.config.secrets import endpoint_key_name

    keyring = {endpoint_key_name("Desk"): "sk-old-0123456789abcdef"}
    with make_llamacpp(api_key="sk-new-0123456789abcdef") as sim:
        sim.script(Script(text="Hello."))
        async with make_client(PROBE_TIMEOUTS) as probe_client, make_client(LOCAL_TIMEOUTS) as client:
            registry = ServerRegistry(probe_client, settings_path=tmp_path / "settings.yaml",
                                      env=closed_defaults(), discover=False, gpu_detector=None,
                                      interval=30.0, secrets=keyring.get)
            await registry.start()
            await registry.settings_service.update(endpoints=[
                EndpointSetting(name="Desk", kind="llamacpp", url=sim.url, headers={"X-Team": "a"})])
            await wait_for(lambda: registry.target("endpoint:Desk") is not None)
            pool = ProviderPool(client, secrets=keyring.get)
            try:
                choice = target_choice(registry.target("endpoint:Desk"))  # type: ignore[arg-type]
                await pool.prepare(choice)
                old = pool.get(choice)
                assert old.api_key == "sk-old-0123456789abcdef"
                keyring[endpoint_key_name("Desk")] = "sk-new-0123456789abcdef"  # saved in Settings
                await pool.prepare(choice)
                fresh = pool.get(choice)
                assert fresh is not old and fresh.api_key == "sk-new-0123456789abcdef"
                await pool.prepare(choice)
                assert pool.get(choice) is fresh  # nothing changed: the same provider
                reply = await fresh.chat([Message(role="user", content="hi")], model="sim-model")
                assert reply.content == "Hello."
                await registry.settings_service.update(endpoints=[
                    EndpointSetting(name="Desk", kind="llamacpp", url=sim.url, headers={"X-Team": "b"})])
                await wait_for(lambda: registry.target("endpoint:Desk").members[0].setting.headers  # type: ignore[union-attr]
                               == {"X-Team": "b"})
                choice = target_choice(registry.target("endpoint:Desk"))  # type: ignore[arg-type]
                await pool.prepare(choice)
                edited = pool.get(choice)
                assert edited is not fresh
                sim.script(Script(text="Again."))
                await edited.chat([Message(role="user", content="hi")], model="sim-model")
                assert sim.chat_requests()[-1].headers.get("x-team") == "b"
            finally:
                await pool.close()
                await registry.close()
