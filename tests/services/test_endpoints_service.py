"""EndpointsService without a window: discovery feeding the monitor, settings.yaml problems
reported (never fatal), and a close that lands while start-up is still reading settings."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from tests.servers import llamacpp
from tests.servers.base import free_port
from victor_gui.providers.http import PROBE_TIMEOUTS, make_client
from victor_gui.servers.discovery import discover
from victor_gui.servers.status import EndpointState, ServerKind
from victor_gui.services.endpoints_service import EndpointsService


async def until(predicate, limit_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + limit_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_discovery_adds_what_it_finds_and_the_monitor_watches_it(tmp_path: Path) -> None:
    events: list[str] = []
    with llamacpp.make_server() as sim:
        env = {"VICTOR_LLAMACPP_HOST": f"127.0.0.1:{sim.port}", "OLLAMA_HOST": f"127.0.0.1:{free_port()}"}
        finder = functools.partial(discover, env=env, include_defaults=False, scan_processes=False)
        async with make_client(PROBE_TIMEOUTS) as client:
            service = EndpointsService(client, settings_path=tmp_path / "settings.yaml", discover_fn=finder,
                                       gpu_detector=None, interval=0.2)
            service.subscribe(lambda event, payload: events.append(event))
            await service.start()
            base = f"http://127.0.0.1:{sim.port}"
            await until(lambda: any(s.base_url == base and s.state is EndpointState.UP
                                    for s in service.statuses))
            status = service.monitor.status(base)
            assert status is not None and status.kind is ServerKind.LLAMACPP
            assert status.source == "env:VICTOR_LLAMACPP_HOST"
            assert service.setting_for(base) is None  # found, not configured: nothing saved
            assert not (tmp_path / "settings.yaml").exists()
            assert "endpoints" in events and "status" in events
            await service.close()


async def test_a_broken_settings_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    text = "endpoints:\n  - name: x\n    kind: not-a-kind\n    url: http://127.0.0.1:1\n"
    path.write_text(text)
    errors: list[str] = []
    async with make_client(PROBE_TIMEOUTS) as client:
        service = EndpointsService(client, settings_path=path, discover_fn=None, gpu_detector=None)
        service.subscribe(lambda event, payload: errors.append(payload) if event == "error" else None)
        await service.start()
        assert errors and "settings.yaml:3: endpoints.0.kind" in errors[0]
        assert service.configured == [] and service.statuses == []
        assert path.read_text() == text
        await service.close()


async def test_close_during_start_leaves_nothing_running(tmp_path: Path) -> None:
    async with make_client(PROBE_TIMEOUTS) as client:
        service = EndpointsService(client, settings_path=tmp_path / "settings.yaml", discover_fn=None,
                                   gpu_detector=None)
        starting = asyncio.ensure_future(service.start())
        await asyncio.sleep(0)  # start() is now waiting for the settings file (a worker thread)
        await service.close()
        await starting
        assert service._ticker is None and not service.monitor._tasks


async def test_adding_an_endpoint_probes_it_alone(tmp_path: Path) -> None:
    """A new endpoint is probed at once, and only it: the others keep their own schedule."""
    with llamacpp.make_server() as first, llamacpp.make_server() as second:
        async with make_client(PROBE_TIMEOUTS) as client:
            service = EndpointsService(client, settings_path=tmp_path / "settings.yaml", discover_fn=None,
                                       gpu_detector=None, interval=60.0)
            await service.start()
            try:
                await service.add_endpoint("first", "llamacpp", first.url)
                await until(lambda: service.monitor.probe_counts.get(first.url) == 1)
                await service.add_endpoint("second", "llamacpp", second.url)
                status = service.monitor.status(second.url)
                assert status is not None and status.state is EndpointState.UP
                assert service.monitor.probe_counts[first.url] == 1
            finally:
                await service.close()
