"""How many tokens a model on a provider can take: asked of the server, else the table.

Order, first known wins:

1. **The server** (local servers know what they actually run):
   * Ollama: the context the loaded runner has (``/api/ps``), else a ``num_ctx`` in the
     Modelfile (``/api/show``), else Ollama's default context (:data:`OLLAMA_DEFAULT_CONTEXT`,
     capped by the trained length). Not the trained length alone: the chat does not send
     ``num_ctx``, so Ollama runs at its default and would silently drop the *oldest* part of the
     prompt (the system prompt first) past it.
   * OpenAI-compatible servers: the listing's ``max_model_len`` (vLLM), loaded/max context
     (LM Studio) or ``n_ctx_train`` (llama.cpp), via ``list_models()``.
2. ``model_capabilities.yaml``'s ``context_window`` for the provider and model.
3. :data:`DEFAULT_CONTEXT_WINDOW` (Victor's own default, 8192).

Discovery is bounded by ``wait_s`` and never raises: a server that does not answer leaves the
table's figure in charge. When nothing answered at all (connection refused, circuit open), the
result carries that error as ``unreachable``: the chat session then treats the reply attempt as
failed the same way (and falls back) instead of waiting through the same retries a second time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from victor_gui.errors import (
    CircuitOpenError,
    ProviderConnectionError,
    ProviderError,
)
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.capabilities import resolve_capabilities

log = logging.getLogger(__name__)

# Errors that mean the endpoint itself is down, not that it cannot list or describe models.
_DOWN = (ProviderConnectionError, CircuitOpenError)

DEFAULT_CONTEXT_WINDOW = 8192
OLLAMA_DEFAULT_CONTEXT = 4096


@dataclass(frozen=True)
class ContextWindow:
    """A window size and where it came from (``server``, ``table`` or ``default``)."""

    tokens: int
    source: str
    unreachable: ProviderError | None = None  # set when nothing answered the discovery


def _same_model(listed: str, wanted: str) -> bool:
    if listed == wanted:
        return True
    # Ollama: "llama3.2" and "llama3.2:latest" are one model.
    return listed.removesuffix(":latest") == wanted.removesuffix(":latest")


async def _from_server(provider: BaseProvider, model: str) -> int | None:
    info = None
    try:
        listed = await provider.list_models()
    except _DOWN:
        raise
    except (ProviderError, NotImplementedError):
        listed = []  # cannot list (cloud API without it, a proxy): ask the table instead
    info = next((entry for entry in listed if _same_model(entry.id, model)), None)
    show = getattr(provider, "show_model", None)
    if show is not None:  # Ollama
        extra: dict[str, Any] = info.model_extra or {} if info is not None else {}
        loaded = extra.get("loaded_context_length")
        if isinstance(loaded, int) and loaded > 0:
            return loaded
        try:
            details = await show(model)
        except _DOWN:
            raise
        except ProviderError:
            return None
        if details.num_ctx:
            return int(details.num_ctx)
        trained = details.context_length
        return min(trained, OLLAMA_DEFAULT_CONTEXT) if trained else OLLAMA_DEFAULT_CONTEXT
    return info.context_length if info is not None and info.context_length else None


async def discover_context_window(provider: BaseProvider, model: str, *,
                                  wait_s: float = 5.0) -> ContextWindow:
    """The context window of ``model`` on ``provider`` (see the module docstring)."""
    down: ProviderError | None = None
    try:
        async with asyncio.timeout(wait_s):
            found = await _from_server(provider, model)
    except _DOWN as exc:
        found, down = None, exc
    except (TimeoutError, ProviderError) as exc:
        log.info("context window of %s/%s not discovered: %s", provider.name, model, exc)
        found = None
    if found:
        return ContextWindow(int(found), "server")
    table = resolve_capabilities(provider.name, model).context_window
    if table:
        return ContextWindow(int(table), "table", down)
    return ContextWindow(DEFAULT_CONTEXT_WINDOW, "default", down)
