"""Shape extraction, shape diffs and strict SSE framing (tests/support/shapes.py)."""

from __future__ import annotations

import pytest

from tests.support.shapes import (
    SSEEvent,
    SSEFramingError,
    chunk_kind,
    diff_shapes,
    merged_chunk_shape,
    parse_sse,
    shape,
    stream_outline,
)


def test_scalars_become_type_names_and_bool_is_not_int() -> None:
    assert shape({"a": 1, "b": 1.5, "c": "x", "d": None, "e": True}) == {
        "a": "int", "b": "float", "c": "str", "d": "null", "e": "bool"}
    assert shape({"a": 1, "b": 2.0}, loose_numbers=True) == {"a": "number", "b": "number"}


def test_contract_keys_keep_their_values() -> None:
    body = {"error": {"code": 400, "message": "too long", "type": "exceed_context_size_error"}}
    assert shape(body) == {"error": {"code": "int", "message": "str", "type": "=exceed_context_size_error"}}
    assert shape({"object": "list"}, keep=()) == {"object": "str"}


def test_arrays_keep_distinct_item_shapes_in_order() -> None:
    assert shape([1, 2, 3]) == ["int"]
    assert shape([]) == []
    assert shape([{"a": 1}, {"a": 2}, {"b": "x"}]) == [{"a": "int"}, {"b": "str"}]


def test_non_json_values_are_rejected() -> None:
    with pytest.raises(TypeError):
        shape({"a": object()})


def test_diff_reports_missing_extra_and_type_changes_with_paths() -> None:
    real = shape({"id": "x", "usage": {"prompt_tokens": 3}, "choices": [{"finish_reason": "stop"}]})
    sim = shape({"id": 7, "usage": {"prompt_tokens": 3, "extra": 1},
                 "choices": [{"finish_reason": "length"}]})
    assert diff_shapes(real, sim) == [
        "$.id: str != int",
        "$.usage: extra key 'extra'",
        "$.choices[].finish_reason: =stop != =length",
    ]
    assert diff_shapes(real, real) == []
    assert diff_shapes({"a": "int", "b": "str"}, {"b": "str"}) == ["$: missing key 'a'"]
    assert diff_shapes({"a": "int", "b": "str", "c": "null"}, {"d": "str"}) == [
        "$: missing keys 'a', 'b', 'c'", "$: extra key 'd'"]


def test_diff_ignores_key_order_and_compares_array_item_sets() -> None:
    assert diff_shapes({"a": "int", "b": "str"}, {"b": "str", "a": "int"}) == []
    assert diff_shapes(["int"], []) == ["$: non-empty array != empty array"]
    two = [{"id": "str", "function": {"name": "str"}}, {"function": {"arguments": "str"}}]
    assert diff_shapes(two, list(reversed(two))) == []
    assert diff_shapes(two, [two[0], {"x": "int"}]) == [
        "$[]: unexpected item shape object{x}",
        "$[]: item shape never seen object{function}",
    ]


def test_parse_sse_reads_data_comments_and_names() -> None:
    raw = b'data: {"a":1}\n\n: ping\n\nevent: error\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    events = parse_sse(raw)
    assert events == [
        SSEEvent('{"a":1}'), SSEEvent(None, None, ("ping",)), SSEEvent('{"b":2}', "error"),
        SSEEvent("[DONE]"),
    ]
    assert events[0].json() == {"a": 1}
    assert parse_sse(b'data: x\r\n\r\n') == [SSEEvent("x")]


@pytest.mark.parametrize("raw", [b'data: {"a":1}\n', b"data: x\n\nnonsense\n\n", b"data: \xff\n\n",
                                 b"foo: bar\n\n"])
def test_parse_sse_rejects_bad_framing(raw: bytes) -> None:
    with pytest.raises(SSEFramingError):
        parse_sse(raw)


def _chunk(delta: dict | None = None, finish: str | None = None, **extra: object) -> str:
    import json
    body: dict = {"object": "chat.completion.chunk",
                  "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}
    return json.dumps(body)


def test_stream_outline_collapses_runs_and_names_every_kind() -> None:
    import json
    frames = [
        _chunk({"role": "assistant", "content": None}),
        _chunk({"content": "he"}), _chunk({"content": "llo"}),
        _chunk({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                "function": {"name": "f", "arguments": ""}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        _chunk({}, "tool_calls"),
        json.dumps({"choices": [], "usage": {"prompt_tokens": 1}}),
        "[DONE]",
    ]
    events = [SSEEvent(f) for f in frames]
    assert stream_outline(events) == ["role", "content+", "tool_call_start", "tool_call_args",
                                      "finish:tool_calls", "usage", "[DONE]"]
    assert chunk_kind(SSEEvent(json.dumps({"error": {"code": 500}}))) == "error"
    assert chunk_kind(SSEEvent(None, comments=("ping",))) == "comment"
    assert chunk_kind(SSEEvent(_chunk({"reasoning_content": "hm"}))) == "reasoning"
    kinds = merged_chunk_shape(events)
    assert set(kinds) == {"role", "content", "tool_call_start", "tool_call_args",
                          "finish:tool_calls", "usage"}
    assert kinds["usage"] == {"choices": [], "usage": {"prompt_tokens": "int"}}
