"""Compare two replies to the same request by shape: the real llama-server's and a simulator's.

:func:`compare_exchanges` returns readable difference lines (empty when the simulator answers
like the real server) covering the status code, the headers a client looks at, and either the
JSON body's shape or, for SSE, the event order and the shape of each kind of chunk.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.llama_requests import Exchange
from tests.support.shapes import DEFAULT_KEEP, diff_shapes, merged_chunk_shape, shape, stream_outline

#: Headers whose value (or presence) a client or a fingerprinting probe depends on.
COMPARED_HEADERS = ("server", "content-type", "x-accel-buffering", "connection")

# In error bodies the code and the message text are part of the contract too (clients match
# "Loading model", "File Not Found", the context-overflow sentence).
ERROR_KEEP = DEFAULT_KEEP | {"code", "message"}


def header_view(exchange: Exchange) -> dict[str, str | None]:
    """The compared headers: value for ``server``/``content-type``, else presence/value."""
    return {name: exchange.headers.get(name) for name in COMPARED_HEADERS}


def compare_exchanges(real: Exchange, sim: Exchange | httpx.TransportError) -> list[str]:
    """Difference lines, ``real`` being the reference. ``sim`` may be the transport error the
    simulator's side ended in (e.g. it dropped the connection without a reply)."""
    if isinstance(sim, httpx.TransportError):
        return [f"no reply: {type(sim).__name__}: {sim}"]
    out: list[str] = []
    if real.status != sim.status:
        out.append(f"status: {real.status} != {sim.status}")
    real_h, sim_h = header_view(real), header_view(sim)
    out += [f"header {k}: {real_h[k]!r} != {sim_h[k]!r}" for k in COMPARED_HEADERS if real_h[k] != sim_h[k]]
    real_sse, sim_sse = real.content_type == "text/event-stream", sim.content_type == "text/event-stream"
    if real_sse != sim_sse:
        return [*out, f"body: {real.content_type} != {sim.content_type}"]
    if real_sse:
        return out + _compare_streams(real, sim)
    try:
        real_body, sim_body = real.json(), sim.json()
    except ValueError as exc:
        return [*out, f"body: not JSON ({exc})"]
    keep = _scrub(ERROR_KEEP if real.status >= 400 else DEFAULT_KEEP, real_body)
    real_shape = shape(_numbers_out(real_body), keep=keep)
    return out + diff_shapes(real_shape, shape(_numbers_out(sim_body), keep=keep))


def _scrub(keep: frozenset[str], body: object) -> frozenset[str]:
    # A parse-error message quotes the offending input, so only its shape is compared.
    if isinstance(body, dict) and "parse error" in str(body.get("error", {}).get("message", "")):
        return keep - {"message"}
    return keep


def _numbers_out(body: Any) -> Any:
    """The body with digit runs in ``error.message`` replaced by ``N`` (token counts differ)."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = dict(body["error"])
        if isinstance(error.get("message"), str):
            error["message"] = re.sub(r"\d+", "N", error["message"])
        return {**body, "error": error}
    return body


def _compare_streams(real: Exchange, sim: Exchange) -> list[str]:
    out: list[str] = []
    real_outline, sim_outline = stream_outline(real.events), stream_outline(sim.events)
    if real_outline != sim_outline:
        out.append(f"stream order: {real_outline} != {sim_outline}")
    real_kinds, sim_kinds = merged_chunk_shape(real.events), merged_chunk_shape(sim.events)
    for kind, real_shape in real_kinds.items():
        if kind in sim_kinds:
            out += diff_shapes(real_shape, sim_kinds[kind], f"<{kind}>")
    return out
