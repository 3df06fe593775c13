"""Hugging Face: the OpenAI-compatible router (the catalog's ``openai`` row) end to end with
``HF_API_KEY`` and ``HF_TOKEN``, and the serverless text-generation route (TGI dialect) chosen
per model, against the simulators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.providers.cloud_sims import FAST, Sleeps, collect, posts, text_of
from tests.servers import hf_tgi, vllm
from tests.servers.base import Fault, Script, SimServer
from victor_gui.errors import (
    ContextLengthExceededError,
    InvalidResponseError,
    ModelLoadingError,
    ModelNotFoundError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderServerError,
)
from victor_gui.providers.capabilities import load_capabilities
from victor_gui.providers.protocols.hf_prompt import build_prompt, template_for
from victor_gui.providers.protocols.openai_compat import OpenAICompatProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.resilience import RetryPolicy
from victor_gui.providers.types import Message, ToolCall, ToolDefinition

KEY = "hf_simulatedtoken0123456789"
MODEL = "openai-community/gpt2"
HI = [Message(role="system", content="Be brief."), Message(role="user", content="Hi")]
NO_RETRY = RetryPolicy(max_retries=0, base_delay=0.0, jitter=0.0)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("HF_API_KEY", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    load_capabilities(None)
    yield
    load_capabilities(None)


@pytest.fixture
def tgi() -> Iterator[SimServer]:
    with hf_tgi.make_server(api_key=KEY, models=[MODEL, "meta-llama/Llama-3.1-8B"]) as server:
        yield server


def hf(server: SimServer, **kw: object) -> OpenAICompatProvider:
    kw.setdefault("retry_policy", FAST)
    provider = ProviderRegistry.create("hf", base_url=server.url + "/v1", sleep=Sleeps(), **kw)
    assert isinstance(provider, OpenAICompatProvider)
    return provider


# -- the OpenAI-compatible router --------------------------------------------------------------


@pytest.mark.parametrize("var", ["HF_API_KEY", "HF_TOKEN"])
async def test_router_end_to_end_with_either_variable(var: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(var, KEY)
    with vllm.make_server(api_key=KEY, model="Qwen/Qwen2.5-7B-Instruct") as server:
        provider = hf(server)
        assert provider.key_source == f"env:{var}"
        reply = await provider.chat(HI, model="Qwen/Qwen2.5-7B-Instruct", hf_route=None)
        chunks, error = await collect(provider.stream(HI, model="Qwen/Qwen2.5-7B-Instruct"))
        await provider.close()
    assert reply.content == "Hello from the simulator." and error is None
    assert text_of(chunks) == reply.content and chunks[-1].is_final
    requests = server.chat_requests()
    assert [r.path for r in requests] == ["/v1/chat/completions"] * 2
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in requests)
    assert "hf_route" not in requests[0].body  # the routing keyword never reaches the wire


async def test_router_wrong_token_is_auth_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_wrongtoken000000000")
    with vllm.make_server(api_key=KEY) as server:
        provider = hf(server)
        with pytest.raises(ProviderAuthError) as info:
            await provider.chat(HI, model="sim-model")
        await provider.close()
    assert "hf_wrongtoken" not in str(info.value)


# -- the text-generation route -----------------------------------------------------------------


async def test_stream_over_text_generation(tgi: SimServer) -> None:
    provider = hf(tgi, api_key=KEY)
    tgi.script(Script(text="Hello there, friend.", pieces=4))
    chunks, error = await collect(
        provider.stream(HI, model=MODEL, hf_route="text-generation", max_tokens=64, temperature=0.5)
    )
    await provider.close()
    assert error is None
    assert text_of(chunks) == "Hello there, friend."  # the EOS special token is not shown
    final = chunks[-1]
    assert final.is_final and final.stop_reason == "stop"
    assert (
        final.metadata["native_stop_reason"] == "eos_token"
        and final.metadata["hf_route"] == "text-generation"
    )
    assert final.usage is not None and final.usage.completion_tokens == 4
    [req] = posts(tgi)
    assert req.path == f"/hf-inference/models/{MODEL}"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.body == {
        "inputs": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n",
        "parameters": {
            "return_full_text": False,
            "details": True,
            "stop": ["<|im_end|>", "<|im_start|>"],
            "max_new_tokens": 64,
            "temperature": 0.5,
            "do_sample": True,
        },
        "stream": True,
    }


async def test_chat_over_text_generation_greedy_and_length(tgi: SimServer) -> None:
    provider = hf(tgi, api_key=KEY)
    tgi.script(Script(text="aaaabbbbccccddddeeeeffff", pieces=6))
    tools = [ToolDefinition(name="lookup", description="Look up")]
    reply = await provider.chat(
        HI, model=MODEL, hf_route="text-generation", max_tokens=3, temperature=0.0, tools=tools
    )
    await provider.close()
    assert reply.content == "aaaabbbbcccc" and reply.stop_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    assert reply.metadata["tools_omitted"]
    params = posts(tgi)[0].body["parameters"]
    assert params["do_sample"] is False and "temperature" not in params  # TGI refuses 0
    assert posts(tgi)[0].body["stream"] is False


async def test_route_chosen_by_capabilities_entry(tgi: SimServer, tmp_path: Path) -> None:
    override = tmp_path / "model_capabilities.yaml"
    override.write_text(
        'models:\n  "meta-llama/llama-3.1-8b":\n    providers:\n      huggingface:\n'
        "        hf_route: text-generation\n",
        encoding="utf-8",
    )
    load_capabilities(override)
    provider = hf(tgi, api_key=KEY)
    reply = await provider.chat(HI, model="meta-llama/Llama-3.1-8B")
    await provider.close()
    assert reply.content == "Hello from the simulator."
    [req] = posts(tgi)
    assert req.path == "/hf-inference/models/meta-llama/Llama-3.1-8B"
    assert req.body["inputs"].startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")
    assert req.body["parameters"]["stop"] == ["<|eot_id|>"]


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_unauthorized(tgi: SimServer, stream: bool) -> None:
    provider = hf(tgi, api_key="hf_notthetoken00000000")
    call = (
        collect(provider.stream(HI, model=MODEL, hf_route="text-generation"))
        if stream
        else provider.chat(HI, model=MODEL, hf_route="text-generation")
    )
    if stream:
        _, error = await call  # type: ignore[misc]
    else:
        with pytest.raises(ProviderAuthError) as info:
            await call
        error = info.value
    await provider.close()
    assert isinstance(error, ProviderAuthError) and error.status_code == 401
    assert "hf_notthetoken" not in str(error)
    assert len(posts(tgi)) == 1  # an auth failure is not retried


async def test_unknown_model(tgi: SimServer) -> None:
    provider = hf(tgi, api_key=KEY)
    with pytest.raises(ModelNotFoundError) as info:
        await provider.chat(HI, model="nobody/nothing", hf_route="text-generation")
    await provider.close()
    assert info.value.status_code == 404 and "does not exist" in info.value.message


async def test_model_loading_carries_estimated_time(tgi: SimServer) -> None:
    provider = hf(tgi, api_key=KEY, retry_policy=NO_RETRY)
    tgi.script(Script(fault=Fault.LOADING))
    with pytest.raises(ModelLoadingError) as info:
        await provider.chat(HI, model=MODEL, hf_route="text-generation")
    assert info.value.retry_after == 20.0 and info.value.retryable and info.value.status_code == 503
    # With retries, the wait asked for is the server's estimate, then the reply arrives.
    sleeps = Sleeps()
    retrying = hf(tgi, api_key=KEY, retry_policy=RetryPolicy(max_retries=1, base_delay=0.0, jitter=0.0))
    retrying._sleep = sleeps
    tgi.script(Script(fault=Fault.LOADING))
    chunks, error = await collect(retrying.stream(HI, model=MODEL, hf_route="text-generation"))
    await provider.close()
    await retrying.close()
    assert error is None and text_of(chunks) == "Hello from the simulator."
    assert sleeps.delays == [20.0]


async def test_midstream_error_keeps_partial(tgi: SimServer) -> None:
    provider = hf(tgi, api_key=KEY)
    tgi.script(Script(text="abcdefgh", pieces=4, fault=Fault.MIDSTREAM_ERROR, fail_after=2))
    chunks, error = await collect(provider.stream(HI, model=MODEL, hf_route="text-generation"))
    await provider.close()
    assert text_of(chunks) == "abcd"
    assert isinstance(error, ProviderServerError) and "CUDA error" in error.message
    assert error.partial_content == "abcd"
    assert len(posts(tgi)) == 1  # output was delivered: never retried


async def test_truncated_stream_is_a_transport_error_with_partial(tgi: SimServer) -> None:
    provider = hf(tgi, api_key=KEY)
    tgi.script(Script(text="abcdefgh", pieces=4, fault=Fault.TRUNCATED, fail_after=2))
    chunks, error = await collect(provider.stream(HI, model=MODEL, hf_route="text-generation"))
    await provider.close()
    assert text_of(chunks) == "abcd"
    assert isinstance(error, ProviderConnectionError | InvalidResponseError)
    assert error.partial_content == "abcd"


async def test_malformed_event_and_context_overflow(tgi: SimServer) -> None:
    provider = hf(tgi, api_key=KEY, retry_policy=NO_RETRY)
    tgi.script(Script(text="abcdefgh", pieces=4, fault=Fault.MALFORMED, fail_after=1))
    chunks, error = await collect(provider.stream(HI, model=MODEL, hf_route="text-generation"))
    assert isinstance(error, InvalidResponseError) and error.partial_content == "ab" == text_of(chunks)
    tgi.script(Script(fault=Fault.CONTEXT_OVERFLOW))
    with pytest.raises(ContextLengthExceededError):
        await provider.chat(HI, model=MODEL, hf_route="text-generation")
    await provider.close()


# -- prompt templates --------------------------------------------------------------------------

CONVERSATION = [
    Message(role="system", content="S."),
    Message(role="user", content="Q?"),
    Message(role="assistant", content="", tool_calls=[ToolCall(id="c1", name="f", arguments={"x": 1})]),
    Message(role="tool", tool_call_id="c1", name="f", content="42"),
]


def test_template_families() -> None:
    assert template_for("meta-llama/Meta-Llama-3-8B-Instruct") == "llama3"
    assert template_for("mistralai/Mistral-7B-Instruct-v0.3") == "mistral"
    assert template_for("google/gemma-2-9b-it") == "gemma"
    assert template_for("Qwen/Qwen2.5-7B-Instruct") == "chatml"
    assert template_for("openai-community/gpt2") == "chatml"
    assert template_for("google/gemma-2-9b-it", "chatml") == "chatml"
    with pytest.raises(ValueError, match="Unknown chat template"):
        template_for("x", "jinja-of-my-own")


def test_templates_render_tools_as_text() -> None:
    prompt, stops = build_prompt(CONVERSATION, "chatml")
    assert prompt == (
        "<|im_start|>system\nS.<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n"
        '<|im_start|>assistant\n\n[called f({"x": 1})]<|im_end|>\n'
        "<|im_start|>user\nTool result (f): 42<|im_end|>\n<|im_start|>assistant\n"
    )
    prompt, stops = build_prompt(CONVERSATION, "mistral")
    assert prompt == '<s>[INST] S.\n\nQ? [/INST] \n[called f({"x": 1})]</s>[INST] Tool result (f): 42 [/INST]'
    assert stops == ["</s>", "[INST]"]
    prompt, _ = build_prompt(CONVERSATION, "gemma")
    assert prompt.startswith("<bos><start_of_turn>user\nS.\n\nQ?<end_of_turn>\n<start_of_turn>model\n")
    assert prompt.endswith("<start_of_turn>user\nTool result (f): 42<end_of_turn>\n<start_of_turn>model\n")
    prompt, _ = build_prompt(CONVERSATION[:2], "llama3")
    assert prompt == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
