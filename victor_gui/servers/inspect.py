"""Per-kind facts once the kind is known: loaded models with context length and memory, KV-cache
use, server health beyond "it answers" (servers.md §1.3/1.6, §2.3, §3.2/3.6/3.8, §4.2/4.3/4.6).

* Ollama: ``/api/ps`` (``size``, ``size_vram``, ``context_length``), ``/api/tags`` for the count.
* LM Studio: ``/api/v0/models`` (``state``, ``loaded_context_length``, ``max_context_length``),
  ``/api/v1/models`` (0.4+: ``loaded_instances[].config.context_length``, ``size_bytes``).
* llama.cpp: ``/props`` (per-slot ``n_ctx``, build, sleeping), ``/slots``, ``/v1/models``
  (``meta.size``; in router mode ``status`` objects per model).
* vLLM: ``/v1/models`` (``max_model_len``), ``/metrics`` (``vllm:kv_cache_usage_perc``, older
  ``vllm:gpu_cache_usage_perc``), ``/health`` (503 once the engine has died).
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from victor_gui.providers.json_guard import Shape
from victor_gui.servers.fingerprint import Fingerprint, Reply, fetch
from victor_gui.servers.status import DISPLAY_NAMES, EndpointState, LoadedModel, ServerKind


@dataclass
class Inspection:
    """What the kind-specific probes add; ``state``/``reason`` override the fingerprint's."""

    models: list[LoadedModel] = field(default_factory=list)
    kv_cache_usage: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    state: EndpointState | None = None
    reason: str | None = None
    http_status: int | None = None


async def inspect(client: httpx.AsyncClient, base_url: str, fp: Fingerprint, *,
                  headers: dict[str, str] | None = None) -> Inspection:
    """Collect the facts for ``fp.kind``. Transport failures never raise (a route that does not
    answer adds nothing); a 2xx reply of the wrong shape raises :class:`InvalidResponseError`
    naming the route and the field (``Ollama /api/ps: models[0] is a number, not an object``)."""
    if fp.state not in (EndpointState.UP, EndpointState.DEGRADED):
        return Inspection()
    inspector = _INSPECTORS.get(fp.kind)
    if inspector is None:
        return Inspection()
    return await inspector(client, base_url, fp, headers)


def _shape(kind: ServerKind, path: str) -> Shape:
    return Shape(f"{DISPLAY_NAMES[kind]} {path}", kind.value)


def _object(reply: Reply | None, shape: Shape) -> dict[str, Any] | None:
    """A 2xx reply's JSON object; None for a route that did not answer 2xx or answered an
    ``{"error": "..."}`` body (LM Studio's 200 for routes it lacks)."""
    if reply is None or not reply.ok:
        return None
    data = shape.obj(reply.json(shape.where))
    return None if isinstance(data.get("error"), str) else data


async def _ollama(client: httpx.AsyncClient, base_url: str, fp: Fingerprint,
                  headers: dict[str, str] | None) -> Inspection:
    version = _shape(ServerKind.OLLAMA, "/api/version")
    found = _object(fp.reply("/api/version"), version)
    if found is not None:
        version.req_str(found, "version")
    ps, tags = await asyncio.gather(fetch(client, base_url, "/api/ps", headers=headers),
                                    fetch(client, base_url, "/api/tags", headers=headers))
    out = Inspection()
    shape = _shape(ServerKind.OLLAMA, "/api/ps")
    for i, entry in enumerate(shape.objects(_object(ps, shape) or {}, "models")):
        at = f"models[{i}]"
        name = shape.opt_str(entry, "name", at) or shape.opt_str(entry, "model", at)
        if not name:
            raise shape.error(f"{at}.name", "is missing")
        out.models.append(LoadedModel(
            name=name,
            context_length=shape.opt_count(entry, "context_length", at),
            size_bytes=shape.opt_count(entry, "size", at),
            vram_bytes=shape.opt_count(entry, "size_vram", at),
            status="loaded",
        ))
    listing = _shape(ServerKind.OLLAMA, "/api/tags")
    tags_json = _object(tags, listing)
    if tags_json is not None:
        out.details["available_models"] = len(listing.objects(tags_json, "models"))
    _server_error(out, ps)
    return out


async def _lmstudio(client: httpx.AsyncClient, base_url: str, fp: Fingerprint,
                    headers: dict[str, str] | None) -> Inspection:
    out = Inspection()
    v1 = await fetch(client, base_url, "/api/v1/models", headers=headers)
    v1_shape = _shape(ServerKind.LMSTUDIO, "/api/v1/models")
    v1_json = _object(v1, v1_shape)
    v1_models: list[LoadedModel] = []
    for i, entry in enumerate(v1_shape.objects(v1_json or {}, "models")):
        at = f"models[{i}]"
        instances = v1_shape.objects(entry, "loaded_instances", at)
        first = instances[0] if instances else {}
        config = v1_shape.opt_obj(first, "config", f"{at}.loaded_instances[0]") or {}
        name = v1_shape.opt_str(entry, "key", at) or v1_shape.opt_str(entry, "display_name", at) or ""
        v1_models.append(LoadedModel(
            name=name, loaded=bool(instances),
            context_length=v1_shape.opt_count(config, "context_length", f"{at}.loaded_instances[0].config"),
            max_context_length=v1_shape.opt_count(entry, "max_context_length", at),
            size_bytes=v1_shape.opt_count(entry, "size_bytes", at),
            status="loaded" if instances else "not-loaded"))
    out.details["rest_api_v1"] = v1_json is not None and isinstance(v1_json.get("models"), list)
    v0_shape = _shape(ServerKind.LMSTUDIO, "/api/v0/models")
    entries = v0_shape.objects(_object(fp.reply("/api/v0/models"), v0_shape) or {}, "data")
    seen: dict[str, LoadedModel] = {}
    for i, entry in enumerate(entries):
        at = f"data[{i}]"
        name = v0_shape.req_str(entry, "id", at)
        state = v0_shape.opt_str(entry, "state", at)
        loaded = state == "loaded"
        model = LoadedModel(name=name, loaded=loaded,
                            context_length=v0_shape.opt_count(entry, "loaded_context_length", at),
                            max_context_length=v0_shape.opt_count(entry, "max_context_length", at),
                            status=state)
        # The same model can be listed twice, loaded and not: keep the loaded entry.
        if name not in seen or loaded:
            seen[name] = model
    if not entries:
        seen = {m.name: m for m in v1_models}
    out.details["available_models"] = len(seen)
    out.models = [m for m in seen.values() if m.loaded]
    return out


@dataclass(frozen=True)
class _Card:
    """One ``/v1/models`` entry, its fields checked."""

    id: str
    status: str | None = None  # llama.cpp router mode: status.value
    parent: str | None = None  # vLLM: the base model of a LoRA adapter
    max_model_len: int | None = None
    n_ctx_train: int | None = None
    size: int | None = None


def _cards(fp: Fingerprint, kind: ServerKind) -> list[_Card]:
    shape = _shape(kind, "/v1/models")
    out = []
    for i, card in enumerate(shape.objects(_object(fp.reply("/v1/models"), shape) or {}, "data")):
        at = f"data[{i}]"
        status = shape.opt_obj(card, "status", at)
        meta = shape.opt_obj(card, "meta", at) or {}
        out.append(_Card(shape.req_str(card, "id", at),
                         shape.opt_str(status, "value", f"{at}.status") if status is not None else None,
                         shape.opt_str(card, "parent", at), shape.opt_count(card, "max_model_len", at),
                         shape.opt_count(meta, "n_ctx_train", f"{at}.meta"),
                         shape.opt_count(meta, "size", f"{at}.meta")))
    return out


async def _llamacpp(client: httpx.AsyncClient, base_url: str, fp: Fingerprint,
                    headers: dict[str, str] | None) -> Inspection:
    out = Inspection()
    shape = _shape(ServerKind.LLAMACPP, "/props")
    props_json = _object(fp.reply("/props"), shape) or {}
    settings = shape.opt_obj(props_json, "default_generation_settings") or {}
    n_ctx = shape.opt_count(settings, "n_ctx", "default_generation_settings")
    checked: dict[str, Any] = {"total_slots": shape.opt_count(props_json, "total_slots"),
                               "model_path": shape.opt_str(props_json, "model_path"),
                               "is_sleeping": shape.opt_bool(props_json, "is_sleeping")}
    out.details.update({k: v for k, v in checked.items() if k in props_json})
    alias = shape.opt_str(props_json, "model_alias")
    cards = _cards(fp, ServerKind.LLAMACPP)
    router = any(c.status is not None for c in cards)
    out.details["router_mode"] = router
    if router:
        out.details["available_models"] = len(cards)
        # Every model the router offers (the chat picker lists them all: a request loads one);
        # ``loaded_models`` keeps to those in memory.
        out.models = [LoadedModel(name=c.id, loaded=c.status == "loaded", status=c.status) for c in cards]
        return out
    slots = await fetch(client, base_url, "/slots", headers=headers)
    if slots.ok:
        slot_shape = _shape(ServerKind.LLAMACPP, "/slots")
        slot_list = slot_shape.array(slots.json(slot_shape.where))
        entries = [slot_shape.obj(s, f"[{i}]") for i, s in enumerate(slot_list)]
        busy = [i for i, s in enumerate(entries) if slot_shape.opt_bool(s, "is_processing", f"[{i}]")]
        widths = [slot_shape.opt_count(s, "n_ctx", f"[{i}]") for i, s in enumerate(entries)]
        if entries:
            out.details["slots_busy"] = len(busy)
            n_ctx = n_ctx or widths[0]
    for card in cards[:1]:  # single-model mode lists exactly one
        out.models.append(LoadedModel(
            name=alias or card.id, context_length=n_ctx, max_context_length=card.n_ctx_train,
            size_bytes=card.size, status="sleeping" if checked["is_sleeping"] else "loaded"))
    return out


async def _vllm(client: httpx.AsyncClient, base_url: str, fp: Fingerprint,
                headers: dict[str, str] | None) -> Inspection:
    out = Inspection()
    health, metrics = await asyncio.gather(fetch(client, base_url, "/health", headers=headers),
                                           fetch(client, base_url, "/metrics", headers=headers))
    for card in _cards(fp, ServerKind.VLLM):
        if card.parent:  # a LoRA adapter riding on the base model
            out.details.setdefault("lora_adapters", []).append(card.id)
            continue
        out.models.append(LoadedModel(name=card.id, context_length=card.max_model_len, status="loaded"))
    if metrics.ok:
        samples = parse_prometheus(metrics.text)
        usage = _first(samples, "vllm:kv_cache_usage_perc") or _first(samples, "vllm:gpu_cache_usage_perc")
        out.kv_cache_usage = usage
        for name in ("vllm:num_requests_running", "vllm:num_requests_waiting"):
            value = _sum(samples, name)
            if value is not None:
                out.details[name.split(":", 1)[1]] = int(value)
    if health.status is not None and health.status >= 500:
        out.state, out.reason, out.http_status = EndpointState.DEGRADED, "engine_dead", health.status
    return out


async def _openai(client: httpx.AsyncClient, base_url: str, fp: Fingerprint,
                  headers: dict[str, str] | None) -> Inspection:
    out = Inspection()
    for card in _cards(fp, ServerKind.OPENAI):
        out.models.append(LoadedModel(name=card.id, status="listed"))
    return out


_INSPECTORS = {
    ServerKind.OLLAMA: _ollama,
    ServerKind.LMSTUDIO: _lmstudio,
    ServerKind.LLAMACPP: _llamacpp,
    ServerKind.VLLM: _vllm,
    ServerKind.OPENAI: _openai,
}


# ---------------------------------------------------------------------------------------------
# Prometheus text, minimally: `name{label="v",...} value [timestamp]`, comments skipped.
# ---------------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by metric name: ``{name: [(labels, value), ...]}``. Bad lines are skipped."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        try:
            value = float(match.group(4))
        except ValueError:
            continue
        if not math.isfinite(value):  # NaN/Inf samples carry no usable figure (and int() of one raises)
            continue
        labels = dict(_LABEL.findall(match.group(3) or ""))
        out.setdefault(match.group(1), []).append((labels, value))
    return out


def _first(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float | None:
    values = samples.get(name)
    return max(v for _, v in values) if values else None  # several engines: the fullest one


def _sum(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float | None:
    values = samples.get(name)
    return sum(v for _, v in values) if values else None


def _server_error(out: Inspection, reply: Reply) -> None:
    if reply.status is not None and reply.status >= 500:
        out.state, out.reason, out.http_status = EndpointState.DEGRADED, "server_error", reply.status
