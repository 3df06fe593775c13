"""Where a provider's API key comes from.

Order: an explicit value, then the secret store (the OS keyring, installed by the app at start),
then the environment: a profile's ``api_key_env`` first, then the seed's variables for the
provider (``GROQ_API_KEY`` or ``GROQCLOUD_API_KEY``, ``HF_API_KEY`` or ``HF_TOKEN``, ...).
Environment variables are read, never written. Every key found is registered with the redactor.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

from victor_gui.core.redact import register_secret
from victor_gui.providers.catalog import ProviderSpec


class SecretStore(Protocol):
    """Read access to stored keys, one per provider name."""

    def get_key(self, provider: str) -> str | None: ...


_store: SecretStore | None = None


def set_secret_store(store: SecretStore | None) -> None:
    """Install the store consulted after explicit keys (the app passes its keyring store)."""
    global _store
    _store = store


def resolve_api_key(
    spec: ProviderSpec,
    explicit: str | None = None,
    *,
    api_key_env: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[str | None, str | None]:
    """(key, where it came from) for ``spec``; (None, None) when no source has one."""
    env = os.environ if env is None else env
    key: str | None = None
    source: str | None = None
    if explicit:
        key, source = explicit, "explicit"
    elif _store is not None and (stored := _store.get_key(spec.name)):
        key, source = stored, "keyring"
    else:
        for var in ((api_key_env,) if api_key_env else ()) + spec.key_env_vars:
            if var and env.get(var):
                key, source = env[var], f"env:{var}"
                break
    register_secret(key)
    return key, source


def key_hint(spec: ProviderSpec) -> str:
    """What a person should do to give ``spec`` a key."""
    names = " or ".join(spec.key_env_vars) or "a key"
    return f"Save a key for {spec.display_name} in Settings → API keys, or set {names}."
