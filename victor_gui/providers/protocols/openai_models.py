"""Model listings of OpenAI-compatible servers as :class:`ModelInfo`.

Each server tells different things: vLLM ``max_model_len``; llama.cpp ``meta.n_ctx_train`` and
``meta.size`` (router mode: ``status.value``); LM Studio REST v0 ``state``,
``max_context_length``/``loaded_context_length``, ``quantization`` and ``type: vlm``.
"""

from __future__ import annotations

from typing import Any

from victor_gui.providers.json_guard import Shape
from victor_gui.providers.protocols.reply_shapes import check_model_listing
from victor_gui.providers.types import ModelInfo


def _int(value: Any) -> int | None:
    return (
        int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None
    )


def model_info(entry: dict[str, Any], provider: str) -> ModelInfo:
    """One listing entry as a :class:`ModelInfo`."""
    raw_meta = entry.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    context = (
        _int(entry.get("max_model_len"))
        or _int(entry.get("loaded_context_length"))
        or _int(entry.get("context_length"))
        or _int(entry.get("max_context_length"))
        or _int(meta.get("n_ctx_train"))
    )
    loaded: bool | None = None
    state = entry.get("state")
    status = entry.get("status")
    if isinstance(state, str):
        loaded = state == "loaded"
    elif isinstance(status, dict) and isinstance(status.get("value"), str):
        loaded = status["value"] == "loaded"
    caps = [str(c) for c in entry.get("capabilities") or [] if isinstance(c, str)]
    if entry.get("type") == "vlm" and "vision" not in caps:
        caps.append("vision")
    quant = entry.get("quantization")
    return ModelInfo(
        id=str(entry.get("id") or entry.get("key") or ""),
        provider=provider,
        context_length=context,
        loaded=loaded,
        size_bytes=_int(meta.get("size")) or _int(entry.get("size_bytes")),
        quantization=quant if isinstance(quant, str) else None,
        family=entry.get("arch") if isinstance(entry.get("arch"), str) else None,
        capabilities=caps,
        raw=entry,
    )


def models_from_payload(payload: Any, provider: str) -> list[ModelInfo]:
    """All entries of a ``{"data": [...]}`` listing (or a bare list); duplicates keep their loaded
    entry. A field of the wrong type raises :class:`InvalidResponseError` naming it."""
    shape = Shape(f"{provider} /v1/models", provider)
    check_model_listing({"data": payload} if isinstance(payload, list) else payload, shape)
    entries = payload.get("data") if isinstance(payload, dict) else payload
    found: dict[str, ModelInfo] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not (entry.get("id") or entry.get("key")):
            continue
        info = model_info(entry, provider)
        # LM Studio can list one model twice, loaded and not; prefer the loaded entry.
        if info.id not in found or info.loaded:
            found[info.id] = info
    return list(found.values())
