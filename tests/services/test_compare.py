"""The compare scheduler against real simulators on 127.0.0.1: one request at a time per local
endpoint (proved by the server's own clock), parallel across endpoints, Stop stops all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.servers.base import Script, SimServer
from tests.support.timed import make_timed, overlaps
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.services.compare import CompareSession, CompareTarget, EndpointQueue, endpoint_key
from victor_gui.services.generation import ReplyStatus

PACED = Script(text="one two three four five six seven eight ", pieces=8, delay_s=0.03)


SLACK = 0.04


async def spans(server: SimServer, n: int) -> list[tuple[float, float]]:
    """The server's first ``n`` chat spans, once its handler threads have noted them."""
    for _ in range(200):
        if len(server.chat_spans) >= n:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.01)
    return sorted(server.chat_spans)[:n]  # type: ignore[attr-defined]


def paced(repeat: int = 0) -> Script:
    return Script(text=PACED.text, pieces=PACED.pieces, delay_s=PACED.delay_s, repeat=repeat)


@pytest.fixture
def llama() -> Iterator[SimServer]:
    with make_timed("llamacpp") as server:
        yield server


@pytest.fixture
def vllm() -> Iterator[SimServer]:
    with make_timed("vllm") as server:
        yield server


@pytest.fixture
async def targets(llama: SimServer, vllm: SimServer) -> AsyncIterator[dict[str, CompareTarget]]:
    made = {}
    for kind, sim in (("llamacpp", llama), ("vllm", vllm)):
        provider = ProviderRegistry.create(kind, base_url=f"{sim.url}/v1", max_retries=0)
        made[kind] = CompareTarget(provider, "sim-model", endpoint_key(sim.url, local=True), True)
    yield made
    for target in made.values():
        await target.provider.close()


def test_endpoint_keys() -> None:
    assert endpoint_key("http://localhost:8080/v1", local=True) == "127.0.0.1:8080"
    assert endpoint_key("http://127.0.0.1:8080", local=True) == "127.0.0.1:8080"
    assert endpoint_key("http://127.0.0.1:8081/v1", local=True) != endpoint_key(
        "http://127.0.0.1:8080/v1", local=True)
    # A cloud endpoint is never queued; a LAN box is, whatever the provider calls itself.
    assert endpoint_key("https://api.openai.com/v1", local=False) is None
    assert endpoint_key("http://192.168.1.20:11434", local=False) == "192.168.1.20:11434"
    assert endpoint_key("https://gpu-box.lan:8443/v1", local=True) == "gpu-box.lan:8443"


async def test_same_endpoint_runs_one_at_a_time(llama, targets) -> None:
    llama.script(paced(repeat=1))
    session = CompareSession()
    a, b = session.add_slot(), session.add_slot()
    events: list[tuple[int, str]] = []
    session.add_listener(lambda slot, event: events.append((slot.id, event)))
    session.send("count", {a.id: targets["llamacpp"], b.id: targets["llamacpp"]})
    await asyncio.sleep(0)
    assert b.waiting  # queued behind a, nothing sent yet
    await asyncio.wait_for(session.wait(), 10)
    first, second = await spans(llama, 2)
    # The server saw the second request only after it had sent the whole first reply (~240 ms).
    # SLACK covers the server thread noting the end just after the client already read it.
    assert second[0] >= first[1] - SLACK
    assert first[1] - first[0] > 4 * SLACK
    assert (b.id, "queued") in events and events.index((a.id, "finished")) < events.index((b.id, "started"))
    for slot in (a, b):
        assert slot.state.status is ReplyStatus.DONE and slot.state.content == PACED.text
        assert [m.role for m in slot.history] == ["user", "assistant"]
        assert slot.cost == 0.0


async def test_different_endpoints_overlap(llama, vllm, targets) -> None:
    llama.script(paced())
    vllm.script(paced())
    session = CompareSession()
    a, b = session.add_slot(), session.add_slot()
    session.send("count", {a.id: targets["llamacpp"], b.id: targets["vllm"]})
    await asyncio.wait_for(session.wait(), 10)
    (one,), (other,) = await spans(llama, 1), await spans(vllm, 1)
    assert overlaps(one, other)
    assert a.state.content == b.state.content == PACED.text
    assert a.state.ttft_ms is not None and b.state.tokens_per_second is not None


async def test_each_slot_sends_its_own_history(llama, vllm, targets) -> None:
    llama.script(Script(text="from llama"), Script(text="again llama"))
    vllm.script(Script(text="from vllm"), Script(text="again vllm"))
    session = CompareSession()
    a, b = session.add_slot(), session.add_slot()
    pair = {a.id: targets["llamacpp"], b.id: targets["vllm"]}
    session.send("first", pair)
    await asyncio.wait_for(session.wait(), 10)
    session.send("second", pair)
    await asyncio.wait_for(session.wait(), 10)
    sent = llama.chat_requests()[-1].body["messages"]
    assert [m["content"] for m in sent] == ["first", "from llama", "second"]
    sent = vllm.chat_requests()[-1].body["messages"]
    assert [m["content"] for m in sent] == ["first", "from vllm", "second"]


async def test_stop_all_stops_running_and_queued(llama, vllm, targets) -> None:
    long = Script(text="x" * 400, pieces=400, delay_s=0.01)
    llama.script(long)
    vllm.script(Script(text="y" * 400, pieces=400, delay_s=0.01))
    session = CompareSession(EndpointQueue())
    a, b, c = session.add_slot(), session.add_slot(), session.add_slot()
    session.send("go", {a.id: targets["llamacpp"], b.id: targets["vllm"], c.id: targets["llamacpp"]})
    deadline = asyncio.get_running_loop().time() + 5
    while not (a.state and a.state.content and b.state and b.state.content):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    assert c.waiting and c.generation is None
    session.stop_all()
    await asyncio.wait_for(session.wait(), 5)
    assert a.state.status is b.state.status is ReplyStatus.INTERRUPTED
    assert 0 < len(a.state.content) < 400 and 0 < len(b.state.content) < 400
    assert c.generation is None and not c.waiting  # the queued one never went out
    assert len(llama.chat_requests()) == 1
    assert await asyncio.to_thread(llama.disconnected.wait, 5)


async def test_a_slot_is_saved_as_a_stored_conversation(llama, vllm, targets, tmp_path) -> None:
    from victor_gui.services.compare import save_slot
    from victor_gui.storage import open_store

    llama.script(Script(text="from llama"))
    vllm.script(Script(text="from vllm", prompt_tokens=7))
    session = CompareSession()
    a, b = session.add_slot(), session.add_slot()
    session.send("Which is faster?", {a.id: targets["llamacpp"], b.id: targets["vllm"]})
    await asyncio.wait_for(session.wait(), 10)
    store, _ = await open_store(tmp_path)
    try:
        cid = await save_slot(store, b)
        conversation = await store.get_conversation(cid)
        rows = await store.get_messages(cid)
    finally:
        await store.close()
    assert conversation.title == "Which is faster?"
    assert [(r.role, r.content) for r in rows] == [("user", "Which is faster?"), ("assistant", "from vllm")]
    reply = rows[1]
    assert (reply.provider, reply.model, reply.status, reply.cost) == ("vllm", "sim-model", "complete", 0.0)
    assert reply.prompt_tokens == 7 and reply.ttft_ms is not None


async def test_cloud_targets_are_not_queued(llama, targets) -> None:
    # The same server, reached as a cloud endpoint would be (no key): both requests go at once.
    llama.script(paced(repeat=1))
    cloud = CompareTarget(targets["llamacpp"].provider, "sim-model", None)
    session = CompareSession()
    a, b = session.add_slot(), session.add_slot()
    session.send("count", {a.id: cloud, b.id: cloud})
    await asyncio.sleep(0)
    assert not a.waiting and not b.waiting
    await asyncio.wait_for(session.wait(), 10)
    first, second = await spans(llama, 2)
    assert overlaps(first, second)
    # Priced through the table, which knows llama.cpp is local whatever the target says.
    assert a.cost == b.cost == 0.0
