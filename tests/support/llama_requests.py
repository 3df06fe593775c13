"""Scripted HTTP requests for llama-server-like endpoints (the real one and the simulator).

:func:`send` performs one :class:`Scripted` request with a fresh connection and returns an
:class:`Exchange` (status, headers, raw body, parsed JSON or SSE events). The same list of
requests drives the raw-HTTP tier and the simulator conformance check.

A fresh connection per request is deliberate: llama-server closes the connection after a
streamed reply although it answered ``Keep-Alive: timeout=5, max=100``, so a pooled
connection reused right after a stream fails with "Server disconnected without sending a
response" (``test_llamacpp_real.py`` pins that behaviour down).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.shapes import SSEEvent, parse_sse

USER_HI = [{"role": "user", "content": "hi"}]

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

#: The conversation after one get_weather call came back: the model must answer in text.
AFTER_TOOL_RESULT = [
    *USER_HI,
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
]


@dataclass(frozen=True)
class Scripted:
    """One request: method, path, and a JSON body (or raw bytes for malformed-body cases)."""

    name: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    raw: bytes | None = None

    @property
    def streams(self) -> bool:
        return bool(self.body and self.body.get("stream"))


@dataclass
class Exchange:
    """What came back for one :class:`Scripted` request."""

    status: int
    headers: httpx.Headers
    raw: bytes
    events: list[SSEEvent] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def json(self) -> Any:
        return json.loads(self.raw)

    def event_payloads(self) -> list[Any]:
        """The JSON of every data event except ``[DONE]``."""
        return [e.json() for e in self.events if e.data not in (None, "[DONE]")]


def send(base_url: str, req: Scripted, *, timeout_s: float = 50.0) -> Exchange:
    """Perform ``req`` against ``base_url`` on a new connection; SSE bodies are parsed strictly."""
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=base_url, timeout=timeout_s, limits=limits) as client:
        if req.raw is not None:
            response = client.request(req.method, req.path, content=req.raw,
                                      headers={"Content-Type": "application/json"})
        else:
            response = client.request(req.method, req.path, json=req.body)
    exchange = Exchange(response.status_code, response.headers, response.content)
    if exchange.content_type == "text/event-stream":
        exchange.events = parse_sse(response.content)
    return exchange


def chat(messages: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A chat body: greedy sampling and a short cap unless overridden."""
    body: dict[str, Any] = {"messages": messages or USER_HI, "temperature": 0, "max_tokens": 8}
    body.update(extra)
    return body


#: The requests both the real server and the simulator get (see test_llamacpp_conformance.py).
CONFORMANCE_REQUESTS: tuple[Scripted, ...] = (
    Scripted("health", "GET", "/health"),
    Scripted("models", "GET", "/v1/models"),
    Scripted("props", "GET", "/props"),
    Scripted("slots", "GET", "/slots"),
    Scripted("props_post", "POST", "/props", {"n_ctx": 8}),
    Scripted("unknown_route", "GET", "/no/such/route"),
    Scripted("metrics_disabled", "GET", "/metrics"),
    Scripted("chat", "POST", "/v1/chat/completions", chat()),
    Scripted("chat_stream", "POST", "/v1/chat/completions", chat(stream=True)),
    Scripted("chat_stream_usage", "POST", "/v1/chat/completions",
             chat(stream=True, stream_options={"include_usage": True})),
    Scripted("tools", "POST", "/v1/chat/completions", chat(tools=[WEATHER_TOOL], max_tokens=64)),
    Scripted("tools_stream", "POST", "/v1/chat/completions",
             chat(tools=[WEATHER_TOOL], max_tokens=64, stream=True)),
    Scripted("context_overflow", "POST", "/v1/chat/completions",
             chat([{"role": "user", "content": "hi " * 5000}])),
    Scripted("context_overflow_stream", "POST", "/v1/chat/completions",
             chat([{"role": "user", "content": "hi " * 5000}], stream=True)),
    Scripted("messages_not_array", "POST", "/v1/chat/completions", {"messages": "hi"}),
    Scripted("malformed_json", "POST", "/v1/chat/completions", raw=b"{not json"),
    Scripted("empty_body", "POST", "/v1/chat/completions", raw=b""),
    Scripted("messages_missing", "POST", "/v1/chat/completions", {"prompt": "hi"}),
    Scripted("message_without_content", "POST", "/v1/chat/completions", {"messages": [{"role": "user"}]}),
    Scripted("length", "POST", "/v1/chat/completions", chat(max_tokens=1)),
    Scripted("length_stream", "POST", "/v1/chat/completions", chat(max_tokens=1, stream=True)),
    Scripted("image_without_mmproj", "POST", "/v1/chat/completions", chat([{"role": "user", "content": [
        {"type": "text", "text": "hi"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])),
    Scripted("stream_not_bool", "POST", "/v1/chat/completions", chat(stream="yes")),
)
