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
table's figure in charge.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from victor_gui.errors import ProviderError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.capabilities import resolve_capabilities

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_WINDOW = 8192
OLLAMA_DEFAULT_CONTEXT = 4096


@dataclass(frozen=True)
class ContextWindow:
    """A window size and where it came from (``server``, ``table`` or ``default``)."""

    tokens: int
    source: str


def _same_model(listed: str, wanted: str) -> bool:
    if listed == wanted:
        return True
    # Ollama: "llama3.2" and "llama3.2:latest" are one model.
    return listed.removesuffix(":latest") == wanted.removesuffix(":latest")


async def _from_server(provider: BaseProvider, model: str) -> int | None:
    info = None
    try:
        for entry in await provider.list_models():
            if _same_model(entry.id, model):
                info = entry
                break
    except (ProviderError, NotImplementedError):
        info = None
    show = getattr(provider, "show_model", None)
    if show is not None:  # Ollama
        extra: dict[str, Any] = info.model_extra or {} if info is not None else {}
        loaded = extra.get("loaded_context_length")
        if isinstance(loaded, int) and loaded > 0:
            return loaded
        try:
            details = await show(model)
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
    try:
        async with asyncio.timeout(wait_s):
            found = await _from_server(provider, model)
    except (TimeoutError, ProviderError) as exc:
        log.info("context window of %s/%s not discovered: %s", provider.name, model, exc)
        found = None
    if found:
        return ContextWindow(int(found), "server")
    table = resolve_capabilities(provider.name, model).context_window
    if table:
        return ContextWindow(int(table), "table")
    return ContextWindow(DEFAULT_CONTEXT_WINDOW, "default")
