"""The real llama-server's chat replies on the wire: whole replies, SSE framing, usage and
timings, streamed tool-call fragments, tool-result round trips (raw HTTP, no provider code)."""

from __future__ import annotations

import json

import pytest

from tests.support.llama_requests import AFTER_TOOL_RESULT, WEATHER_TOOL, Exchange, Scripted, chat, send
from tests.support.llama_server import LlamaServer
from tests.support.shapes import stream_outline

pytestmark = pytest.mark.llamacpp

TIMING_KEYS = {"cache_n", "prompt_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second",
               "predicted_n", "predicted_ms", "predicted_per_token_ms", "predicted_per_second"}


def post(server: LlamaServer, body: dict) -> Exchange:
    exchange = send(server.base_url, Scripted("chat", "POST", "/v1/chat/completions", body))
    assert exchange.status == 200, exchange.raw[:300]
    return exchange


def check_timings(timings: dict, completion_tokens: int | None) -> None:
    """``timings`` are milliseconds: per-second rates are counts / ms * 1000.

    The generation rate counts decode *steps*, ``predicted_n - 1``: the first token comes free
    from the prompt's logits (``server_slot_stats::n_gen_steps`` in this version), so a client
    that divides ``predicted_n`` by ``predicted_ms`` overstates tokens/s a little.
    """
    assert set(timings) == TIMING_KEYS
    if completion_tokens is not None:
        assert timings["predicted_n"] == completion_tokens
    steps = timings["predicted_n"] - 1
    if steps > 0:
        rate = steps / timings["predicted_ms"] * 1000
        assert timings["predicted_per_second"] == pytest.approx(rate, rel=1e-6)
        assert timings["predicted_per_token_ms"] == pytest.approx(timings["predicted_ms"] / steps, rel=1e-6)
    assert timings["prompt_per_second"] == pytest.approx(
        timings["prompt_n"] / timings["prompt_ms"] * 1000, rel=1e-6)


def test_whole_reply_shape_usage_and_timings(llama_server: LlamaServer) -> None:
    reply = post(llama_server, chat(max_tokens=6))
    assert reply.content_type == "application/json"
    body = reply.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == str(llama_server.model)
    assert body["system_fingerprint"].startswith("b")
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] in ("stop", "length")
    assert choice["message"]["role"] == "assistant"
    text = choice["message"]["content"]
    assert isinstance(text, str) and text.isascii() and text.replace("\n", "").isprintable()
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 1 <= usage["completion_tokens"] <= 6
    assert isinstance(usage["prompt_tokens_details"]["cached_tokens"], int)
    timings = body["timings"]
    check_timings(timings, usage["completion_tokens"])
    # Context in use = prompt_n + cache_n (+ predicted_n): the whole prompt is accounted for.
    assert timings["prompt_n"] + timings["cache_n"] == usage["prompt_tokens"]


def test_greedy_replies_are_repeatable(llama_server: LlamaServer) -> None:
    first = post(llama_server, chat(max_tokens=6)).json()["choices"][0]["message"]["content"]
    again = post(llama_server, chat(max_tokens=6)).json()["choices"][0]["message"]["content"]
    assert first == again


def test_stream_framing_order_and_terminal_events(llama_server: LlamaServer) -> None:
    reply = post(llama_server, chat(max_tokens=6, stream=True))
    assert reply.content_type == "text/event-stream"
    assert reply.headers["x-accel-buffering"] == "no"
    assert reply.raw.endswith(b"data: [DONE]\n\n")  # strict framing already checked by parse_sse
    outline = stream_outline(reply.events)
    assert outline[0] == "role" and outline[-1] == "[DONE]"
    assert outline[-2] in ("finish:stop", "finish:length")
    assert "usage" not in outline  # no usage chunk unless asked for
    chunks = reply.event_payloads()
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    finish = chunks[-1]
    assert finish["choices"][0]["delta"] == {}
    assert "usage" not in finish
    check_timings(finish["timings"], None)
    # Every content chunk is one generated token; an end-of-turn token is counted but not sent.
    n_content = len([c for c in chunks if c["choices"][0]["delta"].get("content")])
    assert n_content <= finish["timings"]["predicted_n"] <= n_content + 1


def test_stream_usage_chunk_with_include_usage(llama_server: LlamaServer) -> None:
    reply = post(llama_server, chat(max_tokens=6, stream=True, stream_options={"include_usage": True}))
    outline = stream_outline(reply.events)
    assert outline[-3:] == [outline[-3], "usage", "[DONE]"] and outline[-3].startswith("finish:")
    chunks = reply.event_payloads()
    finish, usage_chunk = chunks[-2], chunks[-1]
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # With include_usage the timings move from the finish chunk to the usage chunk.
    assert "timings" not in finish and "usage" not in finish
    check_timings(usage_chunk["timings"], usage["completion_tokens"])
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    whole = post(llama_server, chat(max_tokens=6)).json()["choices"][0]["message"]["content"]
    assert streamed == whole  # greedy: the stream carries exactly the whole reply's text


def test_tool_call_whole_reply(llama_server: LlamaServer) -> None:
    body = post(llama_server, chat(tools=[WEATHER_TOOL], max_tokens=64)).json()
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == ""  # empty string, not null, beside tool_calls
    (call,) = message["tool_calls"]
    assert call["type"] == "function" and isinstance(call["id"], str) and call["id"]
    assert call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], str)  # a JSON *string*, as OpenAI
    assert "city" in json.loads(call["function"]["arguments"])


def test_streamed_tool_call_fragments_keyed_by_index(llama_server: LlamaServer) -> None:
    reply = post(llama_server, chat(tools=[WEATHER_TOOL], max_tokens=64, stream=True))
    outline = stream_outline(reply.events)
    assert outline[:3] == ["role", "tool_call_start", "tool_call_args+"], outline
    assert outline[-2:] == ["finish:tool_calls", "[DONE]"]
    deltas = [c["choices"][0]["delta"] for c in reply.event_payloads()]
    fragments = [tc for d in deltas for tc in d.get("tool_calls") or []]
    first, rest = fragments[0], fragments[1:]
    assert set(first) == {"index", "id", "type", "function"} and first["type"] == "function"
    assert first["function"]["name"] == "get_weather"
    assert all(set(f) == {"index", "function"} and set(f["function"]) == {"arguments"} for f in rest)
    assert {f["index"] for f in fragments} == {0}
    arguments = "".join(f["function"]["arguments"] for f in fragments)
    assert "city" in json.loads(arguments)


def test_tool_result_round_trip_answers_in_text(llama_server: LlamaServer) -> None:
    body = post(llama_server, chat(AFTER_TOOL_RESULT, tools=[WEATHER_TOOL], max_tokens=8)).json()
    (choice,) = body["choices"]
    assert choice["finish_reason"] in ("stop", "length")
    assert "tool_calls" not in choice["message"]
    assert isinstance(choice["message"]["content"], str)


@pytest.mark.parametrize(("arch", "ftype"), [("qwen2", "q8_0"), ("qwen3", "f16"), ("llama", "f32")])
def test_every_generated_architecture_and_weight_type_serves(start_llama, tiny_model, arch: str,
                                                             ftype: str) -> None:
    """Each architecture and weight type of tests/support/tiny_gguf.py loads, answers printable
    text, and makes a real tool call when offered tools (the default llama/f16 model is covered
    by the tests above)."""
    server = start_llama(tiny_model(arch=arch, ftype=ftype))
    text = post(server, chat(max_tokens=8)).json()["choices"][0]["message"]["content"]
    assert text and text.isascii() and text.replace("\n", "").isprintable()
    choice = post(server, chat(tools=[WEATHER_TOOL], max_tokens=64)).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
