"""How many tokens a model on a provider can take: asked of the server, else the table.

Order, first known wins:

1. **The server** (local servers know what they actually run):
   * Ollama: the context the loaded runner has (``/api/ps``), else a ``num_ctx`` in the
     Modelfile (``/api/show``), else Ollama's default context (:data:`OLLAMA_DEFAULT_CONTEXT`,
     capped by the trained length). Not the trained length alone: the chat does not send
     ``num_ctx``, so Ollama runs at its default and would silently drop the *oldest* part of the
     prompt (the system prompt first) past it.
   * OpenAI-compatible servers: the listing's ``max_model_len`` (vLLM), loaded/max context
     (LM Studio) or the context llama.cpp runs with (``meta.n_ctx``, else ``n_ctx_train``),
     via ``list_models()``.
2. ``model_capabilities.yaml``'s ``context_window`` for the provider and model.
3. :data:`DEFAULT_CONTEXT_WINDOW` (Victor's own default, 8192).

Discovery is bounded by ``wait_s`` and never raises: a server that does not answer leaves the
table's figure in charge. When nothing answered at all (connection refused, circuit open), the
result carries that error as ``unreachable``: the chat session then treats the reply attempt as
failed the same way (and falls back) instead of waiting through the same retries a second time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from victor_gui.errors import (
    CircuitOpenError,
    ProviderConnectionError,
    ProviderError,
)
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.bounded import read_bounded
from victor_gui.providers.capabilities import resolve_capabilities
from victor_gui.providers.catalog import find_spec
from victor_gui.providers.http import parse_json_body
from victor_gui.providers.json_guard import Shape
from victor_gui.providers.types import ModelInfo
from victor_gui.services.context_trim import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    TOOL_CALL_OVERHEAD,
    estimate_text_tokens,
    prompt_budget,
)
from victor_gui.storage.models import StoredMessage

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
    return window_from_listing(info) if info is not None else None


def window_from_listing(info: ModelInfo) -> int | None:
    """The window a model listing entry tells, without asking anything more (None: it does not).

    llama.cpp lists the context it runs with (``meta.n_ctx``) beside the trained length
    (``n_ctx_train``, which ``ModelInfo.context_length`` holds): the running one is the real window.
    """
    extra: dict[str, Any] = info.model_extra or {}
    loaded = extra.get("loaded_context_length")  # Ollama's running context (/api/ps)
    if isinstance(loaded, int) and not isinstance(loaded, bool) and loaded > 0:
        return loaded
    meta = info.raw.get("meta") if isinstance(info.raw, dict) else None
    running = meta.get("n_ctx") if isinstance(meta, dict) else None
    if isinstance(running, int) and not isinstance(running, bool) and running > 0:
        return running
    return info.context_length or None


def table_window(provider_name: str, model: str) -> ContextWindow:
    """The model table's window for ``model`` (no request), else Victor's default."""
    table = resolve_capabilities(provider_name, model).context_window
    return ContextWindow(int(table), "table") if table else ContextWindow(DEFAULT_CONTEXT_WINDOW, "default")


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


# -- the context meter ----------------------------------------------------------------------------

# The meter turns amber from this share of the prompt budget: before trimming starts, so there is
# time to start a new chat or shorten the draft; red once the history will be trimmed.
AMBER_AT = 0.8


@dataclass(frozen=True)
class ContextUse:
    """Tokens a chat's next request would use (history + draft, estimated) against its window.

    ``budget`` is what trimming allows the prompt (the window less the reply's reserve, see
    :func:`~victor_gui.services.context_trim.prompt_budget`): past it the oldest turns are dropped.
    """

    used: int
    window: int
    budget: int

    @property
    def fraction(self) -> float:
        """Share of the budget used (may pass 1.0)."""
        return self.used / self.budget if self.budget else 0.0

    @property
    def level(self) -> str:
        """``ok``, ``amber`` (from :data:`AMBER_AT` of the budget) or ``red`` (trimming will happen)."""
        if self.used > self.budget:
            return "red"
        return "amber" if self.fraction >= AMBER_AT else "ok"


def context_use(used: int, window: int, max_tokens: int | None) -> ContextUse:
    """The meter's figures for ``used`` estimated tokens in a ``window`` with ``max_tokens`` reserved."""
    return ContextUse(used, window, prompt_budget(window, max_tokens))


def stored_tokens(messages: Iterable[StoredMessage], system_prompt: str = "") -> int:
    """Estimated prompt tokens of a stored chat as the session sends it: the system prompt and
    every message but the transcript's notes, estimated as trimming estimates them."""
    total = MESSAGE_OVERHEAD + estimate_text_tokens(system_prompt) if system_prompt else 0
    for message in messages:
        if message.is_note:
            continue
        total += MESSAGE_OVERHEAD + estimate_text_tokens(message.content)
        parts = message.content_parts or []
        images = sum(1 for part in parts if isinstance(part, dict) and part.get("type") == "image")
        total += IMAGE_TOKENS * images
        for call in message.tool_calls or []:
            total += TOOL_CALL_OVERHEAD + estimate_text_tokens(json.dumps(call, ensure_ascii=False))
    return total


def draft_tokens(text: str) -> int:
    """Estimated tokens of the message being typed (it goes as one more user message)."""
    return MESSAGE_OVERHEAD + estimate_text_tokens(text) if text.strip() else 0


# -- the context a running llama-server has (/props) ---------------------------------------------
# Here, beside discovery, rather than in document_context: every chat's first request asks it,
# and a chat without attached documents should not load the document and retrieval modules
# for it (idle memory, issue 14).


def _llama_server_root(provider: BaseProvider) -> str | None:
    """llama-server's root URL (its ``/v1`` stripped) when ``provider`` is llama.cpp, else None."""
    spec = find_spec(provider.name)
    if spec is None or spec.name != "llamacpp" or not provider.base_url:
        return None
    return provider.base_url.rstrip("/").removesuffix("/v1")


async def props_context(provider: BaseProvider, model: str) -> int | None:
    """llama-server's running context for one request: ``/props``
    ``default_generation_settings.n_ctx`` (a slot's context); None for other providers or when
    it does not say. ``?model=`` makes a router answer for that model (its own ``/props`` says
    0); a single-model server ignores it."""
    root = _llama_server_root(provider)
    if root is None:
        return None
    try:
        async with provider.http.stream("GET", f"{root}/props", params={"model": model}) as response:
            if response.is_success:
                data = parse_json_body(await read_bounded(response), provider=provider.name)
                shape = Shape("llama.cpp /props", provider.name, model=model)
                settings = shape.opt_obj(shape.obj(data), "default_generation_settings") or {}
                return shape.opt_count(settings, "n_ctx", "default_generation_settings")
    except (httpx.HTTPError, ProviderError):
        pass
    return None


async def loaded_window(provider: BaseProvider, model: str) -> tuple[int, str]:
    """``(tokens, source)``: the context the server runs ``model`` with. llama-server:
    :func:`props_context`; every other provider:
    :func:`~victor_gui.services.context_window.discover_context_window` (Ollama
    ``/api/ps``, LM Studio's loaded context, vLLM ``max_model_len``, else the table)."""
    n_ctx = await props_context(provider, model)
    if n_ctx:
        return n_ctx, "llama-server /props"
    found = await discover_context_window(provider, model)
    return found.tokens, found.source
