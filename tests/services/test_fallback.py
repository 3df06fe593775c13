"""Fallback chains against real simulators: a dead port, then a server failing with 500 on
every retry, then one that answers; never once output has begun; never on auth errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.providers import ollama_support
from tests.providers.openai_sims import make_provider, running
from tests.servers import ollama
from tests.servers.base import Fault, Script, free_port
from victor_gui.config.profiles import Profile
from victor_gui.errors import ProviderConnectionError, ProviderServerError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.services.chat_session import ChatSession, ReplyEvent
from victor_gui.services.fallback import Candidate, chain_from_profile, may_fall_back
from victor_gui.storage import open_store


async def test_dead_port_then_500s_then_an_answer(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    conv = await store.create_conversation("fallback")
    events: list[ReplyEvent] = []
    with running("vllm") as vllm, ollama.make_server() as oll:
        dead = ProviderRegistry.create("llamacpp", base_url=f"http://127.0.0.1:{free_port()}/v1",
                                       retry_policy=make_provider("vllm", vllm).retry_policy)
        vllm.script(Script(fault=Fault.SERVER_ERROR, repeat=2))  # 3 answers: 1 try + 2 retries
        oll.script(Script(text="Answer from Ollama."))
        session = ChatSession(store, conv.id, dead, "sim-model", on_event=events.append, fallback=[
            Candidate.of(make_provider("vllm", vllm), "sim-model"),
            Candidate.of(ollama_support.make_provider(oll.url), "sim-model"),
        ])
        result = await session.send("hello?")
        await session.close()
    assert result.status == "complete" and result.fell_back and result.provider == "ollama"
    assert len(vllm.chat_requests()) == 3 and len(oll.chat_requests()) == 1
    m = await store.get_message(result.message_id)
    assert m is not None and m.content == "Answer from Ollama." and m.status == "complete"
    assert (m.provider, m.endpoint) == ("ollama", oll.url) and m.model and m.model.startswith("sim-model")
    assert m.meta is not None
    fallback = m.meta["fallback"]
    assert fallback["reason"] == "connection"
    assert [(a["provider"], a["error"]) for a in fallback["attempts"]] == [
        ("llamacpp", "connection"), ("vllm", "server")]
    assert fallback["attempts"][1]["endpoint"] == vllm.url + "/v1"
    assert m.cost == 0.0  # a local provider answered
    notices = [e.text for e in events if e.kind == "fallback"]
    # Display names, not internal ids (the stored attempts keep the provider names).
    assert notices == [
        "llama.cpp · sim-model could not answer (connection refused); trying vLLM · sim-model.",
        "vLLM · sim-model could not answer (server error); trying Ollama · sim-model."]
    # One stored note says who failed, why, and who answered (the window and the CLI show it).
    stored = await store.get_messages(conv.id)
    (note,) = [x for x in stored if x.is_note]
    assert note.content == (
        f"llama.cpp · sim-model at {dead.base_url.split('//')[1].removesuffix('/v1')} did not answer "
        "(connection refused); "
        f"vLLM · sim-model at {vllm.url.split('//')[1]} did not answer (server error); "
        f"Ollama · {m.model} at {oll.url.split('//')[1]} answered.")
    await store.close()


async def test_no_fallback_once_output_began(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    conv = await store.create_conversation("broken")
    with running("llamacpp") as llama, ollama.make_server() as oll:
        llama.script(Script(text="one two three four", pieces=4, fault=Fault.TRUNCATED, fail_after=2))
        session = ChatSession(store, conv.id, make_provider("llamacpp", llama), "sim-model",
                              fallback=[Candidate.of(ollama_support.make_provider(oll.url), "sim-model")])
        result = await session.send("go")
        await session.close()
    assert result.status == "error" and not result.fell_back and result.provider == "llamacpp"
    assert oll.chat_requests() == []
    m = await store.get_message(result.message_id)
    assert m is not None and m.status == "error" and m.provider == "llamacpp" and m.error
    assert m.content and "one two three four".startswith(m.content) and m.content != "one two three four"
    assert m.meta is None or "fallback" not in m.meta
    await store.close()


@pytest.mark.parametrize("fault", [Fault.UNAUTHORIZED, Fault.CONTEXT_OVERFLOW])
async def test_auth_and_context_errors_do_not_fall_back(fault: str, tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    conv = await store.create_conversation("no")
    with running("llamacpp") as llama, running("vllm") as vllm:
        llama.script(Script(fault=fault))
        session = ChatSession(store, conv.id, make_provider("llamacpp", llama), "sim-model",
                              fallback=[Candidate.of(make_provider("vllm", vllm), "sim-model")])
        result = await session.send("secret prompt")
        await session.close()
    assert result.status == "error" and not result.fell_back
    assert vllm.chat_requests() == []  # the prompt went nowhere else
    await store.close()


async def test_every_candidate_failing_records_all_attempts(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    conv = await store.create_conversation("all down")
    with running("vllm") as vllm:
        vllm.script(Script(fault=Fault.SERVER_ERROR, repeat=20))
        policy = make_provider("vllm", vllm).retry_policy
        dead = ProviderRegistry.create("llamacpp", base_url=f"http://127.0.0.1:{free_port()}/v1",
                                       retry_policy=policy)
        session = ChatSession(store, conv.id, dead, "sim-model",
                              fallback=[Candidate.of(make_provider("vllm", vllm), "sim-model")])
        result = await session.send("anyone?")
        await session.close()
    assert result.status == "error" and isinstance(result.error, ProviderServerError)
    m = await store.get_message(result.message_id)
    assert m is not None and m.status == "error" and m.meta is not None
    assert [a["provider"] for a in m.meta["fallback"]["attempts"]] == ["llamacpp"]
    assert m.provider == "vllm"  # the last one asked is the one whose error is shown
    await store.close()


def test_fallback_rules() -> None:
    refused = ProviderConnectionError("refused", "x")
    assert may_fall_back(refused, output_began=False)
    assert not may_fall_back(refused, output_began=True)
    assert not may_fall_back(ProviderConnectionError("reset", "x", partial_content="Hel"), output_began=False)


def test_chain_from_profile_builds_providers_lazily() -> None:
    built: list[tuple[str, dict[str, object]]] = []

    def create(name: str, **kwargs: object) -> BaseProvider:
        built.append((name, kwargs))
        return ProviderRegistry.create(name, **kwargs)  # type: ignore[arg-type]

    profile = Profile.model_validate({
        "provider": "anthropic", "model": "claude-sonnet-4-20250514",
        "fallback": [{"provider": "openai", "model": "gpt-4o"},
                     {"provider": "ollama", "base_url": "http://127.0.0.1:1"}]})
    chain = chain_from_profile(profile, create=create)
    assert [(c.provider_name, c.model) for c in chain] == [
        ("openai", "gpt-4o"), ("ollama", "claude-sonnet-4-20250514")]
    assert built == []  # nothing built until needed
    provider = chain[1].provider()
    assert built == [("ollama", {"base_url": "http://127.0.0.1:1"})] and provider.name == "ollama"




async def test_session_from_profile_follows_its_chain_and_cost_setting(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    conv = await store.create_conversation("profile")
    with running("vllm") as vllm:
        profile = Profile.model_validate({
            "provider": "llamacpp", "model": "sim-model", "base_url": f"http://127.0.0.1:{free_port()}/v1",
            "temperature": 0.2, "max_tokens": 256, "track_costs": False,
            "fallback": [{"provider": "vllm", "base_url": vllm.url + "/v1"}]})
        policy = make_provider("vllm", vllm).retry_policy

        def create(name: str, **kwargs: object) -> BaseProvider:
            return ProviderRegistry.create(name, retry_policy=policy, **kwargs)  # type: ignore[arg-type]

        session = ChatSession.from_profile(store, conv.id, profile, create=create)
        vllm.script(Script(text="from the fallback"))
        result = await session.send("hi")
        await session.close()
    assert result.status == "complete" and result.provider == "vllm" and result.fell_back
    body = vllm.chat_requests()[-1].body
    assert body["temperature"] == 0.2 and body["max_tokens"] == 256 and body["model"] == "sim-model"
    m = await store.get_message(result.message_id)
    assert m is not None and m.cost is None  # track_costs: false stores no cost
    await store.close()
