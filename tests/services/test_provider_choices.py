"""Provider drop-down data and the provider pool, against real sockets on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.base import SimServer, free_port
from tests.support.recording import make_llamacpp
from victor_gui.errors import ProviderConnectionError, ProviderUnavailableError
from victor_gui.providers.catalog import SPECS
from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
from victor_gui.providers.keys import set_secret_store
from victor_gui.services.provider_choices import ProviderPool, probe_local, provider_choices


def closed_env() -> dict[str, str]:
    """No keys; every local server address on a port nothing listens on."""
    return {var: f"127.0.0.1:{free_port()}"
            for var in ("OLLAMA_HOST", "VICTOR_LM_STUDIO_HOST", "VICTOR_VLLM_HOST", "VICTOR_LLAMACPP_HOST")}


@pytest.fixture(autouse=True)
def _no_keyring() -> Iterator[None]:
    set_secret_store(None)
    yield


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with make_llamacpp() as server:
        yield server


def test_local_first_and_keys_reported() -> None:
    env = closed_env() | {"OPENAI_API_KEY": "sk-test-123456789"}
    choices = provider_choices(env)
    assert len(choices) == len({s.name for s in SPECS})
    assert [c.is_local for c in choices[:4]] == [True] * 4
    assert not any(c.is_local for c in choices[4:])
    by_name = {c.name: c for c in choices}
    assert by_name["openai"].key_source == "env:OPENAI_API_KEY" and by_name["openai"].usable
    assert by_name["anthropic"].label == "Anthropic — no API key" and not by_name["anthropic"].usable
    assert by_name["llamacpp"].base_url == env["VICTOR_LLAMACPP_HOST"].join(("http://", "/v1"))
    assert by_name["ollama"].label == "Ollama (local)"


async def test_probe_finds_the_server_that_answers(sim: SimServer) -> None:
    env = closed_env() | {"VICTOR_LLAMACPP_HOST": f"127.0.0.1:{sim.port}"}
    sim.models = ["a", "b"]
    async with make_client(LOCAL_TIMEOUTS) as client:
        pool = ProviderPool(client)
        results = await probe_local(pool, provider_choices(env))
        await pool.close()
    assert [m.id for m in results["llamacpp"]] == ["a", "b"]  # type: ignore[union-attr]
    assert isinstance(results["vllm"], ProviderConnectionError)
    assert isinstance(results["lmstudio"], ProviderConnectionError)
    # Nothing on Ollama's port; while its wire protocol is not on this branch, that is said as
    # a typed error too (never an ImportError escaping the probe).
    assert isinstance(results["ollama"], (ProviderUnavailableError, ProviderConnectionError))


async def test_pool_builds_each_provider_once_with_the_shared_client(sim: SimServer) -> None:
    env = {"VICTOR_LLAMACPP_HOST": f"127.0.0.1:{sim.port}"}
    choice = next(c for c in provider_choices(env) if c.name == "llamacpp")
    async with make_client(LOCAL_TIMEOUTS) as client:
        pool = ProviderPool(client)
        first = pool.get(choice)
        assert pool.get(choice) is first
        assert first.http is client
        await pool.close()
        assert not client.is_closed  # the pool never closes a client it did not build
