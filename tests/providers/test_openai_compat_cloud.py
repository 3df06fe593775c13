"""Cloud rows of the OpenAI protocol, pointed at a simulator: key header, missing keys, model
quirks on the wire, Groq trimming; plus endpoint resolution from the environment, candidate
failover, conversation repair and client ownership."""

from __future__ import annotations

import httpx
import pytest

from tests.providers.openai_sims import FAST, HI, collect, make_provider, running
from tests.servers.base import Script, free_port
from victor_gui.errors import MissingAPIKeyError, ProviderAuthError
from victor_gui.providers.catalog import SPECS
from victor_gui.providers.http import CLOUD_TIMEOUTS, LOCAL_TIMEOUTS
from victor_gui.providers.protocols.openai_compat import OpenAICompatProvider
from victor_gui.providers.protocols.tool_history import NO_RESULT
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message, ToolCall, ToolDefinition

CLOUD = [s.name for s in SPECS if s.protocol == "openai" and not s.is_local]
KEY = "sk-test-0123456789abcdefghij"
TOOL = ToolDefinition(name="search", description="Search the web")


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for spec in SPECS:
        for var in spec.key_env_vars:
            monkeypatch.delenv(var, raising=False)


def test_every_openai_cloud_row_is_served_by_this_protocol() -> None:
    assert set(CLOUD) == {
        "openai",
        "xai",
        "deepseek",
        "mistral",
        "groqcloud",
        "together",
        "fireworks",
        "openrouter",
        "cerebras",
        "moonshot",
        "zai",
        "huggingface",
    }


@pytest.mark.parametrize("name", CLOUD)
async def test_cloud_row_sends_its_key(name: str, no_key_env: None) -> None:
    with running("vllm", api_key=KEY) as server:
        provider = ProviderRegistry.create(name, base_url=server.url + "/v1", api_key=KEY, retry_policy=FAST)
        async with provider:
            assert provider.timeouts() == CLOUD_TIMEOUTS
            reply = await provider.chat(HI, model="m-1")
            chunks = await collect(provider.stream(HI, model="m-1"))
        assert reply.content and chunks[-1].is_final
        assert [r.headers["authorization"] for r in server.chat_requests()] == [f"Bearer {KEY}"] * 2


@pytest.mark.parametrize("name", [n for n in CLOUD if n != "huggingface"])
async def test_missing_key_fails_at_request_time_before_io(name: str, no_key_env: None) -> None:
    with running("vllm") as server:
        provider = ProviderRegistry.create(name, base_url=server.url + "/v1")  # creation succeeds
        async with provider:
            with pytest.raises(MissingAPIKeyError, match="API key") as info:
                await provider.chat(HI, model="m")
            with pytest.raises(MissingAPIKeyError):
                await collect(provider.stream(HI, model="m"))
        assert "Settings" in info.value.message and server.requests == []


async def test_key_from_environment_and_wrong_key_is_redacted(
    monkeypatch: pytest.MonkeyPatch, no_key_env: None
) -> None:
    monkeypatch.setenv("GROQCLOUD_API_KEY", "gsk-wrong-key-value-123456")
    with running("vllm", api_key=KEY) as server:
        provider = ProviderRegistry.create("groq", base_url=server.url + "/v1", retry_policy=FAST)
        async with provider:
            assert provider.key_source == "env:GROQCLOUD_API_KEY"
            with pytest.raises(ProviderAuthError) as info:
                await provider.chat(HI, model="llama-3.3-70b")
        assert "gsk-wrong" not in str(info.value)
        assert server.requests[0].headers["authorization"] == "Bearer gsk-wrong-key-value-123456"


@pytest.mark.parametrize(
    ("model", "token_field", "temperature", "tools"),
    [
        ("o3-mini", "max_completion_tokens", False, False),
        ("o1", "max_completion_tokens", False, False),
        ("o4-mini", "max_completion_tokens", False, False),
        ("gpt-5", "max_completion_tokens", True, True),
        ("gpt-4o", "max_tokens", True, True),
    ],
)
async def test_openai_model_quirks_on_the_wire(
    model: str, token_field: str, temperature: bool, tools: bool
) -> None:
    with running("vllm") as server:
        async with make_provider("openai", server, api_key=KEY) as provider:
            reply = await provider.chat(HI, model=model, max_tokens=100, tools=[TOOL])
        body = server.chat_requests()[0].body
        assert body[token_field] == 100 and (
            {"max_tokens", "max_completion_tokens"} - {token_field}
        ).isdisjoint(body)
        assert ("temperature" in body) is temperature and ("tools" in body) is tools
        assert ("tools_omitted" in reply.metadata) is (not tools)


async def test_deepseek_reasoner_gets_no_tools_and_yields_reasoning() -> None:
    with running("llamacpp") as server:  # sends reasoning_content, as DeepSeek does
        server.script(Script(text="42", reasoning="thinking..."))
        async with make_provider("deepseek", server, api_key=KEY) as provider:
            chunks = await collect(provider.stream(HI, model="deepseek-reasoner", tools=[TOOL]))
            assert provider.supports_reasoning("deepseek-reasoner")
        body = server.chat_requests()[0].body
        assert "tools" not in body and body["max_tokens"] == 4096
        assert (
            "".join(c.reasoning for c in chunks) == "thinking..."
            and "".join(c.content for c in chunks) == "42"
        )


async def test_groq_trims_oversized_payloads_and_says_so() -> None:
    big = "x" * (1024 * 1024)
    history: list[Message] = [Message(role="system", content="be brief")]
    for i in range(6):
        history += [
            Message(role="user", content=f"read file {i}"),
            Message(role="assistant", tool_calls=[ToolCall(id=f"c{i}", name="read", arguments={})]),
            Message(role="tool", tool_call_id=f"c{i}", content=big),
        ]
    history.append(Message(role="user", content="summarise"))
    with running("vllm") as server:
        async with make_provider("groqcloud", server, api_key=KEY) as provider:
            reply = await provider.chat(history, model="llama-3.3-70b")
            chunks = await collect(provider.stream(history, model="llama-3.3-70b"))
        for request, meta in zip(server.chat_requests(), (reply.metadata, chunks[-1].metadata), strict=True):
            assert meta["trimmed"]["tool_outputs"] == 3 and meta["trimmed"]["messages"] == 0
            assert meta["trimmed"]["bytes_after"] <= 4 * 1024 * 1024 < meta["trimmed"]["bytes_before"]
            msgs = request.body["messages"]
            assert msgs[0]["content"] == "be brief" and msgs[-1]["content"] == "summarise"
            assert [m["content"] == big for m in msgs if m["role"] == "tool"] == [False] * 3 + [True] * 3


async def test_llamacpp_host_variable_reaches_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    with running("llamacpp") as server:
        monkeypatch.setenv("VICTOR_LLAMACPP_HOST", f"127.0.0.1:{server.port}")
        provider = ProviderRegistry.create("llama.cpp")
        async with provider:
            assert provider.base_urls()[0] == f"http://127.0.0.1:{server.port}/v1"
            assert provider.timeouts() == LOCAL_TIMEOUTS
            assert (await provider.chat(HI, model="sim-model")).content
        assert len(server.chat_requests()) == 1 and "authorization" not in server.requests[0].headers


async def test_vllm_host_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with running("vllm") as server:
        monkeypatch.setenv("VICTOR_VLLM_HOST", server.url)
        async with ProviderRegistry.create("vllm") as provider:
            assert (await provider.list_models())[0].context_length == 32768


async def test_lmstudio_tries_candidates_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = free_port()
    with running("lmstudio") as server:
        monkeypatch.delenv("VICTOR_LM_STUDIO_HOST", raising=False)
        monkeypatch.setenv("LMSTUDIO_ENDPOINTS", f"127.0.0.1:{dead},127.0.0.1:{server.port}")
        async with ProviderRegistry.create("lmstudio", retry_policy=FAST) as provider:
            chunks = await collect(provider.stream(HI, model="sim-model"))
            assert chunks[-1].is_final
            assert provider.base_urls()[0] == f"http://127.0.0.1:{server.port}/v1"  # remembered
            assert (await provider.chat(HI, model="sim-model")).content
        assert len(server.chat_requests()) == 2


async def test_orphan_tool_messages_are_repaired_not_dropped() -> None:
    history = [
        Message(role="user", content="go"),
        Message(role="assistant", tool_calls=[ToolCall(id="a", name="search", arguments={"q": 1})]),
        Message(role="user", content="never mind"),
        Message(role="tool", tool_call_id="zzz", name="search", content="late result"),
        Message(role="tool", tool_call_id="b", content=""),
    ]
    with running("vllm") as server:
        async with make_provider("vllm", server) as provider:
            reply = await provider.chat(history, model="sim-model")
        msgs = server.chat_requests()[0].body["messages"]
    assert msgs[2] == {"role": "tool", "tool_call_id": "a", "content": NO_RESULT}
    assert (
        msgs[4]["role"] == "user" and "late result" in msgs[4]["content"] and "search" in msgs[4]["content"]
    )
    assert msgs[5]["role"] == "user" and "(no output)" in msgs[5]["content"]
    assert reply.metadata["repaired"] == {"orphan_tool_results": 2, "unanswered_tool_calls": 1}


async def test_close_only_closes_a_client_it_built() -> None:
    with running("vllm") as server:
        shared = httpx.AsyncClient()
        provider = make_provider("vllm", server, http_client=shared)
        await provider.chat(HI, model="sim-model")
        await provider.close()
        assert not shared.is_closed
        await shared.aclose()
        own = make_provider("vllm", server)
        await own.chat(HI, model="sim-model")
        client = own.http
        await own.close()
        assert client.is_closed


async def test_user_defined_endpoint_and_timeouts() -> None:
    with running("vllm") as server:
        async with OpenAICompatProvider(
            base_url=server.url + "/v1", name="my-box", timeout=7, retry_policy=FAST, vision=True
        ) as provider:
            assert provider.name == "my-box" and provider.spec.is_local
            assert provider.timeouts().read == 7 and provider.supports_vision("anything")
            assert provider.supports_tools() and provider.supports_streaming()
            assert (await provider.chat(HI, model="sim-model")).content


async def test_leading_think_block_is_split_even_without_the_quirk() -> None:
    with running("vllm") as server:
        server.script(
            Script(text="Answer.", reasoning="hidden", inline_think=True, pieces=9),
            Script(text="Use <think> tags like this."),
        )
        async with make_provider("together", server, api_key=KEY) as provider:
            first = await collect(provider.stream(HI, model="qwq-32b"))
            second = await collect(provider.stream(HI, model="qwq-32b"))
        assert "".join(c.content for c in first) == "Answer."
        assert "".join(c.reasoning for c in first) == "hidden"
        assert "".join(c.content for c in second) == "Use <think> tags like this."


async def test_lmstudio_listing_falls_back_to_v1_models_without_rest_v0() -> None:
    with running("llamacpp") as server:  # a server without /api/v0: 404 there
        async with make_provider("lmstudio", server) as provider:
            models = await provider.list_models()
        assert [m.id for m in models] == ["sim-model"]
        assert [r.path for r in server.requests] == ["/api/v0/models", "/v1/models"]
