"""What the model manager knows about one local server endpoint, as immutable snapshots.

The health monitor hands these to the UI (and the ``doctor`` command prints them); nothing in
here does I/O. ``EndpointStatus.change_key()`` names the fields whose change is worth an event,
so a latency wobble does not repaint the UI every few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from victor_gui.providers.endpoint_access import EndpointAccess


class ServerKind(StrEnum):
    """Which server program answers on an endpoint."""

    OLLAMA = "ollama"
    LMSTUDIO = "lmstudio"
    VLLM = "vllm"
    LLAMACPP = "llamacpp"
    OPENAI = "openai-compatible"  # answers /v1/models like an OpenAI server, but none of the four
    OTHER = "other"  # something answers HTTP, but it is not an inference server
    UNKNOWN = "unknown"  # nothing answered (yet), so nothing can be said


class EndpointState(StrEnum):
    """The health of an endpoint, from the person's point of view."""

    UP = "up"
    LOADING = "loading"  # the server answers but its model is not ready yet
    DEGRADED = "degraded"  # answers slowly, or with 5xx errors
    DOWN = "down"  # nothing answers (connection refused / unreachable)
    UNAUTHORIZED = "unauthorized"  # HTTP 401/403: a key is missing or wrong
    NOT_INFERENCE = "not-inference"  # another program holds the port
    ERROR = "error"  # it answers, but not what its API promises (or the probe itself failed)
    UNKNOWN = "unknown"  # not probed yet


DISPLAY_NAMES: dict[ServerKind, str] = {
    ServerKind.OLLAMA: "Ollama",
    ServerKind.LMSTUDIO: "LM Studio",
    ServerKind.VLLM: "vLLM",
    ServerKind.LLAMACPP: "llama.cpp",
    ServerKind.OPENAI: "OpenAI-compatible server",
    ServerKind.OTHER: "another program",
    ServerKind.UNKNOWN: "unknown",
}

# How to start each server, for "nothing listens" diagnoses.
START_HINTS: dict[ServerKind, str] = {
    ServerKind.OLLAMA: "start Ollama with `ollama serve`",
    ServerKind.LMSTUDIO: "start LM Studio's server with `lms server start` (or Developer → Start Server)",
    ServerKind.VLLM: "start vLLM with `vllm serve MODEL`",
    ServerKind.LLAMACPP: "start llama.cpp with `llama-server -m MODEL.gguf`",
}


@dataclass(frozen=True)
class LoadedModel:
    """A model a server holds (or lists), with whatever size facts that server reports."""

    name: str
    loaded: bool = True
    context_length: int | None = None  # the loaded context (tokens), when reported
    max_context_length: int | None = None  # what the model could take, when reported
    size_bytes: int | None = None  # memory (Ollama /api/ps) or file size (llama.cpp meta.size)
    vram_bytes: int | None = None  # bytes resident on the GPU (Ollama size_vram)
    status: str | None = None  # server's own word: "loaded", "loading", "not-loaded", ...

    @property
    def gpu_fraction(self) -> float | None:
        """Share of the model on the GPU (Ollama's ``100% GPU`` column), when known."""
        if self.size_bytes and self.vram_bytes is not None:
            return min(1.0, self.vram_bytes / self.size_bytes)
        return None


@dataclass(frozen=True)
class EndpointStatus:
    """One endpoint's state at one moment. Immutable: subscribers may keep it."""

    base_url: str
    kind: ServerKind = ServerKind.UNKNOWN
    state: EndpointState = EndpointState.UNKNOWN
    diagnosis: str = ""
    reason: str = ""  # stable code behind the diagnosis ("refused", "slow", "http_401", ...)
    source: str = "default"  # where the endpoint came from: default, env:VAR, user, process:NAME
    expected: ServerKind | None = None  # the kind expected there (default port, env variable)
    version: str | None = None
    http_status: int | None = None
    latency_s: float | None = None
    latency_history: tuple[float, ...] = ()
    models: tuple[LoadedModel, ...] = ()
    kv_cache_usage: float | None = None  # vLLM: share of the KV cache in use (0–1)
    details: tuple[tuple[str, Any], ...] = ()  # extra facts (build, slots, router mode ...)
    checked_at: float | None = None  # time.time() of the probe
    consecutive_failures: int = 0
    next_probe_in: float | None = None

    @property
    def display_kind(self) -> str:
        """The kind's name; for a silent endpoint, the kind expected there with a "?"."""
        if self.kind is ServerKind.UNKNOWN and self.expected is not None:
            return DISPLAY_NAMES[self.expected] + "?"
        return DISPLAY_NAMES[self.kind]

    @property
    def is_inference_server(self) -> bool:
        return self.kind not in (ServerKind.OTHER, ServerKind.UNKNOWN)

    @property
    def loaded_models(self) -> tuple[LoadedModel, ...]:
        return tuple(m for m in self.models if m.loaded)

    def detail(self, key: str, default: Any = None) -> Any:
        return dict(self.details).get(key, default)

    def change_key(self) -> tuple[Any, ...]:
        """The fields whose change is an event (not latency, timestamps or the backoff)."""
        return (self.base_url, self.kind, self.state, self.reason, self.version, self.http_status,
                self.models, None if self.kv_cache_usage is None else round(self.kv_cache_usage, 2))

    def with_updates(self, **changes: Any) -> EndpointStatus:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (for ``victor-gui doctor --json``)."""
        return {
            "base_url": self.base_url,
            "kind": self.kind.value,
            "state": self.state.value,
            "diagnosis": self.diagnosis,
            "reason": self.reason,
            "source": self.source,
            "expected": self.expected.value if self.expected else None,
            "version": self.version,
            "http_status": self.http_status,
            "latency_ms": None if self.latency_s is None else round(self.latency_s * 1000, 1),
            "kv_cache_usage": self.kv_cache_usage,
            "models": [
                {k: v for k, v in vars(m).items() if v is not None} for m in self.models
            ],
            "details": dict(self.details),
        }


@dataclass
class Endpoint:
    """An endpoint to probe: a server root URL (no ``/v1``), an optional expected kind, an
    optional API key (sent as ``Authorization: Bearer``; never logged), and for a configured
    endpoint its ``access`` (key, headers, TLS trust, timeouts): the health monitor then probes
    it through a client built for it, as the chat reaches it."""

    base_url: str
    kind_hint: ServerKind | None = None
    source: str = "default"
    api_key: str | None = field(default=None, repr=False)
    access: EndpointAccess | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str | None:
        """The key to send: the endpoint's own, else its access's."""
        return self.api_key or (self.access.api_key if self.access is not None else None)
