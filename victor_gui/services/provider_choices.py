"""Which providers the app offers, whether each can be used, and provider instances on demand.

Qt-free: the provider drop-down shows :func:`provider_choices` (local servers first), and
:class:`ProviderPool` builds each provider once, on first use, with the app's one shared HTTP
client. :func:`probe_local` asks every local server for its models at once, so the window
can say which answered and what to do when none did.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from victor_gui.errors import ProviderError, ProviderTimeoutError, ProviderUnavailableError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import find_spec
from victor_gui.providers.endpoints import candidate_base_urls
from victor_gui.providers.keys import resolve_api_key
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import ModelInfo


@dataclass(frozen=True)
class ProviderChoice:
    """One entry of the provider drop-down."""

    name: str
    display_name: str
    is_local: bool
    needs_key: bool
    key_source: str | None  # "keyring", "env:OPENAI_API_KEY", ... or None when no key was found
    base_url: str | None

    @property
    def has_key(self) -> bool:
        return self.key_source is not None

    @property
    def usable(self) -> bool:
        """False when the provider needs a key and none was found."""
        return self.has_key or not self.needs_key

    @property
    def label(self) -> str:
        if self.is_local:
            return f"{self.display_name} (local)"
        if not self.usable:
            return f"{self.display_name} — no API key"
        return self.display_name


def provider_choices(env: Mapping[str, str] | None = None) -> list[ProviderChoice]:
    """Every registered provider: local ones first, then the rest by display name."""
    env = os.environ if env is None else env
    out: list[ProviderChoice] = []
    for name in ProviderRegistry.list_providers():
        spec = find_spec(name)
        if spec is None:  # registered at run time without a catalog row
            out.append(ProviderChoice(name, name, False, False, None, None))
            continue
        key, source = resolve_api_key(spec, env=env)
        del key  # only whether one exists matters here; the pool resolves it again when used
        urls = candidate_base_urls(spec.name, spec.default_base_url, env=env) if spec.is_local else []
        base_url = urls[0] if urls else spec.default_base_url
        out.append(ProviderChoice(spec.name, spec.display_name, spec.is_local, spec.needs_key, source,
                                  base_url))
    out.sort(key=lambda c: (not c.is_local, c.display_name.lower()))
    return out


class ProviderPool:
    """Provider instances, built once per name with the shared client and closed together."""

    def __init__(self, http_client: httpx.AsyncClient | None = None) -> None:
        self.http_client = http_client
        self._providers: dict[str, BaseProvider] = {}

    def get(self, choice: ProviderChoice) -> BaseProvider:
        """The provider for ``choice``; a missing wire protocol becomes ProviderUnavailableError."""
        provider = self._providers.get(choice.name)
        if provider is not None:
            return provider
        spec = find_spec(choice.name)
        key = resolve_api_key(spec)[0] if spec is not None else None
        try:
            provider = ProviderRegistry.create(choice.name, api_key=key, base_url=choice.base_url,
                                               http_client=self.http_client, max_retries=1)
        except ImportError as exc:  # the protocol module is named but not shipped in this build
            raise ProviderUnavailableError(
                f"{choice.display_name} is not available in this build of Victor GUI yet", choice.name,
                raw_error=exc) from None
        self._providers[choice.name] = provider
        return provider

    def forget(self, name: str) -> None:
        """Drop a cached instance (after its key or address changed)."""
        self._providers.pop(name, None)

    async def close(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.close()


async def list_models(pool: ProviderPool, choice: ProviderChoice, *, limit_s: float = 5.0) -> list[ModelInfo]:
    """``list_models`` of ``choice``, bounded in time, failures typed."""
    provider = pool.get(choice)
    try:
        return await asyncio.wait_for(provider.list_models(), limit_s)
    except TimeoutError:
        raise ProviderTimeoutError(f"{choice.display_name} did not list its models within {limit_s:g} s",
                                   choice.name) from None


async def probe_local(pool: ProviderPool, choices: list[ProviderChoice], *,
                      limit_s: float = 2.5) -> dict[str, list[ModelInfo] | ProviderError]:
    """Ask every local provider for its models at once: name -> models, or the typed error."""
    local = [c for c in choices if c.is_local]

    async def one(choice: ProviderChoice) -> list[ModelInfo] | ProviderError:
        try:
            return await list_models(pool, choice, limit_s=limit_s)
        except ProviderError as exc:
            return exc

    results = await asyncio.gather(*(one(c) for c in local))
    return {c.name: r for c, r in zip(local, results, strict=True)}


__all__ = ["ProviderChoice", "ProviderPool", "list_models", "probe_local", "provider_choices"]
