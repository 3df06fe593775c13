"""Well-formed JSON of the wrong shape in the providers' replies (issue 16, finding 8).

Model listings (Ollama ``/api/tags``, ``/api/show``; OpenAI-compatible ``/v1/models``), whole chat
replies and stream chunks, each served by our own loopback server. Every case must end in
:class:`InvalidResponseError` naming what was wrong (or, where marked, in a usable result):
never AttributeError, TypeError, KeyError, OverflowError, ValidationError or RecursionError.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.providers.openai_sims import FAST, RecordingSleep
from tests.servers.hostile import Raw, reply, serving
from victor_gui.errors import InvalidResponseError
from victor_gui.providers.catalog import find_spec
from victor_gui.providers.protocols.ollama import OllamaProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message

DEEP = Raw("[" * 100_000 + "]" * 100_000)
USER = [Message(role="user", content="hi")]
OK = "<usable result>"


def ndjson(*lines: Any) -> tuple[int, Any, dict[str, str]]:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    return reply(text.encode(), Content_Type="application/x-ndjson")


def sse(*events: Any) -> tuple[int, Any, dict[str, str]]:
    text = "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events)
    text += "data: [DONE]\n\n"
    return reply(text.encode(), Content_Type="text/event-stream")


def _ollama(url: str) -> OllamaProvider:
    return OllamaProvider(spec=find_spec("ollama"), base_url=url, max_retries=0)


def _openai(url: str) -> Any:
    return ProviderRegistry.create("vllm", base_url=url + "/v1", retry_policy=FAST, sleep=RecordingSleep())


async def _drain(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


Call = Callable[[Any], Awaitable[Any]]
OLLAMA_CALLS: dict[str, tuple[str, Call]] = {
    "list": ("/api/tags", lambda p: p.list_models()),
    "show": ("/api/show", lambda p: p.show_model("m")),
    "chat": ("/api/chat", lambda p: p.chat(USER, model="m")),
    "stream": ("/api/chat", lambda p: _drain(p.stream(USER, model="m"))),
}
OPENAI_CALLS: dict[str, tuple[str, Call]] = {
    "list": ("/v1/models", lambda p: p.list_models()),
    "chat": ("/v1/chat/completions", lambda p: p.chat(USER, model="m")),
    "stream": ("/v1/chat/completions", lambda p: _drain(p.stream(USER, model="m"))),
}
MSG = {"role": "assistant", "content": "hello"}
DONE = {"model": "m", "message": MSG, "done": True, "done_reason": "stop"}
CHOICE = {"index": 0, "message": MSG, "finish_reason": "stop"}

CASES: list[tuple[str, str, Any, str]] = [
    # Ollama /api/tags
    ("ollama", "list", {"models": [1]}, "/api/tags: models[0] is a number, not an object"),
    ("ollama", "list", {"models": "m"}, "/api/tags: models is a string, not a list"),
    ("ollama", "list", [1], "/api/tags: the reply is a list, not an object"),
    ("ollama", "list", {"models": [{"name": 5}]}, "/api/tags: models[0].name is a number"),
    ("ollama", "list", {"models": [{"name": "m", "size": "4GB"}]}, "/api/tags: models[0].size is a string"),
    ("ollama", "list", Raw('{"models":[{"name":"m","size":1e400}]}'), "/api/tags: models[0].size is inf"),
    ("ollama", "list", {"models": [{"name": "m", "details": "gguf"}]},
     "/api/tags: models[0].details is a string"),
    ("ollama", "list", {"models": [{"name": "m", "capabilities": 5}]},
     "/api/tags: models[0].capabilities is a number"),
    ("ollama", "list", DEEP, "nested too deeply"),
    ("ollama", "list", {"models": [{"name": "m", "size": 10}]}, OK),
    # Ollama /api/show
    ("ollama", "show", {"model_info": [1]}, "/api/show: model_info is a list, not an object"),
    ("ollama", "show", {"capabilities": "tools"}, "/api/show: capabilities is a string, not a list"),
    ("ollama", "show", Raw('{"model_info":{"llama.context_length":1e400}}'), "llama.context_length is inf"),
    ("ollama", "show", {"model_info": {"general.architecture": 5}}, "general.architecture is a number"),
    ("ollama", "show", {"details": 5}, "/api/show: details is a number, not an object"),
    ("ollama", "show", DEEP, "nested too deeply"),
    # Ollama /api/chat, whole and streamed
    ("ollama", "chat", {"message": "hi", "done": True}, "message"),
    ("ollama", "chat", {"message": {"content": 5}, "done": True}, "message.content is a number"),
    ("ollama", "chat", {"message": {"content": "x", "tool_calls": "y"}, "done": True},
     "message.tool_calls is a string"),
    # Counts only describe a reply: a wrong one is dropped as unknown, the reply is kept (finding 2).
    ("ollama", "chat", {**DONE, "eval_count": "5"}, OK),
    ("ollama", "chat", Raw('{"message":{"content":"x"},"done":true,"prompt_eval_count":1e400}'), OK),
    ("ollama", "chat", DEEP, "nested too deeply"),
    ("ollama", "stream", ndjson({"message": "x", "done": False}, DONE), "message is a string, not an object"),
    ("ollama", "stream", ndjson({"message": {"content": 5}, "done": False}, DONE),
     "message.content is a number"),
    ("ollama", "stream", ndjson({**DONE, "eval_count": [1]}), OK),
    ("ollama", "stream", ndjson("[1]", DONE), "Unexpected stream line"),
    ("ollama", "stream", ndjson("[" * 100_000 + "]" * 100_000, DONE), "nested too deeply"),
    # OpenAI-compatible /v1/models
    ("openai", "list", Raw('{"data":[{"id":"m","max_model_len":1e400}]}'),
     "/v1/models: data[0].max_model_len is inf"),
    ("openai", "list", {"data": [1]}, "/v1/models: data[0] is a number, not an object"),
    ("openai", "list", {"data": "m"}, "/v1/models: data is a string, not a list"),
    ("openai", "list", {"data": [{"id": 5}]}, "/v1/models: data[0].id is a number"),
    ("openai", "list", {"data": [{"id": "m", "meta": [1]}]}, "/v1/models: data[0].meta is a list"),
    ("openai", "list", DEEP, "nested too deeply"),
    ("openai", "list", {"data": [{"id": "m", "max_model_len": 4096}]}, OK),
    # OpenAI-compatible chat, whole and streamed
    ("openai", "chat", {"choices": "x"}, "choices is a string, not a list"),
    ("openai", "chat", {"choices": [1]}, "choices[0] is a number, not an object"),
    ("openai", "chat", {"choices": [{"message": "hi"}]}, "choices[0].message is a string, not an object"),
    ("openai", "chat", {"choices": [{"message": {"content": 5}}]}, "choices[0].message.content is a number"),
    ("openai", "chat", {"choices": [CHOICE], "usage": {"prompt_tokens": "5"}}, OK),
    ("openai", "chat", {"choices": [CHOICE], "usage": "x"}, OK),
    ("openai", "chat", {"choices": [CHOICE], "usage": {"prompt_tokens": 2**64}}, OK),
    ("openai", "chat", {"choices": [{"message": {"content": "x", "tool_calls": "y"}}]},
     "choices[0].message.tool_calls is a string"),
    ("openai", "chat", DEEP, "nested too deeply"),
    ("openai", "stream", sse({"choices": "x"}), "choices is a string, not a list"),
    ("openai", "stream", sse({"choices": [{"delta": "hi"}]}), "choices[0].delta is a string, not an object"),
    ("openai", "stream", sse({"choices": [{"delta": {"content": 5}}]}),
     "choices[0].delta.content is a number"),
    ("openai", "stream", sse({"choices": [{"delta": {"content": "a"}, "finish_reason": "stop"}]},
                             {"choices": [], "usage": {"completion_tokens": "9"}}), OK),
    ("openai", "stream", sse("[1]"), "Unexpected stream event"),
    ("openai", "stream", sse("[" * 100_000 + "]" * 100_000), "nested too deeply"),
]


def _case_id(case: tuple[str, str, Any, str]) -> str:
    who, call, body, _ = case
    if isinstance(body, tuple):
        body = body[1].decode()
    text = body if isinstance(body, str) else repr(body)
    return f"{who}-{call}:{text[:30]}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
async def test_wrong_shape_reply_raises_invalid_response(case: tuple[str, str, Any, str]) -> None:
    who, call, body, expected = case
    path, run = (OLLAMA_CALLS if who == "ollama" else OPENAI_CALLS)[call]
    route = body if isinstance(body, tuple) else reply(body)
    routes = {path: route, "/api/ps": reply({"models": []})}
    with serving(routes) as server:
        provider = _ollama(server.url) if who == "ollama" else _openai(server.url)
        try:
            if expected == OK:
                assert await run(provider)
                return
            with pytest.raises(InvalidResponseError) as caught:
                await run(provider)
        finally:
            await provider.close()
    assert expected in caught.value.message, caught.value.message
