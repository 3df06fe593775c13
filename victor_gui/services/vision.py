"""Whether a model takes images, which configured models do, and the refusal that says so.

:func:`check_images` answers for one provider and model, the first that knows winning:

1. a ``vision=`` forced on the provider (a hand-added endpoint's setting);
2. **the server** that runs the model (``shared/reference/servers.md``):
   * llama.cpp: ``GET /props`` → ``modalities.vision`` (true only when llama-server was
     started with a projector, ``--mmproj``; §4.3/§4.4), ``?model=`` for router mode;
   * Ollama: ``POST /api/show`` → ``capabilities`` contains ``vision`` (§1.3);
   * LM Studio: REST v1 ``GET /api/v1/models`` → ``capabilities.vision`` (0.4+), else REST v0
     ``GET /api/v0/models`` → ``type: "vlm"`` (§2.3);
3. the capabilities table (``model_capabilities.yaml``'s ``vision``) when a glob matches;
4. the provider's own default (cloud protocols: every current model takes images; a plain
   OpenAI-compatible endpoint: no).

A server that should know but does not answer within ``timeout_s`` (stopped, slow, an old build)
leaves the table in charge; with no table entry either the answer is ``None``: cannot tell, so
the caller sends and lets the server answer. Nothing here raises.

:func:`models_that_take_images` checks candidates at once, bounded in time, for the
alternatives :func:`refuse_images` offers; :func:`configured_image_candidates` builds the
candidates from the provider choices the window offers (their model listings), and
:func:`refusal_for` puts the three together for the send path: None, or the error to show.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from victor_gui.errors import ModelTakesNoImagesError, ProviderError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.capabilities import matching_patterns, resolve_capabilities
from victor_gui.providers.protocols.ollama import OllamaProvider
from victor_gui.providers.protocols.openai_compat import OpenAICompatProvider
from victor_gui.services.provider_choices import ProviderChoice, ProviderPool, list_models

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 3.0  # one server's answer; a local server answers in milliseconds
ALTERNATIVES_LIMIT_S = 5.0  # every candidate together
MAX_CANDIDATES = 60  # models asked about at most (an Ollama library can hold hundreds)
SHOWN_ALTERNATIVES = 6  # named in the refusal's sentence; the rest counted
# Listing capabilities that already say "takes images" (Ollama /api/tags 0.9.1+, LM Studio v0
# ``type: vlm`` as mapped by openai_models, llama.cpp's Ollama-style ``multimodal``).
_LISTED_VISION = frozenset({"vision", "multimodal"})


@dataclass(frozen=True)
class ImageCandidate:
    """A model the refusal may offer instead: how it is named, and how to ask about it."""

    label: str  # "provider/model", as the window and the CLI show it
    provider: BaseProvider
    model: str
    listed: tuple[str, ...] = ()  # the capabilities its model listing gave, if any


async def check_images(
    provider: BaseProvider, model: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> bool | None:
    """True when ``model`` on ``provider`` takes images, False when it does not, None when
    nothing can tell (see the module docstring for the order). Never raises."""
    try:
        forced = provider.extra.get("vision")
        if forced is not None:
            return bool(forced)
        asks_server = _server_knows(provider)
        if asks_server:
            answer = await _bounded(_server_answer(provider, model), timeout_s, provider.name)
            if answer is not None:
                return answer
        if model and matching_patterns(model):
            return resolve_capabilities(provider.name, model).vision
        return None if asks_server else provider.supports_vision(model)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug here must not stop a message; the server will answer
        log.error("checking whether %s/%s takes images failed", provider.name, model, exc_info=exc)
        return None


async def models_that_take_images(
    candidates: Iterable[ImageCandidate],
    *,
    limit_s: float = ALTERNATIVES_LIMIT_S,
    per_model_s: float = DEFAULT_TIMEOUT_S,
    concurrency: int = 6,
) -> list[str]:
    """The labels of the candidates that take images, in the order given (duplicates once).

    A listing that already says so is believed without a request; the others are asked
    :func:`check_images` at most ``concurrency`` at a time. Whatever has not answered when
    ``limit_s`` runs out is left out (an unknown is not offered as an alternative).
    """
    unique: dict[str, ImageCandidate] = {}
    for candidate in candidates:
        unique.setdefault(candidate.label, candidate)
    chosen = list(unique.values())[:MAX_CANDIDATES]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(candidate: ImageCandidate) -> bool:
        if _LISTED_VISION.intersection(c.lower() for c in candidate.listed):
            return True
        async with gate:
            return await check_images(candidate.provider, candidate.model, timeout_s=per_model_s) is True

    tasks = [asyncio.ensure_future(one(c)) for c in chosen]
    if not tasks:
        return []
    done, pending = await asyncio.wait(tasks, timeout=limit_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return [c.label for c, t in zip(chosen, tasks, strict=True) if t in done and not t.cancelled()
            and t.exception() is None and t.result()]


async def configured_image_candidates(
    pool: ProviderPool,
    choices: Sequence[ProviderChoice],
    *,
    exclude: tuple[str, str] | None = None,
    limit_s: float = DEFAULT_TIMEOUT_S,
) -> list[ImageCandidate]:
    """Every model the usable ``choices`` list (each listing bounded by ``limit_s``), as
    candidates labelled ``"<display name>/<model>"``; ``exclude`` is the ``(choice name, model)``
    just refused. A provider that cannot list its models adds none. Never raises."""
    usable = [c for c in choices if c.usable]

    async def listing(choice: ProviderChoice) -> list[ImageCandidate]:
        try:
            provider = pool.get(choice)
            infos = await list_models(pool, choice, limit_s=limit_s)
        except (ProviderError, httpx.HTTPError, TimeoutError, ValueError) as exc:
            log.info("no image alternatives from %s: %s", choice.name, exc)
            return []
        out = []
        for info in infos:
            caps = tuple(str(c) for c in info.capabilities)
            if info.id and not _same(choice.name, info.id, exclude) and not _embedding_only(caps, info.raw):
                out.append(ImageCandidate(f"{choice.display_name}/{info.id}", provider, info.id, caps))
        return out

    try:
        found = await asyncio.gather(*(listing(c) for c in usable))
    except Exception as exc:
        log.error("listing image alternatives failed", exc_info=exc)
        return []
    return [candidate for group in found for candidate in group]


async def refusal_for(
    provider: BaseProvider,
    model: str,
    *,
    provider_label: str,
    pool: ProviderPool | None = None,
    choices: Sequence[ProviderChoice] = (),
    choice_name: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ModelTakesNoImagesError | None:
    """What to do before sending images to ``model``: None when it takes them (or nothing can
    tell: the server will answer), else the refusal naming the configured models that do
    (``choices`` through ``pool``; ``choice_name`` is this model's choice, left out). Never raises."""
    if await check_images(provider, model, timeout_s=timeout_s) is not False:
        return None
    alternatives: list[str] = []
    if pool is not None and choices:
        exclude = (choice_name, model) if choice_name else None
        candidates = await configured_image_candidates(pool, choices, exclude=exclude, limit_s=timeout_s)
        alternatives = await models_that_take_images(candidates)
    return refuse_images(provider_label, model, alternatives)


def refuse_images(provider_label: str, model: str, alternatives: Sequence[str]) -> ModelTakesNoImagesError:
    """The error a message with images gets, before sending, when its model takes none: one
    sentence naming the model and the models that do (``alternatives``, already checked)."""
    offered = tuple(dict.fromkeys(a for a in alternatives if a))
    head = f"{model} on {provider_label} does not take images, so the message was not sent"
    if offered:
        named = ", ".join(offered[:SHOWN_ALTERNATIVES])
        more = len(offered) - SHOWN_ALTERNATIVES
        tail = f" and {more} more" if more > 0 else ""
        message = f"{head}; models that do: {named}{tail}. Pick one, or remove the image."
    else:
        message = (f"{head}, and none of the configured models does: remove the image, or load a "
                   "vision model (llama-server needs its --mmproj projector).")
    return ModelTakesNoImagesError(message, alternatives=offered)


# -- asking the server ----------------------------------------------------------------------------


def _server_knows(provider: BaseProvider) -> bool:
    """Whether ``provider`` runs on a server that can say what its model takes."""
    if isinstance(provider, OllamaProvider):
        return True
    if isinstance(provider, OpenAICompatProvider):
        return bool({"llamacpp", "lmstudio"} & provider.spec.quirks)
    return False


async def _bounded(call: Any, timeout_s: float, name: str) -> bool | None:
    try:
        async with asyncio.timeout(timeout_s):
            answer: bool | None = await call
            return answer
    except TimeoutError:
        log.info("%s did not say within %g s whether it takes images", name, timeout_s)
    except (ProviderError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        log.info("%s could not say whether it takes images: %s", name, exc)
    return None


async def _server_answer(provider: BaseProvider, model: str) -> bool | None:
    if isinstance(provider, OllamaProvider):
        details = await provider.show_model(model)
        return details.supports_vision if details.capabilities else None
    assert isinstance(provider, OpenAICompatProvider)
    if "llamacpp" in provider.spec.quirks:
        return _props_vision(await provider.server_json("//props?model=" + quote(model, safe="")))
    return await _lmstudio_vision(provider, model)


def _props_vision(data: Any) -> bool | None:
    modalities = data.get("modalities") if isinstance(data, dict) else None
    if isinstance(modalities, dict) and isinstance(modalities.get("vision"), bool):
        return bool(modalities["vision"])
    return None


async def _lmstudio_vision(provider: OpenAICompatProvider, model: str) -> bool | None:
    try:
        v1 = await provider.server_json("//api/v1/models")
    except ProviderError:
        v1 = None  # 0.3.x: "Unexpected endpoint" (HTTP 200 with an error body)
    for entry in _entries(v1, "models"):
        if model in (entry.get("key"), entry.get("id")):
            caps = entry.get("capabilities")
            if isinstance(caps, dict) and isinstance(caps.get("vision"), bool):
                return bool(caps["vision"])
    v0 = await provider.server_json("//api/v0/models")
    for entry in _entries(v0, "data"):
        if entry.get("id") == model and isinstance(entry.get("type"), str):
            return bool(entry["type"] == "vlm")
    return None


def _entries(payload: Any, key: str) -> list[dict[str, Any]]:
    items = payload.get(key) if isinstance(payload, dict) else None
    return [e for e in items if isinstance(e, dict)] if isinstance(items, list) else []


def _same(choice: str, model: str, exclude: tuple[str, str] | None) -> bool:
    """Whether ``(choice, model)`` is ``exclude`` (Ollama's ``x`` and ``x:latest`` are one model)."""
    if exclude is None or choice != exclude[0]:
        return False
    return model in (exclude[1], f"{exclude[1]}:latest") or exclude[1] == f"{model}:latest"


def _embedding_only(caps: tuple[str, ...], raw: Any) -> bool:
    """An embedding model (Ollama ``embedding`` only, LM Studio ``type: embeddings``) is never
    an alternative for a chat."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind in ("embeddings", "embedding"):
        return True
    return bool(caps) and set(c.lower() for c in caps) <= {"embedding"}


__all__ = [
    "ImageCandidate",
    "check_images",
    "configured_image_candidates",
    "models_that_take_images",
    "refusal_for",
    "refuse_images",
]
