"""Azure OpenAI against the simulator: endpoint/deployment/version/key from the seed's profile
keys and variables, api-key header, tools, usage, content filter, fault matrix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers import cloud_faults as cf
from tests.providers.cloud_sims import FAST, Sleeps, collect, posts, text_of
from tests.servers.azure import make_server
from tests.servers.base import Script, ScriptedToolCall, SimServer
from victor_gui.errors import (
    ContentFilterError,
    MissingAPIKeyError,
    ModelNotFoundError,
    ProviderUnavailableError,
)
from victor_gui.providers.protocols.azure import DEFAULT_API_VERSION, AzureOpenAIProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message, ToolCall, ToolDefinition

KEY = "azure-key-0123456789abcdef"
DEPLOY = "gpt-4o-deploy"
TOOL = ToolDefinition(
    name="lookup",
    description="Look up",
    parameters={"type": "object", "properties": {"q": {"type": "string"}}},
)


@pytest.fixture
def server() -> Iterator[SimServer]:
    with make_server(api_key=KEY) as srv:
        yield srv


@pytest.fixture
def env(server: SimServer, monkeypatch: pytest.MonkeyPatch) -> SimServer:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url + "/")
    monkeypatch.delenv("AZURE_OPENAI_API_VERSION", raising=False)
    return server


async def test_seed_env_vars_are_read(env: SimServer) -> None:
    provider = ProviderRegistry.create("azure-openai")
    reply = await provider.chat([Message(role="user", content="Hi")], model=DEPLOY, max_tokens=50)
    assert reply.content == "Hello from the simulator."
    [req] = posts(env)
    assert req.path == f"/openai/deployments/{DEPLOY}/chat/completions?api-version={DEFAULT_API_VERSION}"
    assert req.headers["api-key"] == KEY and "authorization" not in req.headers
    assert req.body["messages"] == [{"role": "user", "content": "Hi"}]
    assert (req.body["temperature"], req.body["max_tokens"]) == (0.7, 50)
    await provider.close()


async def test_profile_keys_name_other_variables(server: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CONTOSO_AOAI_KEY", KEY)
    monkeypatch.setenv("CONTOSO_AOAI_BASE", server.url)
    provider = ProviderRegistry.create(
        "azure",
        api_key_env="CONTOSO_AOAI_KEY",
        api_base_env="CONTOSO_AOAI_BASE",
        api_version="2024-08-01-preview",
        deployment=DEPLOY,
    )
    await provider.chat([Message(role="user", content="Hi")], model="gpt-4o")  # model != deployment
    assert (
        posts(server)[0].path
        == f"/openai/deployments/{DEPLOY}/chat/completions?api-version=2024-08-01-preview"
    )
    await provider.close()


async def test_missing_endpoint_or_key_fail_before_io(
    server: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    no_endpoint = ProviderRegistry.create("azure", api_key=KEY)
    with pytest.raises(ProviderUnavailableError, match="AZURE_OPENAI_ENDPOINT"):
        await no_endpoint.chat([Message(role="user", content="Hi")], model=DEPLOY)
    no_key = ProviderRegistry.create("azure", base_url=server.url)
    with pytest.raises(MissingAPIKeyError, match="AZURE_OPENAI_API_KEY"):
        await no_key.chat([Message(role="user", content="Hi")], model=DEPLOY)
    assert server.requests == []


async def test_entra_token_instead_of_key() -> None:
    with make_server(api_key=KEY, bearer_token="eyJ0eXAiOiJKV1Qi.entra.token") as server:
        provider = ProviderRegistry.create(
            "azure", base_url=server.url, azure_ad_token="eyJ0eXAiOiJKV1Qi.entra.token"
        )
        await provider.chat([Message(role="user", content="Hi")], model=DEPLOY)
        req = posts(server)[0]
        assert (
            req.headers["authorization"] == "Bearer eyJ0eXAiOiJKV1Qi.entra.token"
            and "api-key" not in req.headers
        )
        await provider.close()


async def test_stream_tool_call_round_trip_and_usage(env: SimServer) -> None:
    provider = ProviderRegistry.create("azure")
    env.options["cached"] = 64
    env.script(
        Script(text="Looking it up.", tool_calls=[ScriptedToolCall("lookup", {"q": "x"}, id="call_az1")])
    )
    history = [Message(role="system", content="Be exact."), Message(role="user", content="find x")]
    chunks, error = await collect(provider.stream(history, model=DEPLOY, tools=[TOOL]))
    assert error is None and text_of(chunks) == "Looking it up."
    final = chunks[-1]
    assert final.stop_reason == "tool_calls"
    assert final.tool_calls == [ToolCall(id="call_az1", name="lookup", arguments={"q": "x"})]
    deltas = [d for c in chunks for d in (c.tool_call_deltas or [])]
    assert deltas[0].id == "call_az1" and "".join(d.arguments_delta for d in deltas) == '{"q": "x"}'
    assert final.usage is not None and final.usage.cached_tokens == 64
    assert posts(env)[0].body["stream_options"] == {"include_usage": True}
    history += [
        Message(role="assistant", content="Looking it up.", tool_calls=final.tool_calls),
        Message(role="tool", tool_call_id="call_az1", content="x is 42"),
    ]
    await provider.chat(history, model=DEPLOY, tools=[TOOL])
    assert posts(env)[1].body["messages"][2:] == [
        {
            "role": "assistant",
            "content": "Looking it up.",
            "tool_calls": [
                {
                    "id": "call_az1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "x"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_az1", "content": "x is 42"},
    ]
    await provider.close()


async def test_filtered_prompt_is_content_filter_error() -> None:
    with make_server(api_key=KEY, filter_prompt=True) as server:
        provider = ProviderRegistry.create("azure", api_key=KEY, base_url=server.url, retry_policy=FAST)
        with pytest.raises(ContentFilterError, match="violence") as info:
            await provider.chat([Message(role="user", content="Hi")], model=DEPLOY)
        assert info.value.status_code == 400
        assert len(posts(server)) == 1  # a refusal is not retried
        await provider.close()


async def test_filtered_reply_in_stream_keeps_partial_text() -> None:
    with make_server(api_key=KEY, finish_reason="content_filter") as server:
        provider = ProviderRegistry.create("azure", api_key=KEY, base_url=server.url)
        server.script(Script(text="Here is how to", pieces=3))
        chunks, error = await collect(provider.stream([Message(role="user", content="Hi")], model=DEPLOY))
        assert isinstance(error, ContentFilterError)
        assert error.partial_content == "Here is how to" == text_of(chunks)
        with pytest.raises(ContentFilterError):
            await provider.chat([Message(role="user", content="Hi")], model=DEPLOY)
        await provider.close()


async def test_unknown_deployment_is_model_not_found(env: SimServer) -> None:
    provider = ProviderRegistry.create("azure")
    with pytest.raises(ModelNotFoundError, match="deployment"):
        await provider.chat([Message(role="user", content="Hi")], model="no-such-deploy")
    await provider.close()


async def test_list_models(env: SimServer) -> None:
    provider = ProviderRegistry.create("azure")
    models = await provider.list_models()
    assert [m.id for m in models] == [DEPLOY]
    await provider.close()


# -- the fault matrix ------------------------------------------------------------------------------


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def h(server: SimServer, sleeps: Sleeps) -> cf.Harness:
    provider = ProviderRegistry.create(
        "azure",
        api_key=KEY,
        base_url=server.url,
        **cf.fault_options(sleeps),
    )
    assert isinstance(provider, AzureOpenAIProvider)
    return cf.Harness(server, provider, DEPLOY, "/chat/completions")


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("fault", sorted(cf.HTTP_FAULTS))
async def test_http_faults(h: cf.Harness, fault: str, stream: bool, sleeps: Sleeps) -> None:
    error = await cf.http_fault(h, fault, stream=stream)
    if fault == "rate_limit":
        assert error.retry_after == 1.0 and sleeps.delays == [1.0, 1.0]
    await h.provider.close()


@pytest.mark.parametrize("fault", sorted(cf.MID_FAULTS))
async def test_faults_after_output(h: cf.Harness, fault: str) -> None:
    await cf.mid_fault(h, fault)
    await h.provider.close()


@pytest.mark.parametrize("scenario", sorted(cf.SCENARIOS))
async def test_scenarios(h: cf.Harness, scenario: str) -> None:
    await cf.SCENARIOS[scenario](h)
    await h.provider.close()
