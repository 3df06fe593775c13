"""The Ollama simulator's model store and Go-compatible JSON encoding.

Split from :mod:`tests.servers.ollama` so the request handling stays readable. Shapes follow
``shared/reference/servers.md`` §1.3 (``/api/tags``, ``/api/ps``, ``/api/show``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_CAPS = ("completion", "tools", "thinking", "vision")
DEFAULT_CONTEXT = 4096  # what the sim uses when a request gives no options.num_ctx


def go_json(value: Any) -> str:
    """JSON as Go's ``json.Marshal`` writes it: compact, raw UTF-8, HTML characters escaped.

    Ollama marshals every NDJSON line with ``json.Marshal``, so ``<think>`` goes over the wire as
    ``\\u003cthink\\u003e``; clients must decode JSON, never search the raw bytes.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                     ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return text


def go_time(when: datetime | None = None) -> str:
    """RFC 3339 with fractional seconds, as Go's ``time.Time`` marshals (``Z`` for UTC)."""
    when = when or datetime.now(UTC)
    frac = f"{when.microsecond:06d}".rstrip("0")
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def full_name(name: str) -> str:
    """Ollama's name normalisation as far as a client sees it: a missing tag means ``latest``."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


@dataclass
class SimModel:
    """One model on the simulated disk."""

    name: str
    capabilities: tuple[str, ...] = DEFAULT_CAPS
    family: str = "llama"
    parameter_size: str = "3.2B"
    quantization_level: str = "Q4_K_M"
    size: int = 2_019_393_189
    context_length: int = 131072  # the architecture's trained context (model_info)
    num_ctx: int | None = None  # a PARAMETER num_ctx line in the Modelfile, if any
    digest: str = field(default="")

    def __post_init__(self) -> None:
        self.name = full_name(self.name)
        if not self.digest:
            self.digest = hashlib.sha256(self.name.encode()).hexdigest()

    @classmethod
    def from_option(cls, value: str | dict[str, Any] | SimModel) -> SimModel:
        if isinstance(value, SimModel):
            return value
        if isinstance(value, str):
            return cls(value)
        return cls(**value)

    def details(self) -> dict[str, Any]:
        return {"parent_model": "", "format": "gguf", "family": self.family, "families": [self.family],
                "parameter_size": self.parameter_size, "quantization_level": self.quantization_level}

    def tags_entry(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.name,
                "modified_at": "2026-08-01T10:12:31.463914123+02:00", "size": self.size,
                "digest": self.digest, "details": self.details(), "capabilities": list(self.capabilities)}

    def show(self) -> dict[str, Any]:
        arch = self.family
        params = f"num_ctx                        {self.num_ctx}\n" if self.num_ctx else ""
        params += 'stop                           "<|eot_id|>"'
        info: dict[str, Any] = {
            "general.architecture": arch,
            "general.parameter_count": 3_212_749_888,
            "general.file_type": 15,
            "general.quantization_version": 2,
            f"{arch}.block_count": 28,
            f"{arch}.context_length": self.context_length,
            f"{arch}.embedding_length": 3072,
            f"{arch}.attention.head_count": 24,
            f"{arch}.attention.head_count_kv": 8,
            "tokenizer.ggml.tokens": [],
        }
        template = "{{ if .Tools }}tools{{ end }}" if "tools" in self.capabilities else "{{ .Prompt }}"
        return {"license": "", "modelfile": f"FROM {self.name}\n", "parameters": params,
                "template": template, "details": self.details(), "model_info": info,
                "capabilities": list(self.capabilities), "modified_at": "2026-08-01T10:12:31.463914123+02:00"}


@dataclass
class Loaded:
    """A runner in memory, as ``/api/ps`` lists it."""

    model: SimModel
    context_length: int
    expires: float  # time.time() when it unloads; inf for a negative keep-alive

    def ps_entry(self) -> dict[str, Any]:
        if self.expires == float("inf"):
            expires = "2318-01-01T00:00:00Z"  # what a negative keep-alive looks like: far future
        else:
            expires = go_time(datetime.now(UTC) + timedelta(seconds=self.expires - time.time()))
        size = self.model.size + self.context_length * 112 * 1024 // 1024
        return {"name": self.model.name, "model": self.model.name, "size": size,
                "digest": self.model.digest, "details": self.model.details(), "expires_at": expires,
                "size_vram": size, "context_length": self.context_length}


def keep_alive_seconds(value: Any, default: float = 300.0) -> float:
    """Seconds from a ``keep_alive`` value: a number of seconds or a duration like ``10m``."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return float("inf") if value < 0 else float(value)
    text = str(value).strip()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "h", "m", "s"):
        if text.endswith(unit):
            try:
                seconds = float(text[: -len(unit)]) * units[unit]
            except ValueError:
                return default
            return float("inf") if seconds < 0 else seconds
    try:
        seconds = float(text)
    except ValueError:
        return default
    return float("inf") if seconds < 0 else seconds
