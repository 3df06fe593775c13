"""compare_exchanges: status, headers, JSON shapes, SSE order and chunk shapes."""

from __future__ import annotations

import json

import httpx

from tests.support.conformance import compare_exchanges
from tests.support.llama_requests import Exchange
from tests.support.shapes import parse_sse

JSON_HEADERS = {"server": "llama.cpp", "content-type": "application/json; charset=utf-8"}


def _json(status: int, body: object, **headers: str) -> Exchange:
    return Exchange(status, httpx.Headers({**JSON_HEADERS, **headers}), json.dumps(body).encode())


def _sse(*payloads: object, **headers: str) -> Exchange:
    raw = b"".join(b"data: " + (p if isinstance(p, bytes) else json.dumps(p).encode()) + b"\n\n"
                   for p in payloads)
    hdrs = httpx.Headers({"server": "llama.cpp", "content-type": "text/event-stream", **headers})
    return Exchange(200, hdrs, raw, parse_sse(raw))


def test_identical_shapes_with_different_values_compare_equal() -> None:
    real = _json(200, {"object": "list", "data": [{"id": "a", "created": 1}]})
    sim = _json(200, {"object": "list", "data": [{"id": "b", "created": 2}, {"id": "c", "created": 3}]})
    assert compare_exchanges(real, sim) == []


def test_status_headers_and_contract_values_are_compared() -> None:
    real = _json(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}},
                 connection="close")
    sim = _json(404, {"error": {"code": 404, "message": "Not Found", "type": "not_found_error"}})
    assert compare_exchanges(real, sim) == [
        "header connection: 'close' != None",
        "$.error.message: =File Not Found != =Not Found",
    ]
    assert compare_exchanges(real, _json(400, real.json()))[0] == "status: 404 != 400"


def test_numbers_in_error_messages_do_not_count() -> None:
    def overflow(n: int) -> Exchange:
        return _json(400, {"error": {"code": 400, "type": "exceed_context_size_error",
                                     "message": f"request ({n} tokens) exceeds the available context size"}})
    assert compare_exchanges(overflow(10047), overflow(70012)) == []


def test_streams_compare_order_and_per_kind_shapes() -> None:
    role = {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
    text = {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]}
    done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "timings": {"predicted_n": 2}}
    real = _sse(role, text, text, done, b"[DONE]")
    sim_text = {"choices": [{**text["choices"][0], "logprobs": None}]}
    sim = _sse(role, sim_text, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    assert compare_exchanges(real, sim) == [
        "stream order: ['role', 'content+', 'finish:stop', '[DONE]'] != ['role', 'content', 'finish:stop']",
        "<content>.choices[]: extra key 'logprobs'",
        "<finish:stop>: missing key 'timings'",
    ]
    assert compare_exchanges(real, _json(200, {})) == ["header content-type: 'text/event-stream' != "
                                                       "'application/json; charset=utf-8'",
                                                       "body: text/event-stream != application/json"]


def test_a_simulator_that_hangs_up_is_a_difference() -> None:
    error = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    assert compare_exchanges(_json(200, {}), error) == [
        "no reply: RemoteProtocolError: Server disconnected without sending a response."]
