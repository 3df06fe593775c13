"""Replicate against the simulator: predictions created, waited for or polled, streamed over
SSE, cancelled when nobody reads them; fault matrix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers import cloud_faults as cf
from tests.providers.cloud_sims import FAST, Sleeps, collect, posts, text_of, wait_for
from tests.servers.base import Script, SimServer
from tests.servers.replicate import make_server
from victor_gui.errors import ContextLengthExceededError, MissingAPIKeyError, ProviderServerError
from victor_gui.providers.protocols.replicate import ReplicateProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message, ToolCall, ToolDefinition

TOKEN = "r8_simulatortoken0000000000001"
MODEL = "meta/sim-llama-instruct"


@pytest.fixture
def server() -> Iterator[SimServer]:
    with make_server(api_key=TOKEN) as srv:
        yield srv


def replicate(server: SimServer, **kw: object) -> ReplicateProvider:
    p = ProviderRegistry.create("replicate", api_key=TOKEN, base_url=server.url + "/v1", **kw)
    assert isinstance(p, ReplicateProvider)
    return p


async def test_chat_waits_and_flattens_the_conversation(server: SimServer) -> None:
    provider = replicate(server)
    history = [
        Message(role="system", content="Be terse."),
        Message(role="user", content="Hi"),
        Message(role="assistant", content="Hello.", tool_calls=[ToolCall(id="c1", name="now")]),
        Message(role="tool", tool_call_id="c1", name="now", content="12:00"),
        Message(role="user", content="Time?"),
    ]
    reply = await provider.chat(
        history, model=MODEL, max_tokens=99, temperature=0.2, tools=[ToolDefinition(name="now")]
    )
    assert reply.content == "Hello from the simulator."
    assert reply.usage is not None and reply.usage.prompt_tokens == 12
    assert "tools_omitted" in reply.metadata
    [req] = posts(server)
    assert req.path == "/v1/models/meta/sim-llama-instruct/predictions"
    assert req.headers["authorization"] == f"Bearer {TOKEN}" and req.headers["prefer"] == "wait=60"
    assert req.body["input"] == {
        "prompt": "User: Hi\n\nAssistant: Hello.\n[called now({})]\n\nTool result (now): 12:00\n\n"
        "User: Time?\n\nAssistant:",
        "system_prompt": "Be terse.",
        "max_tokens": 99,
        "temperature": 0.2,
    }
    await provider.close()


async def test_chat_polls_a_prediction_still_running() -> None:
    with make_server(api_key=TOKEN, slow=True) as server:
        provider = ProviderRegistry.create("replicate", api_key=TOKEN, base_url=server.url + "/v1")
        reply = await provider.chat([Message(role="user", content="Hi")], model=MODEL)
        assert reply.content == "Hello from the simulator."
        gets = [r for r in server.requests if r.method == "GET"]
        assert len(gets) == 2  # processing, then succeeded
        await provider.close()


async def test_version_ids_use_the_predictions_route(server: SimServer) -> None:
    server.options["versions"] = {MODEL: "5c7d5dc6dd8b"}
    provider = replicate(server)
    await provider.chat([Message(role="user", content="Hi")], model=f"{MODEL}:5c7d5dc6dd8b")
    req = posts(server)[0]
    assert req.path == "/v1/predictions" and req.body["version"] == "5c7d5dc6dd8b"
    await provider.close()


async def test_stream_reads_output_events_and_metrics(server: SimServer) -> None:
    provider = replicate(server)
    server.script(Script(text="Streaming from a prediction.", pieces=5))
    chunks, error = await collect(provider.stream([Message(role="user", content="Hi")], model=MODEL))
    assert error is None and text_of(chunks) == "Streaming from a prediction."
    final = chunks[-1]
    assert final.is_final and final.usage is not None and final.usage.completion_tokens == 5
    assert final.timings is not None and final.timings.ttft_ms is not None
    assert posts(server)[0].body["stream"] is True
    assert server.cancels == []  # type: ignore[attr-defined]
    await provider.close()


async def test_stopping_a_stream_cancels_the_prediction(server: SimServer) -> None:
    provider = replicate(server)
    server.script(Script(text="z" * 300, pieces=150, delay_s=0.01))
    stream = provider.stream([Message(role="user", content="Hi")], model=MODEL)
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    cancels: list[str] = server.cancels  # type: ignore[attr-defined]
    assert await wait_for(lambda: len(cancels) == 1), "the prediction kept running (and billing)"
    await provider.close()


async def test_failed_prediction_is_typed(server: SimServer) -> None:
    from tests.servers.base import Fault

    provider = replicate(server, retry_policy=FAST, sleep=Sleeps())
    server.script(Script(fault=Fault.CONTEXT_OVERFLOW))
    with pytest.raises(ContextLengthExceededError, match="context length"):
        await provider.chat([Message(role="user", content="Hi")], model=MODEL)
    server.script(Script(fault=Fault.MIDSTREAM_ERROR, fail_after=0, repeat=5))
    chunks, error = await collect(provider.stream([Message(role="user", content="Hi")], model=MODEL))
    assert chunks == [] and isinstance(error, ProviderServerError) and "CUDA" in error.message
    await provider.close()


async def test_missing_token(server: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    provider = ProviderRegistry.create("replicate", base_url=server.url + "/v1")
    with pytest.raises(MissingAPIKeyError, match="REPLICATE_API_TOKEN"):
        await provider.chat([Message(role="user", content="Hi")], model=MODEL)
    assert server.requests == []


async def test_list_language_models(server: SimServer) -> None:
    provider = replicate(server)
    assert [m.id for m in await provider.list_models()] == [MODEL]
    await provider.close()


# -- the fault matrix ------------------------------------------------------------------------------


@pytest.fixture
def h(server: SimServer) -> cf.Harness:
    provider = replicate(server, **cf.fault_options())
    return cf.Harness(server, provider, MODEL, "/v1/models/")


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("fault", sorted(cf.HTTP_FAULTS))
async def test_http_faults(h: cf.Harness, fault: str, stream: bool) -> None:
    await cf.http_fault(h, fault, stream=stream)
    await h.provider.close()


@pytest.mark.parametrize("fault", sorted(cf.MID_FAULTS))
async def test_faults_after_output(h: cf.Harness, fault: str) -> None:
    await cf.mid_fault(h, fault)
    await h.provider.close()


@pytest.mark.parametrize("scenario", sorted(cf.SCENARIOS))
async def test_scenarios(h: cf.Harness, scenario: str) -> None:
    await cf.SCENARIOS[scenario](h)
    await h.provider.close()
