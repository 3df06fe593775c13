"""``ProviderRegistry``: every seed name and alias, plus providers registered at run time.

Built-in providers are :class:`~victor_gui.providers.catalog.ProviderSpec` rows served by a
wire-protocol class that is imported on first use. ``register`` adds a class of one's own (the
seed's custom-provider pattern) under a name and aliases.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from victor_gui.errors import ProviderNotFoundError, ProviderUnavailableError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import PROTOCOLS, SPECS, ProviderSpec, find_spec


class ProviderRegistry:
    """Class-level registry (the seed calls ``ProviderRegistry.register`` / ``create`` directly)."""

    _custom: dict[str, type[BaseProvider]] = {}
    _custom_aliases: dict[str, str] = {}
    _protocol_classes: dict[str, type[BaseProvider]] = {}
    _lock = threading.Lock()

    @classmethod
    def register(cls, name: str, provider_cls: type[BaseProvider], *, aliases: tuple[str, ...] = ()) -> None:
        """Register ``provider_cls`` under ``name`` (and ``aliases``); it wins over a built-in."""
        key = name.strip().lower()
        with cls._lock:
            cls._custom[key] = provider_cls
            for alias in aliases:
                cls._custom_aliases[alias.strip().lower()] = key

    @classmethod
    def unregister(cls, name: str) -> None:
        key = name.strip().lower()
        with cls._lock:
            cls._custom.pop(key, None)
            for alias in [a for a, target in cls._custom_aliases.items() if target == key]:
                del cls._custom_aliases[alias]

    @classmethod
    def is_registered(cls, name: str) -> bool:
        key = name.strip().lower()
        return key in cls._custom or key in cls._custom_aliases or find_spec(key) is not None

    @classmethod
    def list_providers(cls) -> list[str]:
        """Primary names: the built-in ones, then registered ones, sorted."""
        names = {s.name for s in SPECS} | set(cls._custom)
        return sorted(names)

    @classmethod
    def aliases(cls, name: str) -> tuple[str, ...]:
        key = cls.canonical_name(name)
        custom = tuple(a for a, target in cls._custom_aliases.items() if target == key)
        spec = find_spec(key)
        return (spec.aliases if spec else ()) + custom

    @classmethod
    def canonical_name(cls, name: str) -> str:
        key = name.strip().lower()
        if key in cls._custom:
            return key
        if key in cls._custom_aliases:
            return cls._custom_aliases[key]
        spec = find_spec(key)
        if spec is None:
            raise ProviderNotFoundError(
                f"No provider named {name!r}. Known: {', '.join(cls.list_providers())}", name)
        return spec.name

    @classmethod
    def spec(cls, name: str) -> ProviderSpec | None:
        """The built-in spec behind ``name`` (None for run-time registered classes)."""
        key = cls.canonical_name(name)
        return None if key in cls._custom else find_spec(key)

    @classmethod
    def get(cls, name: str) -> type[BaseProvider]:
        """The class that serves ``name``; imports its protocol module on first use."""
        key = cls.canonical_name(name)
        if key in cls._custom:
            return cls._custom[key]
        spec = find_spec(key)
        assert spec is not None
        return cls._protocol_class(spec)

    @classmethod
    def create(cls, name: str, **kwargs: Any) -> BaseProvider:
        """A ready provider instance for ``name`` (any alias). Built-ins get their spec."""
        key = cls.canonical_name(name)
        if key in cls._custom:
            return cls._custom[key](**kwargs)
        spec = find_spec(key)
        assert spec is not None
        provider_cls = cls._protocol_class(spec)
        return provider_cls(spec=spec, **kwargs)

    @classmethod
    def create_for_spec(cls, spec: ProviderSpec, **kwargs: Any) -> BaseProvider:
        """A provider for a spec that is not in the catalog (a hand-added endpoint's row)."""
        return cls._protocol_class(spec)(spec=spec, **kwargs)

    @classmethod
    def _protocol_class(cls, spec: ProviderSpec) -> type[BaseProvider]:
        target = PROTOCOLS.get(spec.protocol)
        if target is None:
            raise ProviderUnavailableError(
                f"{spec.display_name} needs the {spec.protocol} wire protocol, which is not available "
                "in this version of Victor GUI yet", spec.name)
        with cls._lock:
            # Keyed by the "module:Class" target, so a catalog row that is re-pointed loads anew.
            if target not in cls._protocol_classes:
                module_name, _, class_name = target.partition(":")
                try:
                    module = importlib.import_module(module_name)
                    cls._protocol_classes[target] = getattr(module, class_name)
                except (ImportError, AttributeError) as exc:
                    # An optional extra (or the protocol module itself) is missing: a typed,
                    # explainable failure instead of a bare ImportError reaching the UI.
                    raise ProviderUnavailableError(
                        f"{spec.display_name} needs the {spec.protocol} wire protocol ({target}), which "
                        f"could not be loaded: {exc}", spec.name, raw_error=exc) from exc
            return cls._protocol_classes[target]
