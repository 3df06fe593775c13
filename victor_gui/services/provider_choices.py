"""Which providers the app offers, whether each can be used, and provider instances on demand.

Qt-free. With the server registry (the app): :func:`registry_choices` lists the registry's chat
targets (hand-added endpoints by their names, then "Ollama", "llama.cpp"... for env/default/
discovered ones, each with its live state), then clouds with a key, then clouds without one,
last. Without it (tools, old tests): :func:`provider_choices` (local servers first) and
:func:`probe_local`. :class:`ProviderPool` builds each provider once, on first use: catalog
providers and env/default endpoints with the app's one shared HTTP client, hand-added endpoints
with :func:`~victor_gui.services.endpoint_providers.provider_for_endpoint` (their key, headers,
TLS, timeouts). The endpoints of one target after the first become the session's fallback
chain (:meth:`ProviderPool.fallback`): several servers of one kind fail over.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from victor_gui.errors import ProviderError, ProviderTimeoutError, ProviderUnavailableError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import find_spec
from victor_gui.providers.endpoints import candidate_base_urls
from victor_gui.providers.keys import resolve_api_key
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import ModelInfo
from victor_gui.services.fallback import Candidate

if TYPE_CHECKING:
    from victor_gui.providers.endpoint_access import EndpointAccess
    from victor_gui.services.server_registry import ChatTarget, RegisteredEndpoint, ServerRegistry

log = logging.getLogger(__name__)

KEYLESS_HINT = "add a key in Settings (Ctrl+,)"


@dataclass(frozen=True)
class ProviderChoice:
    """One entry of the provider drop-down."""

    name: str
    display_name: str
    is_local: bool
    needs_key: bool
    key_source: str | None  # "keyring", "env:OPENAI_API_KEY", ... or None when no key was found
    base_url: str | None
    # The registry's target (local or hand-added servers), None for a catalog provider.
    target: ChatTarget | None = None

    @property
    def has_key(self) -> bool:
        return self.key_source is not None

    @property
    def usable(self) -> bool:
        """False when the provider needs a key and none was found."""
        return self.has_key or not self.needs_key

    @property
    def label(self) -> str:
        if self.target is not None:
            return self.display_name  # its live state is the picker's dot
        if self.is_local:
            return f"{self.display_name} (local)"
        if not self.usable:
            return f"{self.display_name} — no API key"
        return self.display_name


def target_choice(target: ChatTarget) -> ProviderChoice:
    """The drop-down entry of a registry target."""
    first = target.ordered[0]
    return ProviderChoice(target.id, target.name, target.is_local, False, None, first.base_url, target)


def registry_choices(registry: ServerRegistry, env: Mapping[str, str] | None = None) -> list[ProviderChoice]:
    """The registry's targets (its order: hand-added first), then clouds with a key, then clouds
    without one (last; their label says how to add a key). Catalog rows of local servers are
    not repeated: the registry's targets are those servers."""
    out = [target_choice(t) for t in registry.targets()]
    clouds = [c for c in provider_choices(env) if not c.is_local]
    out += [c for c in clouds if c.usable] + [c for c in clouds if not c.usable]
    return out


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

    def __init__(self, http_client: httpx.AsyncClient | None = None, *,
                 secrets: Callable[[str], str | None] | None = None, proxy: str | None = None) -> None:
        self.http_client = http_client
        # The keyring store's get_key (hand-added endpoints' keys and secret headers).
        self.secrets = secrets
        self.proxy = proxy
        self._providers: dict[str, BaseProvider] = {}
        self._clients: list[httpx.AsyncClient] = []  # hand-added endpoints' own clients
        # What each hand-added endpoint's provider was built from (its settings, key, headers):
        # an edit in settings.yaml or a new key in the keyring builds a new one.
        self._built_from: dict[str, tuple[str, EndpointAccess]] = {}

    def member(self, member: RegisteredEndpoint, built_from: tuple[str, EndpointAccess] | None = None,
               ) -> BaseProvider:
        """The provider of one registry endpoint (built once, kept by the pool). ``built_from``:
        the endpoint's :meth:`_fingerprint` when the caller already read it."""
        key = "endpoint|" + member.key
        provider = self._providers.get(key)
        if provider is not None:
            return provider
        try:
            if member.setting is not None:
                from victor_gui.services.endpoint_providers import provider_for_endpoint

                built_from = built_from or self._fingerprint(member)
                provider, client = provider_for_endpoint(member.setting, proxy=self.proxy,
                                                         access=built_from[1])
                self._clients.append(client)
                self._built_from[key] = built_from
            else:
                provider = ProviderRegistry.create(member.kind, base_url=member.base_url,
                                                   http_client=self.http_client, max_retries=1)
        except ImportError as exc:
            raise ProviderUnavailableError(f"{member.name} is not available in this build of Victor GUI yet",
                                           member.kind, raw_error=exc) from None
        self._providers[key] = provider
        return provider

    async def prepare(self, choice: ProviderChoice) -> None:
        """Build the providers of ``choice``'s hand-added endpoints in a worker thread: their
        keys and secret headers are keyring reads, which may block (D-Bus)."""
        if choice.target is None:
            return
        members = [m for m in choice.target.members if m.setting is not None]
        if members:
            await asyncio.to_thread(self._build_current, members)

    def _fingerprint(self, member: RegisteredEndpoint) -> tuple[str, EndpointAccess]:
        """What a hand-added endpoint's provider depends on: its settings and, read from the
        keyring (blocking), its key and secret headers."""
        from victor_gui.services.endpoint_providers import endpoint_access

        assert member.setting is not None
        return (member.setting.model_dump_json(), endpoint_access(member.setting, self.secrets))

    def _build_current(self, members: list[RegisteredEndpoint]) -> None:
        # Blocking (keyring reads): run in a worker thread by ``prepare``.
        for member in members:
            key = "endpoint|" + member.key
            now = self._fingerprint(member)  # the one keyring read for this endpoint
            if key in self._providers and self._built_from.get(key) != now:
                # Edited, or a new key saved: the next reply goes out with what is set now. The old
                # provider's client is closed with the pool (a session may still hold it).
                self._providers.pop(key, None)
            if key not in self._providers:
                self.member(member, now)

    def fallback(self, choice: ProviderChoice, model: str) -> list[Candidate]:
        """The other endpoints of ``choice``'s target, in answering order, as a fallback chain
        for ``model`` (the pool keeps their providers: the session's close leaves them be)."""
        if choice.target is None:
            return []
        return [PooledCandidate(m.label, model, lambda m=m: self.member(m))  # type: ignore[misc]
                for m in choice.target.ordered[1:]]

    def get(self, choice: ProviderChoice) -> BaseProvider:
        """The provider for ``choice`` (a target: its first working endpoint); a missing wire
        protocol becomes ProviderUnavailableError."""
        if choice.target is not None:
            return self.member(choice.target.ordered[0])
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
        """Drop a cached instance (after its key or address changed, or a session closed it):
        ``name`` is a provider name or an endpoint's server root."""
        self._providers.pop(name, None)
        self._providers.pop("endpoint|" + name, None)
        for key, provider in list(self._providers.items()):
            if key.startswith("endpoint|") and provider.name == name:
                del self._providers[key]

    async def close(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.close()
        clients, self._clients = self._clients, []
        for client in clients:
            await client.aclose()


class PooledCandidate(Candidate):
    """A fallback candidate whose provider the pool owns (closing the chain leaves it open): another
    endpoint of the chosen target."""

    async def close(self) -> None:
        return None


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
        except Exception as exc:  # one provider's bug must not stop the probe of the others
            log.error("listing the models of %s failed", choice.name, exc_info=exc)
            return ProviderError(f"{choice.display_name}: listing its models failed ({type(exc).__name__})",
                                 choice.name, raw_error=exc)

    results = await asyncio.gather(*(one(c) for c in local))
    return {c.name: r for c, r in zip(local, results, strict=True)}


__all__ = ["KEYLESS_HINT", "PooledCandidate", "ProviderChoice", "ProviderPool", "list_models", "probe_local",
           "provider_choices", "registry_choices", "target_choice"]
