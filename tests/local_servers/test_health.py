"""The health monitor against real simulators: states, backoff, change events, facts."""

from __future__ import annotations

import asyncio

import httpx

from tests.local_servers.foreign import slow_llamacpp
from tests.servers import llamacpp, lmstudio, ollama, vllm
from tests.servers.base import free_port
from victor_gui.servers.health import HealthMonitor, backoff_delay
from victor_gui.servers.models import OllamaModels
from victor_gui.servers.probe import probe_endpoint
from victor_gui.servers.status import Endpoint, EndpointState, EndpointStatus, ServerKind


async def wait_for(predicate, limit_s: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(1.0, n, 10.0) for n in range(6)] == [1.0, 1.0, 2.0, 4.0, 8.0, 10.0]


async def test_events_only_on_change_and_down_up_transitions(client: httpx.AsyncClient) -> None:
    server = ollama.make_server().start()
    port = server.port
    events: list[EndpointStatus] = []
    monitor = HealthMonitor(client, [server.url], interval=0.02, max_interval=0.05)
    unsubscribe = monitor.subscribe(events.append)
    monitor.start()
    try:
        await wait_for(lambda: monitor.probe_counts[server.url] >= 6)
        assert [e.state for e in events] == [EndpointState.UP]  # six probes, one event
        server.stop()
        await wait_for(lambda: events[-1].state is EndpointState.DOWN)
        down = events[-1]
        assert down.kind is ServerKind.OLLAMA and down.reason == "refused_after_seen"
        assert "stopped answering" in down.diagnosis and "ollama serve" in down.diagnosis
        server = ollama.make_server(port=port).start()
        await wait_for(lambda: events[-1].state is EndpointState.UP)
        assert [e.state for e in events] == [EndpointState.UP, EndpointState.DOWN, EndpointState.UP]
        unsubscribe()
        server.stop()
        await asyncio.sleep(0.2)
        assert len(events) == 3  # unsubscribed: no more events
    finally:
        await monitor.stop()
        server.stop()


async def test_backoff_while_down(client: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monitor = HealthMonitor(client, [url], interval=0.02, max_interval=0.08)
    monitor.start()
    await asyncio.sleep(0.5)
    await monitor.stop()
    count = monitor.probe_counts[url]
    # Without backoff ~25 probes; with 0.02, 0.04, 0.08, 0.08, ... about 7.
    assert 3 <= count <= 10, count
    status = monitor.status(url)
    assert status is not None and status.state is EndpointState.DOWN
    assert status.consecutive_failures == count and status.next_probe_in == 0.08


async def test_refresh_now_resets_backoff(client: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monitor = HealthMonitor(client, [url], interval=0.02, max_interval=5.0)
    for _ in range(5):
        await monitor.refresh_now()
    status = monitor.status(url)
    assert status is not None and status.consecutive_failures == 1 and status.next_probe_in == 0.02


async def test_vllm_refusing_after_being_seen_is_down_or_loading(client: httpx.AsyncClient) -> None:
    server = vllm.make_server(metrics=True).start()
    endpoint = Endpoint(server.url, ServerKind.VLLM)
    try:
        seen = await probe_endpoint(client, endpoint)
        assert seen.kind is ServerKind.VLLM and seen.kv_cache_usage == 0.01
        assert seen.models[0].context_length == 32768
    finally:
        server.stop()  # vLLM restarting: the port refuses connections until the model is loaded
    gone = await probe_endpoint(client, endpoint, previous=seen)
    assert gone.state is EndpointState.DOWN and gone.kind is ServerKind.VLLM
    assert "down, or restarting and loading its model" in gone.diagnosis


async def test_slow_server_is_degraded(client: httpx.AsyncClient) -> None:
    with slow_llamacpp(0.3) as server:
        status = await probe_endpoint(client, Endpoint(server.url), slow_s=0.2)
    assert (status.kind, status.state, status.reason) == (ServerKind.LLAMACPP, EndpointState.DEGRADED, "slow")
    assert status.diagnosis == "slow: 0.3 s to answer"


async def test_dead_engine_is_degraded(client: httpx.AsyncClient) -> None:
    with vllm.make_server(engine_dead=True) as server:
        status = await probe_endpoint(client, Endpoint(server.url))
    assert (status.state, status.reason, status.http_status) == (EndpointState.DEGRADED, "engine_dead", 503)
    assert "engine has died" in status.diagnosis


async def test_latency_history_is_a_bounded_ring(client: httpx.AsyncClient) -> None:
    with llamacpp.make_server() as server:
        status = None
        for _ in range(7):
            status = await probe_endpoint(client, Endpoint(server.url), previous=status, history_len=5)
    assert status is not None and len(status.latency_history) == 5
    assert status.latency_history[-1] == status.latency_s


async def test_loaded_models_with_memory_and_context(client: httpx.AsyncClient) -> None:
    with ollama.make_server() as ol, lmstudio.make_server(models=["qwen-7b", "llama-3b"]) as lms, \
            llamacpp.make_server(n_ctx=8192) as lc:
        monitor = HealthMonitor(client, [ol.url, lms.url, lc.url])
        first = await monitor.refresh_now()
        assert first[ol.url].models == ()  # nothing loaded yet
        await OllamaModels(client, ol.url).preload("sim-model", keep_alive="10m")
        events: list[EndpointStatus] = []
        monitor.subscribe(events.append)
        statuses = await monitor.refresh_now()
    (loaded,) = statuses[ol.url].models
    assert loaded.name == "sim-model:latest" and loaded.context_length == 4096
    assert loaded.size_bytes and loaded.vram_bytes == loaded.size_bytes and loaded.gpu_fraction == 1.0
    assert [e.base_url for e in events] == [ol.url]  # only Ollama changed
    (lm_model,) = statuses[lms.url].models
    assert (lm_model.name, lm_model.context_length, lm_model.max_context_length) == ("qwen-7b", 8192, 131072)
    assert statuses[lms.url].detail("available_models") == 2
    (lc_model,) = statuses[lc.url].models
    assert (lc_model.context_length, lc_model.size_bytes) == (8192, 4683074048)


async def test_monitor_add_and_remove_endpoints_while_running(client: httpx.AsyncClient) -> None:
    with llamacpp.make_server() as server:
        monitor = HealthMonitor(client, interval=0.02)
        monitor.start()
        key = monitor.add_endpoint(server.url + "/v1/")
        assert key == server.url
        await wait_for(lambda: (s := monitor.status(server.url)) is not None and s.state is EndpointState.UP)
        await monitor.remove_endpoint(server.url)
        assert monitor.statuses == {}
        await monitor.stop()


async def test_a_failing_subscriber_does_not_stop_the_monitor(client: httpx.AsyncClient) -> None:
    seen: list[EndpointStatus] = []

    def broken(status: EndpointStatus) -> None:
        raise RuntimeError("observer bug")

    with llamacpp.make_server() as server:
        monitor = HealthMonitor(client, [server.url])
        monitor.subscribe(broken)
        monitor.subscribe(seen.append)
        await monitor.refresh_now()
    assert len(seen) == 1 and seen[0].state is EndpointState.UP


async def test_llamacpp_router_mode_lists_model_states(client: httpx.AsyncClient) -> None:
    from victor_gui.servers.models import LlamaCppModels

    with llamacpp.make_server(router=True, models=["qwen-7b", "gemma-2b"], router_load_s=0.05) as server:
        idle = await probe_endpoint(client, Endpoint(server.url))
        assert idle.detail("router_mode") is True and idle.loaded_models == ()
        # Every model the router offers is listed (the chat picker shows them all), none loaded.
        assert [(m.name, m.status, m.loaded) for m in idle.models] == [
            ("qwen-7b", "unloaded", False), ("gemma-2b", "unloaded", False)]
        assert "no model loaded" in idle.diagnosis
        await LlamaCppModels(client, server.url).load("gemma-2b")
        await asyncio.sleep(0.2)
        busy = await probe_endpoint(client, Endpoint(server.url), previous=idle)
    assert [(m.name, m.status) for m in busy.loaded_models] == [("gemma-2b", "loaded")]
    assert [(m.name, m.status) for m in busy.models] == [("qwen-7b", "unloaded"), ("gemma-2b", "loaded")]


def test_prometheus_text_minimal_parse() -> None:
    from victor_gui.servers.inspect import parse_prometheus

    text = (
        "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage.\n"
        "# TYPE vllm:gpu_cache_usage_perc gauge\n"
        'vllm:gpu_cache_usage_perc{model_name="m",engine="0"} 0.25\n'
        'vllm:gpu_cache_usage_perc{model_name="m",engine="1"} 0.5 1700000000000\n'
        'vllm:cache_config_info{block_size="16",num_gpu_blocks="2048"} 1.0\n'
        "not a sample line\n"
        "llamacpp:n_tokens_max 19\n"
    )
    samples = parse_prometheus(text)
    assert [v for _, v in samples["vllm:gpu_cache_usage_perc"]] == [0.25, 0.5]
    assert samples["vllm:cache_config_info"][0][0] == {"block_size": "16", "num_gpu_blocks": "2048"}
    assert samples["llamacpp:n_tokens_max"] == [({}, 19.0)]


async def test_lmstudio_rest_v1_load_shows_in_the_status(client: httpx.AsyncClient) -> None:
    from victor_gui.servers.models import LMStudioModels

    with lmstudio.make_server(rest_v1=True, models=["qwen-7b", "llama-3b"]) as server:
        before = await probe_endpoint(client, Endpoint(server.url))
        await LMStudioModels(client, server.url).load("llama-3b", context_length=32768)
        after = await probe_endpoint(client, Endpoint(server.url), previous=before)
    assert before.detail("rest_api_v1") is True
    assert [(m.name, m.context_length) for m in after.models] == [("qwen-7b", 8192), ("llama-3b", 32768)]
    assert before.change_key() != after.change_key()
