"""One conversation with tool calls walked across protocols: Anthropic → Gemini →
OpenAI-compatible (vLLM) → Anthropic → Vertex → Azure → Bedrock → Ollama → Anthropic, each hop
replaying the whole neutral history. At every hop the payload the simulator received must be valid for that
protocol (the cloud simulators reject broken pairing with the real APIs' 400s) and is
re-checked here independently: every tool result is paired with its call, ids are in the form
the protocol demands, nothing is lost.

Replicate is left out: it flattens the conversation into one prompt, so there is no pairing
to check.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.providers.cloud_sims import collect, posts, text_of
from tests.servers import anthropic as anthropic_sim
from tests.servers import azure as azure_sim
from tests.servers import bedrock as bedrock_sim
from tests.servers import gemini as gemini_sim
from tests.servers import ollama as ollama_sim
from tests.servers import vllm as vllm_sim
from tests.servers.base import Script, ScriptedToolCall, SimServer
from tests.servers.bedrock import AwsKeys
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message, ToolCall, ToolDefinition

ANT_KEY = "sk-ant-api03-crossprotocol0001"
GEM_KEY = "AIzaSyD-crossprotocol-000001"
TOKEN = "ya29.cross-protocol-token-0001"
AZ_KEY = "azure-cross-protocol-key-0001"
AWS = AwsKeys("AKIACROSSPROTOCOL001", "cross/protocol/secret/00000000000000000")
TOOLS = [
    ToolDefinition(
        name="search",
        description="Search the web",
        parameters={"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    ),
    ToolDefinition(
        name="read",
        description="Read a page",
        parameters={"type": "object", "properties": {"url": {"type": "string"}}},
    ),
]
_ANT_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


class StaticToken:
    project = "cross-proj"

    def fetch(self) -> tuple[str, float | None]:
        return TOKEN, time.time() + 3600


@pytest.fixture
def sims() -> Iterator[tuple[SimServer, SimServer, SimServer]]:
    with (
        anthropic_sim.make_server(api_key=ANT_KEY) as ant,
        gemini_sim.make_server(api_key=GEM_KEY, bearer_token=TOKEN) as gem,
        azure_sim.make_server(api_key=AZ_KEY) as az,
    ):
        yield ant, gem, az


@pytest.fixture
def bedrock_server() -> Iterator[SimServer]:
    with bedrock_sim.make_server(credentials=AWS) as srv:
        yield srv


@pytest.fixture
def ollama_server() -> Iterator[SimServer]:
    with ollama_sim.make_server(model="sim-model") as srv:
        yield srv


@pytest.fixture
def openai_server() -> Iterator[SimServer]:
    with vllm_sim.make_server(model="sim-model") as srv:
        yield srv


def check_anthropic(body: dict[str, Any]) -> None:
    messages = body["messages"]
    assert messages[0]["role"] == "user"
    for i, msg in enumerate(messages):
        assert msg["role"] == ("user" if i % 2 == 0 else "assistant"), "roles alternate"
        uses = [b["id"] for b in msg["content"] if b["type"] == "tool_use"]
        assert all(_ANT_ID.match(u) for u in uses)
        if uses:
            following = messages[i + 1]["content"]
            results = [b["tool_use_id"] for b in following if b["type"] == "tool_result"]
            assert sorted(results) == sorted(uses), "every tool_use answered in the next turn"
            kinds = [b["type"] for b in following]
            assert kinds[: len(results)] == ["tool_result"] * len(results), "tool_result blocks come first"


def check_openai(body: dict[str, Any]) -> None:
    messages = body["messages"]
    for i, msg in enumerate(messages):
        ids = [c["id"] for c in msg.get("tool_calls") or []]
        if ids:
            following = [m["tool_call_id"] for m in messages[i + 1 : i + 1 + len(ids)] if m["role"] == "tool"]
            assert sorted(following) == sorted(ids), "every tool_call_id answered right after its call"
            for call in msg["tool_calls"]:
                assert isinstance(call["function"]["arguments"], str)  # OpenAI wants a JSON string


def check_bedrock(body: dict[str, Any]) -> None:
    messages = body["messages"]
    assert messages[0]["role"] == "user"
    for i, msg in enumerate(messages):
        assert msg["role"] == ("user" if i % 2 == 0 else "assistant"), "roles alternate"
        uses = [b["toolUse"]["toolUseId"] for b in msg["content"] if "toolUse" in b]
        assert all(_ANT_ID.match(u) for u in uses)
        if uses:
            results = [b["toolResult"]["toolUseId"] for b in messages[i + 1]["content"] if "toolResult" in b]
            assert sorted(results) == sorted(uses), "every toolUse answered in the next turn"


def check_ollama(body: dict[str, Any]) -> None:
    messages = body["messages"]
    for i, msg in enumerate(messages):
        calls = msg.get("tool_calls") or []
        if calls:
            following = messages[i + 1 : i + 1 + len(calls)]
            assert [m["role"] for m in following] == ["tool"] * len(calls), "results follow their calls"
            assert sorted(m["tool_name"] for m in following) == sorted(c["function"]["name"] for c in calls)
            assert sorted(m["tool_call_id"] for m in following) == sorted(c["id"] for c in calls)


def check_gemini(body: dict[str, Any]) -> None:
    contents = body["contents"]
    for i, content in enumerate(contents):
        assert content["role"] in ("user", "model") and content["parts"]
        calls = [p["functionCall"]["name"] for p in content["parts"] if "functionCall" in p]
        if calls:
            responses = [
                p["functionResponse"]["name"] for p in contents[i + 1]["parts"] if "functionResponse" in p
            ]
            assert responses == calls, "responses match calls in number, name and order"


async def hop(provider: BaseProvider, history: list[Message], script: Script, server: SimServer) -> Message:
    server.script(script)
    chunks, error = await collect(provider.stream(history, model=server.model, tools=TOOLS))
    assert error is None, error
    final = chunks[-1]
    return Message(role="assistant", content=text_of(chunks), tool_calls=final.tool_calls)


def answer(history: list[Message], reply: Message, results: dict[str, str]) -> None:
    history.append(reply)
    for call in reply.tool_calls or []:
        history.append(Message(role="tool", tool_call_id=call.id, name=call.name, content=results[call.name]))


async def test_conversation_survives_every_cloud_protocol(
    sims: tuple[SimServer, SimServer, SimServer],
    openai_server: SimServer,
    bedrock_server: SimServer,
    ollama_server: SimServer,
) -> None:
    ant_server, gem_server, az_server = sims
    ollama = ProviderRegistry.create("ollama", base_url=ollama_server.url)
    azure = ProviderRegistry.create("azure", api_key=AZ_KEY, base_url=az_server.url)
    aws = ProviderRegistry.create(
        "bedrock",
        base_url=bedrock_server.url,
        aws_access_key_id=AWS.access_key,
        aws_secret_access_key=AWS.secret_key,
    )
    openai = ProviderRegistry.create("vllm", base_url=openai_server.url + "/v1")
    anthropic = ProviderRegistry.create("anthropic", api_key=ANT_KEY, base_url=ant_server.url)
    google = ProviderRegistry.create("google", api_key=GEM_KEY, base_url=gem_server.url)
    vertex = ProviderRegistry.create("vertex", base_url=gem_server.url, token_source=StaticToken())

    history = [
        Message(role="system", content="You are a research agent."),
        Message(role="user", content="Find the Python 3.13 release date."),
    ]

    # Hop 1, Anthropic: one call with an Anthropic id.
    reply = await hop(
        anthropic,
        history,
        Script(
            text="Searching.",
            tool_calls=[ScriptedToolCall("search", {"q": "python 3.13 release"}, id="toolu_01Xyz")],
        ),
        ant_server,
    )
    assert reply.tool_calls and reply.tool_calls[0].id == "toolu_01Xyz"
    answer(history, reply, {"search": "python.org: released 2024-10-07"})

    # A call carried over from an OpenAI-compatible server whose ids Anthropic would reject.
    history += [
        Message(
            role="assistant",
            tool_calls=[
                ToolCall(id="functions.read:0", name="read", arguments={"url": "https://python.org"})
            ],
        ),
        Message(role="tool", tool_call_id="functions.read:0", name="read", content="Python 3.13.0 ..."),
    ]

    # Hop 2, Gemini: the history goes in; Gemini answers with two parallel calls and no ids.
    reply = await hop(
        google,
        history,
        Script(
            text="",
            tool_calls=[
                ScriptedToolCall("search", {"q": "3.13 changelog"}),
                ScriptedToolCall("read", {"url": "https://docs"}),
            ],
        ),
        gem_server,
    )
    check_gemini(posts(gem_server)[-1].body)
    assert reply.tool_calls and len({c.id for c in reply.tool_calls}) == 2
    answer(history, reply, {"search": "changelog hits", "read": "docs page"})

    # Hop 2b, OpenAI-compatible (vLLM): Anthropic, foreign and synthesised ids as tool_call_ids.
    reply = await hop(openai, history, Script(text="Noted the sources."), openai_server)
    check_openai(posts(openai_server)[-1].body)
    assert reply.content == "Noted the sources."
    history.append(reply)
    history.append(Message(role="user", content="Summarise."))

    # Hop 3, Anthropic again: Anthropic, foreign and synthesised Gemini ids all in one history.
    reply = await hop(anthropic, history, Script(text="Python 3.13 came out on 7 October 2024."), ant_server)
    body = posts(ant_server)[-1].body
    check_anthropic(body)
    uses = [b["id"] for m in body["messages"] for b in m["content"] if b["type"] == "tool_use"]
    assert len(uses) == 4 and "toolu_01Xyz" in uses
    assert any(u.startswith("functions_read_0_") for u in uses)
    history.append(reply)
    history.append(Message(role="user", content="And 3.14?"))

    # Hop 4, Vertex: the same Gemini payload shape on the Vertex route.
    reply = await hop(
        vertex, history, Script(text="", tool_calls=[ScriptedToolCall("search", {"q": "3.14"})]), gem_server
    )
    vertex_req = posts(gem_server)[-1]
    assert vertex_req.path.startswith("/v1/projects/cross-proj/")
    check_gemini(vertex_req.body)
    answer(history, reply, {"search": "October 2025"})

    # Hop 5, Azure (OpenAI chat completions): every id from every protocol, as tool_call_ids.
    reply = await hop(
        azure,
        history,
        Script(
            text="One more check.",
            tool_calls=[ScriptedToolCall("read", {"url": "https://peps"}, id="call_az9")],
        ),
        az_server,
    )
    check_openai(posts(az_server)[-1].body)
    assert reply.tool_calls and reply.tool_calls[0].id == "call_az9"
    answer(history, reply, {"read": "PEP 745"})

    # Hop 5b, Bedrock Converse: toolUse/toolResult blocks, foreign ids sanitised, results merged.
    reply = await hop(
        aws,
        history,
        Script(text="", tool_calls=[ScriptedToolCall("search", {"q": "pep 745"}, id="tooluse_b1")]),
        bedrock_server,
    )
    check_bedrock(posts(bedrock_server)[-1].body)
    answer(history, reply, {"search": "release schedule"})

    # Hop 5c, Ollama: tool results carry tool_name (and the id newer builds read); its calls
    # come back without ids, so stable ones are synthesised.
    reply = await hop(
        ollama,
        history,
        Script(text="", tool_calls=[ScriptedToolCall("read", {"url": "https://ollama"})]),
        ollama_server,
    )
    check_ollama(posts(ollama_server)[-1].body)
    assert reply.tool_calls and reply.tool_calls[0].id
    answer(history, reply, {"read": "local notes"})

    # Hop 6, back to Anthropic with every call answered.
    reply = await hop(anthropic, history, Script(text="3.14 is due in October 2025."), ant_server)
    check_anthropic(posts(ant_server)[-1].body)
    assert reply.content == "3.14 is due in October 2025."

    # Nothing was dropped along the way: all eight calls and their results reached the last hop.
    final_body = posts(ant_server)[-1].body
    results = [b for m in final_body["messages"] for b in m["content"] if b["type"] == "tool_result"]
    assert [r["content"] for r in results] == [
        "python.org: released 2024-10-07",
        "Python 3.13.0 ...",
        "changelog hits",
        "docs page",
        "October 2025",
        "PEP 745",
        "release schedule",
        "local notes",
    ]
    assert final_body["system"] == "You are a research agent."
    for p in (anthropic, google, vertex, azure, openai, aws, ollama):
        await p.close()


async def test_broken_history_is_repaired_for_every_protocol(
    sims: tuple[SimServer, SimServer, SimServer],
    openai_server: SimServer,
    bedrock_server: SimServer,
    ollama_server: SimServer,
) -> None:
    """A history cut by trimming (a result without its call, a call without its result) is
    accepted by every simulator after repair, and the orphaned output is kept as text."""
    history = [
        Message(role="user", content="start"),
        Message(role="tool", tool_call_id="lost_call", name="search", content="orphaned output"),
        Message(role="assistant", tool_calls=[ToolCall(id="call_open", name="read")]),
        Message(role="user", content="continue"),
    ]
    ant_server, gem_server, az_server = sims
    aws = ProviderRegistry.create(
        "bedrock",
        base_url=bedrock_server.url,
        aws_access_key_id=AWS.access_key,
        aws_secret_access_key=AWS.secret_key,
    )
    cases = [
        (ProviderRegistry.create("ollama", base_url=ollama_server.url), ollama_server, check_ollama),
        (aws, bedrock_server, check_bedrock),
        (
            ProviderRegistry.create("anthropic", api_key=ANT_KEY, base_url=ant_server.url),
            ant_server,
            check_anthropic,
        ),
        (
            ProviderRegistry.create("google", api_key=GEM_KEY, base_url=gem_server.url),
            gem_server,
            check_gemini,
        ),
        (ProviderRegistry.create("azure", api_key=AZ_KEY, base_url=az_server.url), az_server, check_openai),
        (ProviderRegistry.create("vllm", base_url=openai_server.url + "/v1"), openai_server, check_openai),
    ]
    for provider, server, check in cases:
        assert (await provider.chat(history, model=server.model)).content
        body = posts(server)[-1].body
        check(body)
        assert "orphaned output" in str(body)
        await provider.close()
