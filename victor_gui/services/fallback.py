"""Fallback chains: when the chosen provider cannot answer, the next one in the profile does.

A profile's ``fallback: [{provider, model}]`` (seed 001) becomes a list of :class:`Candidate`.
:class:`~victor_gui.services.chat_session.ChatSession` tries its own provider first, then each
candidate in order, **only while nothing of the reply has been shown** (no text, no reasoning).
Once output began, a failure keeps the partial reply and shows the error: a second model
starting over under text the user already read would be a different answer glued onto the first.

Errors that move on to the next candidate (the provider could not answer at all; retries and
backoff inside the provider were already spent on them):

* :class:`~victor_gui.errors.ProviderConnectionError`: nothing answered (dead port, DNS, reset);
* :class:`~victor_gui.errors.ProviderServerError` (5xx, 529 overloaded) incl.
  :class:`~victor_gui.errors.ModelLoadingError`;
* :class:`~victor_gui.errors.ProviderRateLimitError`: 429 after its retries;
* :class:`~victor_gui.errors.CircuitOpenError`: the endpoint failed repeatedly just now;
* :class:`~victor_gui.errors.ProviderTimeoutError` before any output.

Errors that do **not** fall back: auth (401/403, missing key), bad request (400/413/422, content
filter), context length, unknown model, invalid response. Each would fail the same way on the
next provider (the request itself is wrong), or is a decision the user must see (a content
filter); and sending the prompt on to a provider the user did not pick *for that reason* could
leak it somewhere it should not go. Fallback providers are built when first needed and kept
for the session, so their circuit breakers and connections carry over between replies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from victor_gui.config.profiles import Profile, ProviderSettings
from victor_gui.errors import (
    CircuitOpenError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)
from victor_gui.providers.base import BaseProvider

log = logging.getLogger(__name__)

FALLBACK_ERRORS: tuple[type[ProviderError], ...] = (
    ProviderConnectionError,
    ProviderServerError,  # includes ModelLoadingError
    ProviderRateLimitError,
    CircuitOpenError,
    ProviderTimeoutError,
)


def may_fall_back(error: ProviderError, *, output_began: bool) -> bool:
    """Whether the next candidate should answer after ``error`` (see the module docstring)."""
    if output_began or error.partial_content:
        return False
    return isinstance(error, FALLBACK_ERRORS)


@dataclass
class Candidate:
    """One step of a fallback chain: a provider (built on first use) and the model to ask."""

    provider_name: str
    model: str
    factory: Callable[[], BaseProvider]
    _instance: BaseProvider | None = field(default=None, repr=False)
    # Another endpoint of the chosen target (a group's failover), not a profile's next provider:
    # the note after a fall-back names endpoints rather than providers and models.
    group_member: ClassVar[bool] = False

    @classmethod
    def of(cls, provider: BaseProvider, model: str) -> Candidate:
        """A candidate around a provider that already exists (the chain takes ownership)."""
        return cls(provider.name, model, lambda: provider, provider)

    def provider(self) -> BaseProvider:
        """The provider, built now if this is its first use."""
        if self._instance is None:
            self._instance = self.factory()
        return self._instance

    async def close(self) -> None:
        """Close the provider if it was built."""
        if self._instance is not None:
            await self._instance.close()


def provider_options(
    provider: str, given: Mapping[str, Any], providers: Mapping[str, ProviderSettings] | None
) -> dict[str, Any]:
    """``base_url``/``api_key_env``/``timeout`` for creating ``provider``: the ones ``given``
    (a profile or a fallback target), else the top-level ``providers:`` settings."""
    settings = (providers or {}).get(provider)
    out: dict[str, Any] = {}
    for key in ("base_url", "api_key_env", "timeout"):
        value = given.get(key)
        if value is None and settings is not None:
            value = getattr(settings, key, None)
        if value is not None:
            out[key] = value
    return out


def chain_from_profile(
    profile: Profile,
    *,
    providers: Mapping[str, ProviderSettings] | None = None,
    create: Callable[..., BaseProvider] | None = None,
) -> list[Candidate]:
    """The profile's fallback targets as candidates, in order.

    Per target: ``model`` defaults to the profile's own model (the same model on another
    endpoint, e.g. a second Ollama host); ``base_url``/``api_key_env``/``timeout`` come from the
    target's extra keys, else the top-level ``providers:`` settings of that provider. A target
    without any model is skipped (logged). ``create`` defaults to ``ProviderRegistry.create``.
    """
    if create is None:
        from victor_gui.providers.registry import ProviderRegistry

        create = ProviderRegistry.create
    make = create
    out: list[Candidate] = []
    for target in profile.fallback:
        model = target.model or profile.model
        if not model:
            log.warning("fallback to %s skipped: no model given", target.provider)
            continue
        kwargs = provider_options(target.provider, dict(target.model_extra or {}), providers)

        def build(name: str = target.provider, kw: dict[str, Any] = kwargs) -> BaseProvider:
            return make(name, **kw)

        out.append(Candidate(target.provider, model, build))
    return out
