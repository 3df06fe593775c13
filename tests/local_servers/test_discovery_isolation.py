"""One misbehaving server never stops discovery of the others (issue 16, finding 8).

Real servers on loopback: a healthy Ollama simulator beside a hostile Ollama look-alike whose
``/api/ps`` says ``size: 1e400`` (an OverflowError in the probe before the fix, which sank the
whole start-up sweep: no endpoint listed, the status stuck at "Looking for local servers…").
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import ollama
from tests.servers.hostile import Raw, reply, serving
from victor_gui.servers import probe
from victor_gui.servers.discovery import discover
from victor_gui.servers.health import HealthMonitor
from victor_gui.servers.status import EndpointState, ServerKind
from victor_gui.services.endpoints_service import EndpointsService

HOSTILE = {
    "/": reply("Ollama is running"),
    "/api/version": reply({"version": "0.5.7"}),
    "/api/ps": reply(Raw('{"models":[{"name":"q","size":1e400}]}')),
    "/api/tags": reply({"models": [1]}),
}


async def test_discovery_lists_the_healthy_server_beside_a_hostile_one(client: httpx.AsyncClient) -> None:
    with serving(HOSTILE) as bad, ollama.make_server() as good:
        found = await discover(client, [bad.url, good.url], env={}, include_defaults=False,
                               scan_processes=False)
    by_url = {s.base_url: s for s in found}
    assert (by_url[good.url].kind, by_url[good.url].state) == (ServerKind.OLLAMA, EndpointState.UP)
    assert by_url[bad.url].state is EndpointState.ERROR
    assert "/api/ps: models[0].size is inf" in by_url[bad.url].diagnosis


async def test_a_probe_that_raises_is_that_endpoints_error_logged_once(
        client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Isolation itself, whatever the bug: the probe of one endpoint raises an unforeseen error."""
    real_inspect = probe.inspect

    async def buggy(client: httpx.AsyncClient, base_url: str, fp: Any, **kw: Any) -> Any:
        if base_url == bad_url:
            raise TypeError("'int' object is not subscriptable")
        return await real_inspect(client, base_url, fp, **kw)

    monkeypatch.setattr(probe, "inspect", buggy)
    probe._logged.clear()
    with serving(HOSTILE) as bad, ollama.make_server() as good:
        bad_url = bad.url
        caplog.set_level(logging.ERROR, logger="victor_gui.servers.probe")
        for _ in range(3):  # the monitor probes every few seconds: one traceback, not one per sweep
            found = await discover(client, [bad.url, good.url], env={}, include_defaults=False,
                                   scan_processes=False)
    by_url = {s.base_url: s for s in found}
    assert by_url[good.url].state is EndpointState.UP
    assert (by_url[bad_url].state, by_url[bad_url].reason) == (EndpointState.ERROR, "probe_error")
    assert "TypeError" in by_url[bad_url].diagnosis
    assert len([r for r in caplog.records if bad_url in r.getMessage()]) == 1


async def test_the_monitor_marks_a_raising_probe_error_and_backs_off(
        client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("models")

    monkeypatch.setattr("victor_gui.servers.health.probe_endpoint", broken)
    monitor = HealthMonitor(client, ["http://127.0.0.1:9"], interval=1.0)
    statuses = await monitor.refresh_now()
    status = statuses["http://127.0.0.1:9"]
    assert (status.state, status.reason) == (EndpointState.ERROR, "probe_error")
    assert status.next_probe_in == 1.0 and status.consecutive_failures == 1


async def test_start_up_discovery_moves_on_with_a_hostile_server(tmp_path: Path) -> None:
    """The service behind the status line: discovery ends (``discovering`` False, an
    ``endpoints`` event, no ``error``) and the healthy Ollama is watched."""
    events: list[tuple[str, Any]] = []
    with serving(HOSTILE) as bad, ollama.make_server() as good:
        env = {"OLLAMA_HOST": good.url, "VICTOR_LLAMACPP_HOST": bad.url}
        finder = functools.partial(discover, env=env, include_defaults=False, scan_processes=False)
        from victor_gui.providers.http import PROBE_TIMEOUTS, make_client

        async with make_client(PROBE_TIMEOUTS) as client:
            service = EndpointsService(client, settings_path=tmp_path / "settings.yaml", discover_fn=finder,
                                       gpu_detector=None, interval=60.0)
            service.subscribe(lambda event, payload: events.append((event, payload)))
            try:
                await service.start()
                for _ in range(500):
                    watched = {s.base_url for s in service.statuses}
                    if good.url in watched or any(e == "error" for e, _ in events):
                        break
                    await asyncio.sleep(0.01)
                assert [p for e, p in events if e == "error"] == []
                assert good.url in {s.base_url for s in service.statuses}
                assert not service.discovering
            finally:
                await service.close()


@pytest.mark.parametrize("state", list(EndpointState))
def test_every_state_has_a_dot_a_rank_and_a_doctor_word(state: EndpointState) -> None:
    """The 'error' state reaches the picker and the doctor: each lookup by state must know it
    (the picker sorted group members with ``_RANK[state]``: a KeyError for a new state)."""
    from victor_gui.cli.servers import STATE_MARK
    from victor_gui.services import server_registry

    assert state in server_registry._DOTS and state in server_registry._RANK and state in STATE_MARK


async def test_the_start_up_model_probe_lists_the_healthy_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """``probe_local`` (behind the chat pane's "Looking for local servers…"): a hostile Ollama
    whose /api/tags is ``{"models": [1]}`` is its typed error, and a provider whose listing
    raises something unforeseen is a ProviderError too; the healthy llama.cpp is listed."""
    from tests.servers import llamacpp
    from victor_gui.errors import InvalidResponseError, ProviderError
    from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
    from victor_gui.providers.protocols.openai_compat import OpenAICompatProvider
    from victor_gui.services.provider_choices import ProviderPool, probe_local, provider_choices

    real = OpenAICompatProvider.list_models

    async def vllm_bug(self: OpenAICompatProvider) -> Any:
        if self.name == "vllm":
            raise TypeError("'int' object is not subscriptable")
        return await real(self)

    monkeypatch.setattr(OpenAICompatProvider, "list_models", vllm_bug)
    with serving({"/api/tags": reply({"models": [1]})}) as bad, llamacpp.make_server() as good:
        env = {"OLLAMA_HOST": bad.url, "VICTOR_LLAMACPP_HOST": good.url, "VICTOR_VLLM_HOST": good.url,
               "VICTOR_LM_STUDIO_HOST": good.url}
        async with make_client(LOCAL_TIMEOUTS) as client:
            pool = ProviderPool(client)
            try:
                results = await probe_local(pool, provider_choices(env))
            finally:
                await pool.close()
    assert isinstance(results["ollama"], InvalidResponseError)
    assert "/api/tags: models[0] is a number, not an object" in results["ollama"].message
    assert isinstance(results["vllm"], ProviderError) and "TypeError" in results["vllm"].message
    assert isinstance(results["llamacpp"], list) and results["llamacpp"]
