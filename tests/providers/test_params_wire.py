"""Each chat parameter reaches each protocol that accepts it, under its wire name, and no other.

For every dialect of :data:`victor_gui.providers.params.WIRES` a real provider streams to its
simulator on 127.0.0.1: once with no parameters (the baseline body), then once per parameter.
The body the simulator received must differ from the baseline by exactly the parameter's wire
path (with the value set) when the dialect accepts it, and not at all when it does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from tests.providers.cloud_sims import BEDROCK_CREDS, BEDROCK_MODEL, collect, posts
from tests.servers import anthropic as anthropic_sim
from tests.servers import azure as azure_sim
from tests.servers import bedrock as bedrock_sim
from tests.servers import gemini as gemini_sim
from tests.servers import llamacpp as llamacpp_sim
from tests.servers import lmstudio as lmstudio_sim
from tests.servers import ollama as ollama_sim
from tests.servers import vllm as vllm_sim
from tests.servers.base import SimServer
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.params import (
    DIRECT,
    PARAM_KEYS,
    WIRES,
    accepts,
    dialect_of,
    request_kwargs,
    wire_path,
)
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message

KEY = "sk-params-wire-test-000000001"
GEM_KEY = "AIzaSyD-params-wire-00000001"

# A value for each parameter, distinct from every adapter default so a change is visible.
VALUES: dict[str, Any] = {
    "temperature": 0.35,
    "top_p": 0.85,
    "top_k": 33,
    "min_p": 0.07,
    "repeat_penalty": 1.15,
    "presence_penalty": 0.4,
    "frequency_penalty": 0.6,
    "seed": 4242,
    "stop": ["<END>", "###"],
    "max_tokens": 321,
    "context_length": 16384,
    "reasoning_effort": "high",
    "thinking_budget": 2048,
}
# What the value looks like on the wire where it is not the value itself.
WIRE_VALUE: dict[tuple[str, str], Any] = {}

Maker = Callable[[], AbstractContextManager[SimServer]]
Builder = Callable[[SimServer], BaseProvider]


def _openai_like(name: str) -> Builder:
    return lambda s: ProviderRegistry.create(name, base_url=s.url + "/v1", api_key=KEY)


CASES: dict[str, tuple[Maker, Builder, str | None]] = {
    "openai": (lambda: vllm_sim.make_server(model="sim-model"), _openai_like("openai"), None),
    "llamacpp": (lambda: llamacpp_sim.make_server(model="sim-model"), _openai_like("llamacpp"), None),
    "lmstudio": (lambda: lmstudio_sim.make_server(model="sim-model"), _openai_like("lmstudio"), None),
    "vllm": (lambda: vllm_sim.make_server(model="sim-model"), _openai_like("vllm"), None),
    "azure": (lambda: azure_sim.make_server(api_key=KEY),
              lambda s: ProviderRegistry.create("azure", api_key=KEY, base_url=s.url), None),
    "ollama": (lambda: ollama_sim.make_server(model="sim-model"),
               lambda s: ProviderRegistry.create("ollama", base_url=s.url), None),
    "anthropic": (lambda: anthropic_sim.make_server(api_key=KEY),
                  lambda s: ProviderRegistry.create("anthropic", api_key=KEY, base_url=s.url), None),
    "gemini": (lambda: gemini_sim.make_server(api_key=GEM_KEY),
               lambda s: ProviderRegistry.create("google", api_key=GEM_KEY, base_url=s.url), None),
    "bedrock": (lambda: bedrock_sim.make_server(credentials=BEDROCK_CREDS),
                lambda s: ProviderRegistry.create(
                    "bedrock", base_url=s.url, aws_access_key_id=BEDROCK_CREDS.access_key,
                    aws_secret_access_key=BEDROCK_CREDS.secret_key), BEDROCK_MODEL),
}


def flatten(body: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to the leaves of a body's settings (the conversation itself left out)."""
    out: dict[str, Any] = {}
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("messages", "contents", "system", "systemInstruction", "safetySettings"):
                continue
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                out.update(flatten(value, path))
            else:
                out[path] = value
    return out


@pytest.fixture(params=sorted(CASES))
def dialect_case(request: pytest.FixtureRequest) -> Iterator[tuple[str, BaseProvider, SimServer, str]]:
    dialect = request.param
    maker, build, model = CASES[dialect]
    with maker() as server:
        provider = build(server)
        yield dialect, provider, server, model or server.model


async def _send(provider: BaseProvider, server: SimServer, model: str,
                params: dict[str, Any]) -> dict[str, Any]:
    """Stream one reply with ``params`` as a chat session sends them; the body received."""
    direct = {k: params[k] for k in DIRECT if k in params}
    kwargs = request_kwargs(dialect_of(provider), params)
    before = len(posts(server))
    _chunks, error = await collect(provider.stream([Message(role="user", content="Hi")], model=model,
                                                   temperature=direct.get("temperature", 0.7),
                                                   max_tokens=direct.get("max_tokens", 4096), **kwargs))
    assert error is None, error
    sent = posts(server)[before:]
    assert len(sent) == 1
    body = sent[0].body
    assert isinstance(body, dict)
    return body


async def test_each_parameter_reaches_only_the_protocols_that_accept_it(
    dialect_case: tuple[str, BaseProvider, SimServer, str],
) -> None:
    dialect, provider, server, model = dialect_case
    assert dialect_of(provider) == dialect
    try:
        baseline = flatten(await _send(provider, server, model, {}))
        for key in PARAM_KEYS:
            body = flatten(await _send(provider, server, model, {key: VALUES[key]}))
            added = {p: v for p, v in body.items() if baseline.get(p, object()) != v}
            if not accepts(dialect, key):
                assert added == {}, f"{dialect} got {key} although it does not accept it: {added}"
                continue
            path = wire_path(dialect, key)
            assert path is not None
            # A thinking switch is an object whose budget is the value (plus its type, includeThoughts).
            owner = path.rsplit(".", 1)[0] if key == "thinking_budget" else path
            assert path in added, f"{dialect}: {key} not at {path} (changed: {sorted(added)})"
            assert added[path] == WIRE_VALUE.get((dialect, key), VALUES[key])
            stray = [p for p in added if p != path and not p.startswith(owner + ".")]
            assert stray == [], f"{dialect}: {key} also changed {stray}"
    finally:
        await provider.close()


async def test_all_parameters_at_once_land_each_under_its_wire_name(
    dialect_case: tuple[str, BaseProvider, SimServer, str],
) -> None:
    dialect, provider, server, model = dialect_case
    try:
        values = dict(VALUES)
        if dialect in ("anthropic", "bedrock"):
            # Extended thinking refuses top_k (and a temperature): those dialects are checked
            # without the budget here; the budget alone is checked above.
            values.pop("thinking_budget")
        body = flatten(await _send(provider, server, model, values))
        for key, wire in WIRES[dialect].items():
            if key not in values:
                continue
            assert body.get(wire.path) == values[key], f"{dialect}: {key} at {wire.path}"
        names = {w.path.rsplit(".", 1)[-1] for table in WIRES.values() for w in table.values()}
        own = {w.path.rsplit(".", 1)[-1] for w in WIRES[dialect].values()}
        foreign = sorted(p for p in body if p.rsplit(".", 1)[-1] in names - own)
        assert foreign == [], f"{dialect} received parameters it does not take: {foreign}"
    finally:
        await provider.close()


def test_thinking_turns_top_k_off_where_the_api_refuses_both() -> None:
    both = {"top_k": 40, "thinking_budget": 4096}
    assert request_kwargs("anthropic", both) == {"thinking": 4096}
    assert request_kwargs("bedrock", both) == {"thinking": 4096}
    assert request_kwargs("gemini", both) == {"top_k": 40, "thinking": 4096}


def test_unknown_dialect_and_bad_values_send_nothing_extra() -> None:
    assert request_kwargs(None, VALUES) == {}
    assert request_kwargs("llamacpp", {"top_k": "many", "seed": True, "stop": "", "nope": 1}) == {}
    assert request_kwargs("ollama", {"stop": "END", "context_length": 8192}) == {"stop": ["END"],
                                                                                 "num_ctx": 8192}
