"""Pure parts of the OpenAI protocol: chunk assembly, usage, timings, error mapping, listings,
and the odd stream shapes real servers produce (via the simulators' options)."""

from __future__ import annotations

import pytest

from tests.providers.openai_sims import HI, collect, make_provider, running, text_of
from tests.servers.base import Fault, Script
from victor_gui.errors import (
    BadRequestError,
    ContextLengthExceededError,
    InvalidResponseError,
    ModelLoadingError,
    ProviderServerError,
)
from victor_gui.providers.protocols.openai_models import models_from_payload
from victor_gui.providers.protocols.openai_stream import (
    StreamAssembler,
    error_from_payload,
    server_timings,
    usage_from,
)


def test_usage_details() -> None:
    usage = usage_from(
        {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 8},
            "completion_tokens_details": {"reasoning_tokens": 3},
        }
    )
    assert usage is not None
    assert (usage.cached_tokens, usage.reasoning_tokens, usage.total_tokens) == (8, 3, 15)
    assert usage_from({"prompt_tokens": 4, "prompt_cache_hit_tokens": 2}).cached_tokens == 2  # DeepSeek
    assert usage_from(None) is None


def test_server_timings_from_counts_when_rates_are_missing() -> None:
    timings = server_timings({"predicted_n": 100, "predicted_ms": 2000.0, "prompt_n": 50, "prompt_ms": 100.0})
    assert timings is not None and timings.source == "server"
    assert timings.tokens_per_second == pytest.approx(50.0)
    assert timings.prompt_tokens_per_second == pytest.approx(500.0)
    assert server_timings({"cache_n": 3}) is None and server_timings("x") is None


def test_assembler_tool_fragments_without_index_and_object_arguments() -> None:
    asm = StreamAssembler(provider="p", model="m", think_anywhere=False)
    chunks = asm.feed(
        {
            "choices": [
                {"delta": {"tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {"a": 1}}}]}}
            ]
        }
    )
    assert chunks[0].tool_call_deltas is not None and chunks[0].tool_call_deltas[0].index == 0
    asm.feed({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]})
    final = asm.final_chunk()
    assert final.tool_calls is not None and final.tool_calls[0].arguments == {"a": 1}
    assert final.stop_reason == "tool_calls" and final.timings is not None


CONTEXT = ContextLengthExceededError


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}},
            ModelLoadingError,
        ),
        ({"error": {"message": "boom", "type": "InternalServerError", "code": 500}}, ProviderServerError),
        (
            {"error": {"message": "x", "type": "exceed_context_size_error", "code": 400}},
            ContextLengthExceededError,
        ),
        ({"error": {"message": "bad field", "type": "invalid_request_error"}}, BadRequestError),
        ({"error": "Unexpected endpoint or method. (POST /chat/completions)"}, InvalidResponseError),
        ({"error": "something odd"}, ProviderServerError),
        ({"error": "tokens to keep is greater than the context length (n_keep: 9>= n_ctx: 4)"}, CONTEXT),
    ],
)
def test_error_payload_mapping(payload: dict, expected: type) -> None:
    error = error_from_payload(payload, provider="p", model="m", partial="so far")
    assert type(error) is expected and error.partial_content == "so far"


def test_listing_shapes() -> None:
    models = models_from_payload(
        {
            "data": [
                {"id": "a", "status": {"value": "loaded"}},  # llama.cpp router mode
                {"id": "b", "status": {"value": "unloaded"}},
                {"id": "c", "state": "not-loaded", "max_context_length": 4096},
                {"id": "c", "state": "loaded", "loaded_context_length": 2048},  # LM Studio duplicate
                {"object": "model"},  # no id: skipped
            ]
        },
        "p",
    )
    assert [(m.id, m.loaded, m.context_length) for m in models] == [
        ("a", True, None),
        ("b", False, None),
        ("c", True, 2048),
    ]
    assert models_from_payload({"unexpected": 1}, "p") == []
    # A listing entry of the wrong shape is the server's fault, said as such (issue 16).
    with pytest.raises(InvalidResponseError, match=r"data\[1\] is a string, not an object"):
        models_from_payload({"data": [{"id": "a"}, "junk"]}, "p")


async def test_old_llamacpp_error_lines_mid_stream() -> None:
    with running("llamacpp", old_error_lines=True) as server:
        server.script(Script(text="abcdefgh", pieces=4, fault=Fault.MIDSTREAM_ERROR))
        async with make_provider("llamacpp", server) as provider:
            with pytest.raises(ProviderServerError) as info:
                await collect(provider.stream(HI, model="sim-model"))
        assert info.value.partial_content == "abcd" and len(server.chat_requests()) == 1


@pytest.mark.parametrize("dialect", ["vllm", "llamacpp"])
async def test_html_page_with_200_is_invalid(dialect: str) -> None:
    with running(dialect, html_status=200) as server:
        server.script(Script(fault=Fault.HTML, repeat=5))
        async with make_provider(dialect, server) as provider:
            with pytest.raises(InvalidResponseError, match="HTML"):
                await provider.chat(HI, model="sim-model")
            with pytest.raises(InvalidResponseError, match="HTML"):
                await collect(provider.stream(HI, model="sim-model"))
        assert len(server.chat_requests()) == 2


async def test_whole_json_answer_to_a_stream_request() -> None:
    with running("vllm", ignore_stream=True) as server:
        server.script(Script(text="whole reply", reasoning="r"))
        async with make_provider("vllm", server) as provider:
            chunks = await collect(provider.stream(HI, model="sim-model"))
        assert text_of(chunks) == "whole reply" and chunks[0].reasoning == "r"
        assert chunks[-1].is_final and chunks[-1].usage is not None


async def test_vllm_old_reasoning_content_field() -> None:
    with running("vllm", old_reasoning=True) as server:
        server.script(Script(text="ans", reasoning="because"))
        async with make_provider("vllm", server) as provider:
            chunks = await collect(provider.stream(HI, model="sim-model"))
        assert "".join(c.reasoning for c in chunks) == "because" and text_of(chunks) == "ans"


def test_openrouter_error_chunk_with_choices_raises() -> None:
    asm = StreamAssembler(provider="openrouter", model="m", think_anywhere=False)
    asm.feed({"choices": [{"delta": {"content": "so"}}]})
    with pytest.raises(ProviderServerError) as info:
        asm.feed(
            {
                "error": {"code": 502, "message": "upstream died"},
                "choices": [{"delta": {"content": ""}, "finish_reason": "error"}],
            }
        )
    assert info.value.partial_content == "so"


def test_field_and_inline_reasoning_are_not_doubled() -> None:
    asm = StreamAssembler(provider="llamacpp", model="m", think_anywhere=True)
    out = asm.feed({"choices": [{"delta": {"reasoning_content": "plan", "content": "<think>plan</think>"}}]})
    out += asm.feed({"choices": [{"delta": {"content": "done"}}]})
    assert "".join(c.reasoning for c in out) == "plan" and "".join(c.content for c in out) == "done"
