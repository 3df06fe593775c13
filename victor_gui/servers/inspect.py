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
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from victor_gui.servers.fingerprint import Fingerprint, Reply, fetch, model_cards
from victor_gui.servers.status import EndpointState, LoadedModel, ServerKind


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
    """Collect the facts for ``fp.kind``; never raises for a misbehaving server."""
    if fp.state not in (EndpointState.UP, EndpointState.DEGRADED):
        return Inspection()
    inspector = _INSPECTORS.get(fp.kind)
    if inspector is None:
        return Inspection()
    return await inspector(client, base_url, fp, headers)


async def _ollama(client: httpx.AsyncClient, base_url: str, fp: Fingerprint,
                  headers: dict[str, str] | None) -> Inspection:
    ps, tags = await asyncio.gather(fetch(client, base_url, "/api/ps", headers=headers),
                                    fetch(client, base_url, "/api/tags", headers=headers))
    out = Inspection()
    for entry in _list(ps.clean_json(), "models"):
        out.models.append(LoadedModel(
            name=str(entry.get("name") or entry.get("model")),
            context_length=_int(entry.get("context_length")),
            size_bytes=_int(entry.get("size")),
            vram_bytes=_int(entry.get("size_vram")),
            status="loaded",
        ))
    if tags.clean_json() is not None:
        out.details["available_models"] = len(_list(tags.clean_json(), "models"))
    _server_error(out, ps)
    return out


async def _lmstudio(client: httpx.AsyncClient, base_url: str, fp: Fingerprint,
                    headers: dict[str, str] | None) -> Inspection:
    out = Inspection()
    v1 = await fetch(client, base_url, "/api/v1/models", headers=headers)
    v1_models = _list(v1.clean_json(), "models")
    out.details["rest_api_v1"] = bool(v1.clean_json() is not None and isinstance(
        (v1.clean_json() or {}).get("models"), list))
    v0 = fp.reply("/api/v0/models")
    entries = _list(v0.clean_json() if v0 is not None else None, "data")
    seen: dict[str, LoadedModel] = {}
    for entry in entries:
        name = str(entry.get("id"))
        loaded = entry.get("state") == "loaded"
        model = LoadedModel(name=name, loaded=loaded, context_length=_int(entry.get("loaded_context_length")),
                            max_context_length=_int(entry.get("max_context_length")),
                            status=str(entry.get("state")))
        # The same model can be listed twice, loaded and not: keep the loaded entry.
        if name not in seen or loaded:
            seen[name] = model
    if not entries:
        for entry in v1_models:
            instances = entry.get("loaded_instances") or []
            config = instances[0].get("config", {}) if instances and isinstance(instances[0], dict) else {}
            name = str(entry.get("key") or entry.get("display_name"))
            seen[name] = LoadedModel(name=name, loaded=bool(instances),
                                     context_length=_int(config.get("context_length")),
                                     max_context_length=_int(entry.get("max_context_length")),
                                     size_bytes=_int(entry.get("size_bytes")),
                                     status="loaded" if instances else "not-loaded")
    out.details["available_models"] = len(seen)
    out.models = [m for m in seen.values() if m.loaded]
    return out


async def _llamacpp(client: httpx.AsyncClient, base_url: str, fp: Fingerprint,
                    headers: dict[str, str] | None) -> Inspection:
    out = Inspection()
    props = fp.reply("/props")
    props_json = (props.clean_json() if props else None) or {}
    settings = props_json.get("default_generation_settings") or {}
    n_ctx = _int(settings.get("n_ctx")) if isinstance(settings, dict) else None
    for key in ("total_slots", "model_path", "is_sleeping"):
        if key in props_json:
            out.details[key] = props_json[key]
    cards = model_cards(fp.reply("/v1/models"))
    router = any(isinstance(c.get("status"), dict) for c in cards)
    out.details["router_mode"] = router
    if router:
        for card in cards:
            status = card.get("status") or {}
            value = str(status.get("value")) if isinstance(status, dict) else None
            out.models.append(LoadedModel(name=str(card["id"]), loaded=value == "loaded", status=value))
        out.details["available_models"] = len(cards)
        out.models = [m for m in out.models if m.status in ("loaded", "loading", "sleeping")]
        return out
    slots = await fetch(client, base_url, "/slots", headers=headers)
    slot_list = slots.data if slots.ok and isinstance(slots.data, list) else []
    if slot_list:
        busy = [s for s in slot_list if isinstance(s, dict) and s.get("is_processing")]
        out.details["slots_busy"] = len(busy)
        n_ctx = n_ctx or _int(slot_list[0].get("n_ctx") if isinstance(slot_list[0], dict) else None)
    for card in cards:
        meta: dict[str, Any] = card["meta"] if isinstance(card.get("meta"), dict) else {}
        out.models.append(LoadedModel(
            name=str(props_json.get("model_alias") or card["id"]), context_length=n_ctx,
            max_context_length=_int(meta.get("n_ctx_train")), size_bytes=_int(meta.get("size")),
            status="sleeping" if props_json.get("is_sleeping") else "loaded"))
        break  # single-model mode lists exactly one
    return out


async def _vllm(client: httpx.AsyncClient, base_url: str, fp: Fingerprint,
                headers: dict[str, str] | None) -> Inspection:
    out = Inspection()
    health, metrics = await asyncio.gather(fetch(client, base_url, "/health", headers=headers),
                                           fetch(client, base_url, "/metrics", headers=headers))
    for card in model_cards(fp.reply("/v1/models")):
        if card.get("parent"):  # a LoRA adapter riding on the base model
            out.details.setdefault("lora_adapters", []).append(card["id"])
            continue
        out.models.append(LoadedModel(name=str(card["id"]), context_length=_int(card.get("max_model_len")),
                                      status="loaded"))
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
    for card in model_cards(fp.reply("/v1/models")):
        out.models.append(LoadedModel(name=str(card["id"]), status="listed"))
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


def _list(data: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    items = data.get(key) if data else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
