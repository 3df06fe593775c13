"""Which protocol accepts which sampling parameter, and under which wire name: one table.

A chat's parameters are stored under neutral names (:data:`PARAMS`: ``top_p``, ``min_p``,
``stop``, ``thinking_budget``, ...). Before a request, :func:`request_kwargs` turns them into the
keyword arguments the provider's adapter reads, keeping ONLY the ones its dialect accepts: a
server that does not know ``min_p`` never sees it (OpenAI's cloud API rejects unknown fields
with a 400; Anthropic rejects ``top_k`` with thinking on). :data:`WIRES` holds, per dialect, the
adapter keyword and the place in the request body where the value lands (a dotted path), so a
test can check each body against the table rather than against a second copy of it.

``temperature`` and ``max_tokens`` travel as the adapters' own arguments (every protocol takes
them); they are in the table for the wire names and the panel, and :func:`request_kwargs` leaves
them out. ``context_length`` reaches the wire only on Ollama (``options.num_ctx``); elsewhere the
server's window is fixed when it starts, and the value only sizes the history (trimming, meter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from victor_gui.providers.catalog import find_spec

Kind = Literal["float", "int", "choice", "list"]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter as the panel shows it: label, kind and bounds, and a short hint."""

    key: str
    label: str
    kind: Kind
    minimum: float = 0.0
    maximum: float = 0.0
    step: float = 0.0
    choices: tuple[str, ...] = ()
    hint: str = ""


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("temperature", "Temperature", "float", 0.0, 2.0, 0.05, hint="randomness; 0 is greedy"),
    ParamSpec("top_p", "Top-p", "float", 0.0, 1.0, 0.05, hint="nucleus sampling"),
    ParamSpec("top_k", "Top-k", "int", 0, 1000, 1, hint="sample among the k likeliest tokens"),
    ParamSpec("min_p", "Min-p", "float", 0.0, 1.0, 0.01, hint="drop tokens below p × the best one"),
    ParamSpec("repeat_penalty", "Repeat penalty", "float", 0.0, 2.0, 0.05, hint="1 is off"),
    ParamSpec("presence_penalty", "Presence penalty", "float", -2.0, 2.0, 0.1),
    ParamSpec("frequency_penalty", "Frequency penalty", "float", -2.0, 2.0, 0.1),
    ParamSpec("seed", "Seed", "int", 0, 2**31 - 1, 1, hint="same seed, same reply (where supported)"),
    ParamSpec("stop", "Stop sequences", "list", hint="one per line"),
    ParamSpec("max_tokens", "Max tokens", "int", 0, 1_000_000, 256, hint="longest reply"),
    ParamSpec("context_length", "Context length", "int", 0, 10_000_000, 1024,
              hint="the window; sent to Ollama, elsewhere only sizes the history"),
    ParamSpec("reasoning_effort", "Reasoning effort", "choice", choices=("low", "medium", "high")),
    ParamSpec("thinking_budget", "Thinking budget", "int", 0, 128_000, 1024, hint="tokens of reasoning"),
)
PARAM_KEYS: tuple[str, ...] = tuple(p.key for p in PARAMS)
SPECS_BY_KEY: dict[str, ParamSpec] = {p.key: p for p in PARAMS}
# Passed as the adapters' own arguments, never through request_kwargs.
DIRECT = ("temperature", "max_tokens")


@dataclass(frozen=True)
class Wire:
    """Where a parameter goes for one dialect: the adapter's keyword and the body path."""

    kwarg: str
    path: str


def _same(*keys: str) -> dict[str, Wire]:
    return {key: Wire(key, key) for key in keys}


_OPENAI_CLOUD: dict[str, Wire] = {
    **_same("temperature", "top_p", "presence_penalty", "frequency_penalty", "seed", "stop",
            "max_tokens", "reasoning_effort"),
}
# llama.cpp's server and LM Studio take the llama.cpp sampler names on /v1/chat/completions.
_LLAMA_EXTRAS = _same("top_k", "min_p", "repeat_penalty")

WIRES: dict[str, dict[str, Wire]] = {
    "openai": _OPENAI_CLOUD,
    "azure": _OPENAI_CLOUD,
    "llamacpp": {**_OPENAI_CLOUD, **_LLAMA_EXTRAS},
    "lmstudio": {**_OPENAI_CLOUD, **_LLAMA_EXTRAS},
    # vLLM's extra sampling fields; its penalty is called repetition_penalty.
    "vllm": {**_OPENAI_CLOUD, **_same("top_k", "min_p"),
             "repeat_penalty": Wire("repetition_penalty", "repetition_penalty")},
    "ollama": {
        "temperature": Wire("temperature", "options.temperature"),
        "top_p": Wire("top_p", "options.top_p"),
        "top_k": Wire("top_k", "options.top_k"),
        "min_p": Wire("min_p", "options.min_p"),
        "repeat_penalty": Wire("repeat_penalty", "options.repeat_penalty"),
        "presence_penalty": Wire("presence_penalty", "options.presence_penalty"),
        "frequency_penalty": Wire("frequency_penalty", "options.frequency_penalty"),
        "seed": Wire("seed", "options.seed"),
        "stop": Wire("stop", "options.stop"),
        "max_tokens": Wire("max_tokens", "options.num_predict"),
        "context_length": Wire("num_ctx", "options.num_ctx"),
        "reasoning_effort": Wire("think", "think"),
    },
    "anthropic": {
        "temperature": Wire("temperature", "temperature"),
        "top_p": Wire("top_p", "top_p"),
        "top_k": Wire("top_k", "top_k"),
        "stop": Wire("stop_sequences", "stop_sequences"),
        "max_tokens": Wire("max_tokens", "max_tokens"),
        "thinking_budget": Wire("thinking", "thinking.budget_tokens"),
    },
    "gemini": {
        "temperature": Wire("temperature", "generationConfig.temperature"),
        "top_p": Wire("top_p", "generationConfig.topP"),
        "top_k": Wire("top_k", "generationConfig.topK"),
        "presence_penalty": Wire("presence_penalty", "generationConfig.presencePenalty"),
        "frequency_penalty": Wire("frequency_penalty", "generationConfig.frequencyPenalty"),
        "seed": Wire("seed", "generationConfig.seed"),
        "stop": Wire("stop_sequences", "generationConfig.stopSequences"),
        "max_tokens": Wire("max_tokens", "generationConfig.maxOutputTokens"),
        "thinking_budget": Wire("thinking", "generationConfig.thinkingConfig.thinkingBudget"),
    },
    "bedrock": {
        "temperature": Wire("temperature", "inferenceConfig.temperature"),
        "top_p": Wire("top_p", "inferenceConfig.topP"),
        # Converse has no top_k; Claude on Bedrock takes it as a model-specific field.
        "top_k": Wire("top_k", "additionalModelRequestFields.top_k"),
        "stop": Wire("stop_sequences", "inferenceConfig.stopSequences"),
        "max_tokens": Wire("max_tokens", "inferenceConfig.maxTokens"),
        "thinking_budget": Wire("thinking", "additionalModelRequestFields.thinking.budget_tokens"),
    },
}
WIRES["vertex"] = WIRES["gemini"]

# A provider's catalog name → its dialect, where it differs from the catalog's protocol.
_DIALECT_BY_NAME = {"llamacpp": "llamacpp", "lmstudio": "lmstudio", "vllm": "vllm", "vertex": "gemini"}
# A provider class's module → its dialect (providers registered at run time, hand-added endpoints).
_DIALECT_BY_MODULE = {
    "victor_gui.providers.protocols.azure": "azure",
    "victor_gui.providers.protocols.openai_compat": "openai",
    "victor_gui.providers.protocols.ollama": "ollama",
    "victor_gui.providers.protocols.anthropic": "anthropic",
    "victor_gui.providers.protocols.gemini": "gemini",
    "victor_gui.providers.protocols.vertex": "gemini",
    "victor_gui.providers.protocols.bedrock": "bedrock",
}


# Parameters a dialect refuses while another is set: Anthropic's API (and Claude on Bedrock)
# rejects top_k with extended thinking on; the adapters already drop temperature then.
EXCLUSIVE: dict[str, dict[str, tuple[str, ...]]] = {
    "anthropic": {"thinking_budget": ("top_k",)},
    "bedrock": {"thinking_budget": ("top_k",)},
}


def dialect_of(provider: Any) -> str | None:
    """The parameter dialect of a provider instance: its catalog row first (llama.cpp, vLLM and
    LM Studio speak OpenAI with extras), else the protocol module of its class; None for a
    protocol not in :data:`WIRES` (only temperature and max tokens are sent there)."""
    name = str(getattr(provider, "name", "") or "")
    spec = find_spec(name) if name else None
    if spec is not None:
        dialect = _DIALECT_BY_NAME.get(spec.name, spec.protocol)
        return dialect if dialect in WIRES else None
    for cls in type(provider).__mro__:
        found = _DIALECT_BY_MODULE.get(cls.__module__)
        if found is not None:
            return found
    return None


def accepts(dialect: str | None, key: str) -> bool:
    """Whether ``dialect`` takes the parameter ``key``."""
    return dialect is not None and key in WIRES.get(dialect, {})


def wire_path(dialect: str, key: str) -> str | None:
    """The dotted body path of ``key`` for ``dialect`` (None: not accepted)."""
    wire = WIRES.get(dialect, {}).get(key)
    return wire.path if wire is not None else None


def clean_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """The neutral parameters of ``values`` that are set, each coerced to its kind; unknown keys,
    empty values and values of the wrong kind are left out (a hand-edited assistant file or an
    old row must not break a request)."""
    out: dict[str, Any] = {}
    for spec in PARAMS:
        value = values.get(spec.key)
        if value is None or value == "" or value == []:
            continue
        try:
            if spec.kind == "float":
                out[spec.key] = float(value)
            elif spec.kind == "int":
                if isinstance(value, bool):
                    continue
                number = int(value)
                if number > 0 or spec.key == "seed":
                    out[spec.key] = number
            elif spec.kind == "choice":
                if str(value) in spec.choices:
                    out[spec.key] = str(value)
            else:
                stops = [value] if isinstance(value, str) else list(value)
                kept = [str(s) for s in stops if str(s)]
                if kept:
                    out[spec.key] = kept
        except (TypeError, ValueError):
            continue
    return out


def request_kwargs(dialect: str | None, values: Mapping[str, Any]) -> dict[str, Any]:
    """The adapter keywords for the set parameters ``dialect`` accepts (see the module doc).
    ``temperature`` and ``max_tokens`` are left out: they are the adapters' own arguments."""
    if dialect is None:
        return {}
    table = WIRES.get(dialect, {})
    cleaned = clean_params(values)
    dropped = {other for key, others in EXCLUSIVE.get(dialect, {}).items() if key in cleaned
               for other in others}
    out: dict[str, Any] = {}
    for key, value in cleaned.items():
        wire = table.get(key)
        if wire is None or key in DIRECT or key in dropped:
            continue
        out[wire.kwarg] = value
    return out


def accepted_keys(dialect: str | None) -> tuple[str, ...]:
    """The parameters ``dialect`` takes, in panel order (all of them when unknown: the panel
    then greys out nothing rather than guess)."""
    if dialect is None:
        return PARAM_KEYS
    table = WIRES.get(dialect, {})
    return tuple(key for key in PARAM_KEYS if key in table)


__all__ = ["DIRECT", "EXCLUSIVE", "PARAMS", "PARAM_KEYS", "SPECS_BY_KEY", "WIRES", "ParamSpec", "Wire",
           "accepted_keys", "accepts", "clean_params", "dialect_of", "request_kwargs", "wire_path"]
