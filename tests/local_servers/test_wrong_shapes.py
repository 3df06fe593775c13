"""Well-formed JSON of the wrong shape from every server API the probes read (issue 16, finding 8).

Each case serves a healthy server of one kind from our own loopback server, with one route's body
replaced. A probe must end in a typed verdict: the endpoint's ``invalid_response`` state whose
diagnosis names the route and the field, or a clean "not this server" from fingerprinting; it
must never raise (an untyped AttributeError/TypeError/KeyError/OverflowError/RecursionError
escaping a probe used to kill the start-up discovery).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.servers.hostile import Raw, Route, reply, serving
from victor_gui.servers.probe import probe_endpoint
from victor_gui.servers.status import Endpoint, EndpointState, ServerKind

HTML = reply("<!DOCTYPE html><html><body>web UI</body></html>", Content_Type="text/html")
DEEP = Raw("[" * 100_000 + "]" * 100_000)
DEEP_OBJ = Raw('{"models":' + "[" * 100_000 + "]" * 100_000 + "}")
HUGE_INT = Raw('{"data":[{"id":"m","owned_by":"vllm","max_model_len":' + "9" * 5000 + "}]}")

OLLAMA: dict[str, Route] = {
    "/": reply("Ollama is running"),
    "/api/version": reply({"version": "0.5.7"}),
    "/api/ps": reply({"models": [{"name": "qwen:7b", "model": "qwen:7b", "size": 5_000_000_000,
                                  "size_vram": 5_000_000_000, "context_length": 4096}]}),
    "/api/tags": reply({"models": [{"name": "qwen:7b", "size": 4_000_000_000}]}),
}
LLAMACPP: dict[str, Route] = {
    "/": HTML,
    "/props": reply({"default_generation_settings": {"n_ctx": 4096}, "total_slots": 1, "build_info": "b1"}),
    "/v1/models": reply({"object": "list", "data": [{"id": "m.gguf", "meta": {"n_ctx_train": 8192,
                                                                              "size": 1000}}]}),
    "/slots": reply([{"id": 0, "n_ctx": 4096, "is_processing": False}]),
    "/health": reply({"status": "ok"}),
}
LMSTUDIO: dict[str, Route] = {
    "/api/v0/models": reply({"data": [{"id": "m", "state": "loaded", "loaded_context_length": 4096,
                                       "max_context_length": 8192}]}),
    "/api/v1/models": reply({"models": [{"key": "m",
                                         "loaded_instances": [{"config": {"context_length": 4096}}],
                                         "size_bytes": 1000, "max_context_length": 8192}]}),
    "/v1/models": reply({"data": [{"id": "m"}]}),
}
LMSTUDIO_FALLBACK = reply({"error": "Unexpected endpoint or method. (GET /x)"})
VLLM: dict[str, Route] = {
    "/": reply({"detail": "Not Found"}, 404),
    "/version": reply({"version": "0.6.3"}),
    "/v1/models": reply({"object": "list", "data": [{"id": "m", "owned_by": "vllm", "max_model_len": 4096}]}),
    "/health": reply(""),
    "/metrics": reply("vllm:kv_cache_usage_perc 0.25\n"),
}
OPENAI: dict[str, Route] = {"/v1/models": reply({"object": "list", "data": [{"id": "m"}]})}

BASES: dict[ServerKind, tuple[dict[str, Route], dict[str, Any]]] = {
    ServerKind.OLLAMA: (OLLAMA, {}),
    ServerKind.LLAMACPP: (LLAMACPP, {"headers": {"Server": "llama.cpp"}}),
    ServerKind.LMSTUDIO: (LMSTUDIO, {"fallback": LMSTUDIO_FALLBACK}),
    ServerKind.VLLM: (VLLM, {}),
    ServerKind.OPENAI: (OPENAI, {}),
}

NOT_THIS = "not this server"  # fingerprinting must say the endpoint is not (this kind of) server

# (kind, path, body, what the verdict must name: a diagnosis fragment, or NOT_THIS)
CASES: list[tuple[ServerKind, str, Any, str]] = [
    # Ollama /api/ps
    (ServerKind.OLLAMA, "/api/ps", {"models": [1]}, "/api/ps: models[0] is a number, not an object"),
    (ServerKind.OLLAMA, "/api/ps", {"models": "qwen"}, "/api/ps: models is a string, not a list"),
    (ServerKind.OLLAMA, "/api/ps", {"models": {"a": 1}}, "/api/ps: models is an object, not a list"),
    (ServerKind.OLLAMA, "/api/ps", [1, 2], "/api/ps: the reply is a list, not an object"),
    (ServerKind.OLLAMA, "/api/ps", Raw('{"models":[{"name":"q","size":1e400}]}'), "models[0].size is inf"),
    (ServerKind.OLLAMA, "/api/ps", {"models": [{"name": "q", "size": -5}]}, "models[0].size is -5"),
    (ServerKind.OLLAMA, "/api/ps", {"models": [{"name": "q", "size": "5GB"}]}, "models[0].size is a string"),
    (ServerKind.OLLAMA, "/api/ps", {"models": [{"name": "q", "context_length": [4096]}]},
     "models[0].context_length is a list"),
    (ServerKind.OLLAMA, "/api/ps", {"models": [{"name": 7}]}, "models[0].name is a number"),
    (ServerKind.OLLAMA, "/api/ps", {"models": [{"size": 1}]}, "models[0].name is missing"),
    (ServerKind.OLLAMA, "/api/ps", {"models": [{"name": "q", "size_vram": 10**30}]},
     "models[0].size_vram is 1000000000000000000000000000000, an impossible count"),
    (ServerKind.OLLAMA, "/api/ps", DEEP, "/api/ps: the reply is nested too deeply"),
    (ServerKind.OLLAMA, "/api/ps", DEEP_OBJ, "/api/ps: the reply is nested too deeply"),
    (ServerKind.OLLAMA, "/api/ps", Raw('{"models":[' + "1" * 5000 + "]}"),
     "/api/ps: the reply is not valid JSON"),
    (ServerKind.OLLAMA, "/api/tags", {"models": [1]}, "/api/tags: models[0] is a number, not an object"),
    (ServerKind.OLLAMA, "/api/tags", {"models": None, "x": 1}, ""),  # null list: no models, not an error
    (ServerKind.OLLAMA, "/api/tags", {"models": 3}, "/api/tags: models is a number, not a list"),
    (ServerKind.OLLAMA, "/api/tags", DEEP, "/api/tags: the reply is nested too deeply"),
    (ServerKind.OLLAMA, "/api/version", {"version": 5}, "/api/version: version is a number, not a string"),
    (ServerKind.OLLAMA, "/api/version", {"status": "ok"}, "/api/version: version is missing"),
    (ServerKind.OLLAMA, "/api/version", [1], "/api/version: the reply is a list, not an object"),
    (ServerKind.OLLAMA, "/api/version", DEEP, "/api/version: the reply is nested too deeply"),
    (ServerKind.OLLAMA, "/api/version", HTML[1], "/api/version: the reply is not valid JSON"),
    # llama.cpp /props, /slots, /v1/models, /health
    (ServerKind.LLAMACPP, "/props", {"default_generation_settings": [1]},
     "/props: default_generation_settings is a list, not an object"),
    (ServerKind.LLAMACPP, "/props", {"default_generation_settings": {"n_ctx": 1e300}},
     "/props: default_generation_settings.n_ctx is 1e+300, an impossible count"),
    (ServerKind.LLAMACPP, "/props", Raw('{"default_generation_settings":{"n_ctx":1e400}}'),
     "default_generation_settings.n_ctx is inf"),
    (ServerKind.LLAMACPP, "/props", {"default_generation_settings": {"n_ctx": "4096x"}},
     "default_generation_settings.n_ctx is a string"),
    (ServerKind.LLAMACPP, "/props", {"default_generation_settings": {}, "total_slots": "one"},
     "/props: total_slots is a string, not a whole number"),
    (ServerKind.LLAMACPP, "/props", {"default_generation_settings": {}, "is_sleeping": "no"},
     "/props: is_sleeping is a string, not true or false"),
    (ServerKind.LLAMACPP, "/props", DEEP, "/props: the reply is nested too deeply"),
    (ServerKind.LLAMACPP, "/slots", [1, 2], "/slots: [0] is a number, not an object"),
    (ServerKind.LLAMACPP, "/slots", {"slots": []}, "/slots: the reply is an object, not a list"),
    (ServerKind.LLAMACPP, "/slots", [{"n_ctx": -1}], "/slots: [0].n_ctx is -1"),
    (ServerKind.LLAMACPP, "/v1/models", {"data": [{"id": "m", "meta": [1]}]},
     "/v1/models: data[0].meta is a list"),
    (ServerKind.LLAMACPP, "/v1/models", {"data": [{"id": "m", "meta": {"size": "big"}}]},
     "/v1/models: data[0].meta.size is a string"),
    (ServerKind.LLAMACPP, "/v1/models", {"data": [{"id": "m", "status": {"value": 3}}]},
     "/v1/models: data[0].status.value is a number"),
    (ServerKind.LLAMACPP, "/v1/models", {"data": "m"}, "/v1/models: data is a string, not a list"),
    # LM Studio /api/v0/models, /api/v1/models
    (ServerKind.LMSTUDIO, "/api/v0/models",
     {"data": [{"id": "m", "state": "loaded", "loaded_context_length": 1e400}]},
     "/api/v0/models: data[0].loaded_context_length is inf"),  # written as Infinity, which json reads
    (ServerKind.LMSTUDIO, "/api/v0/models",
     Raw('{"data":[{"id":"m","state":"loaded","max_context_length":1e400}]}'),
     "/api/v0/models: data[0].max_context_length is inf"),
    (ServerKind.LMSTUDIO, "/api/v0/models", {"data": [{"id": ["m"], "state": "loaded"}]},
     "/api/v0/models: data[0].id is a list, not a string"),
    (ServerKind.LMSTUDIO, "/api/v0/models", {"data": [{"id": "m", "state": 1}]},
     "/api/v0/models: data[0].state is a number"),
    (ServerKind.LMSTUDIO, "/api/v1/models", {"models": [{"key": "m", "loaded_instances": 5}]},
     "/api/v1/models: models[0].loaded_instances is a number, not a list"),
    (ServerKind.LMSTUDIO, "/api/v1/models", {"models": [{"key": "m", "loaded_instances": [{"config": "x"}]}]},
     "/api/v1/models: models[0].loaded_instances[0].config is a string, not an object"),
    (ServerKind.LMSTUDIO, "/api/v1/models",
     {"models": [{"key": "m", "loaded_instances": [], "size_bytes": -1}]},
     "/api/v1/models: models[0].size_bytes is -1"),
    (ServerKind.LMSTUDIO, "/api/v1/models", {"models": [None]},
     "/api/v1/models: models[0] is null, not an object"),
    # vLLM /v1/models, /health
    (ServerKind.VLLM, "/v1/models", Raw('{"data":[{"id":"m","owned_by":"vllm","max_model_len":1e400}]}'),
     "/v1/models: data[0].max_model_len is inf"),
    (ServerKind.VLLM, "/v1/models", {"data": [{"id": "m", "owned_by": "vllm", "max_model_len": "4096"}]},
     "/v1/models: data[0].max_model_len is a string"),
    (ServerKind.VLLM, "/v1/models", {"data": [{"id": "m", "owned_by": "vllm", "max_model_len": -4096}]},
     "/v1/models: data[0].max_model_len is -4096"),
    (ServerKind.VLLM, "/v1/models", {"data": [{"id": "m", "owned_by": "vllm", "parent": 3}]},
     "/v1/models: data[0].parent is a number, not a string"),
    (ServerKind.VLLM, "/v1/models", HUGE_INT, "/v1/models: the reply is not valid JSON"),  # told by /version
    (ServerKind.VLLM, "/v1/models", DEEP, "/v1/models: the reply is nested too deeply"),
    # OpenAI-compatible /v1/models
    (ServerKind.OPENAI, "/v1/models", {"data": [1, 2]}, NOT_THIS),
    (ServerKind.OPENAI, "/v1/models", {"data": {"id": "m"}}, NOT_THIS),
    (ServerKind.OPENAI, "/v1/models", DEEP, NOT_THIS),
    (ServerKind.OPENAI, "/v1/models", {"data": [{"id": "m", "created": "x", "owned_by": 7}]}, ""),
]


def _case_id(case: tuple[ServerKind, str, Any, str]) -> str:
    kind, path, body, _ = case
    text = body if isinstance(body, str) else repr(body)
    return f"{kind.value}{path}:{text[:30]}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
async def test_wrong_shape_ends_in_a_typed_verdict(client: httpx.AsyncClient,
                                                   case: tuple[ServerKind, str, Any, str]) -> None:
    kind, path, body, expected = case
    base, options = BASES[kind]
    route = body if isinstance(body, tuple) else reply(body)
    with serving({**base, path: route}, **options) as server:
        status = await probe_endpoint(client, Endpoint(server.url, kind, "user"))
    if expected == NOT_THIS:
        assert status.kind is not kind and status.state is EndpointState.NOT_INFERENCE, status
    elif expected:
        assert status.kind is kind, status
        assert status.state is EndpointState.ERROR and status.reason == "invalid_response", status
        assert expected in status.diagnosis, status.diagnosis
    else:
        assert status.kind is kind and status.state is EndpointState.UP, status


@pytest.mark.parametrize("kind", list(BASES))
async def test_the_healthy_baselines_are_up(client: httpx.AsyncClient, kind: ServerKind) -> None:
    base, options = BASES[kind]
    with serving(base, **options) as server:
        status = await probe_endpoint(client, Endpoint(server.url, kind, "user"))
    assert (status.kind, status.state) == (kind, EndpointState.UP), status
    assert status.models, status
