"""What a reply cost, from the dated price table ``resources/prices.yaml`` (see its header).

* **Formula** (USD): ``fresh × input + cached × cached_input + written × cache_write +
  completion × output``, all per million tokens, where ``cached`` = ``usage.cached_tokens``,
  ``written`` = ``usage.cache_creation_tokens`` and ``fresh`` = ``prompt_tokens − cached −
  written`` (never below 0). This follows the neutral :class:`~victor_gui.providers.types.Usage`
  convention: ``prompt_tokens`` counts *every* input token, cached ones included, and
  ``completion_tokens`` includes reasoning tokens (so those are not added again). A missing
  ``cached_input``/``cache_write`` price falls back to ``input``.
* **Local providers cost 0** (catalog category ``local``, or a loopback custom endpoint).
* **Unknown price → None**, shown as "unknown", never as 0: a wrong zero is worse than no figure.
* **User override**: ``<user config dir>/victor_gui/prices.yaml`` (platformdirs), same schema.
  Its matches are tried *before* the bundled table's, so a user entry always wins, even a less
  specific glob.

Load with ``await load_prices()`` (the YAML is parsed in a thread); :func:`cost_of` is then a
pure lookup. :func:`default_cost_fn` is what :class:`~victor_gui.services.chat_session.ChatSession`
uses when no ``cost_fn`` is given.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from victor_gui.config.yaml_io import parse_yaml, read_config_text
from victor_gui.core import app_dirs
from victor_gui.errors import ConfigError
from victor_gui.providers.capabilities import canonical_provider, model_id_forms
from victor_gui.providers.catalog import find_spec
from victor_gui.providers.types import Usage

log = logging.getLogger(__name__)

BUNDLED_NAME = "prices.yaml"
PER = 1_000_000


class Price(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


@dataclass(frozen=True)
class _Entry:
    glob: str
    regex: re.Pattern[str]
    order: tuple[int, int, int]
    price: Price


def _entries(section: dict[str, Any], source: str, provider: str) -> list[_Entry]:
    out = []
    for index, (glob, raw) in enumerate(section.items()):
        text = str(glob).strip().lower()
        try:
            price = Price.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"prices.{provider}.{glob}: {exc.errors()[0]['msg']}", path=source) from None
        wildcards = sum(text.count(c) for c in "*?[")
        literal = len(re.sub(r"\[[^\]]*\]|[*?]", "", text))
        regex = re.compile(fnmatch.translate(text), re.I)
        out.append(_Entry(text, regex, (literal, -wildcards, index), price))
    return sorted(out, key=lambda e: e.order, reverse=True)  # most specific first


@dataclass
class PriceTable:
    """Parsed price layers, user file first; ``as_of`` is the bundled table's date."""

    layers: list[dict[str, list[_Entry]]] = field(default_factory=list)
    as_of: str | None = None
    sources: list[str] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)

    def price(self, provider: str, model: str) -> Price | None:
        """The price of ``model`` on ``provider``; None when no entry matches."""
        name = canonical_provider(provider)
        forms = model_id_forms(model)
        for layer in self.layers:  # user file first: its entries always win
            for section in (name, "*"):
                for entry in layer.get(section, []):
                    if any(entry.regex.match(f) for f in forms):
                        return entry.price
        return None

    def cost(self, provider: str, model: str, usage: Usage, *, local: bool | None = None) -> float | None:
        """USD for ``usage`` (see the module docstring); 0 for local providers, None if unknown."""
        if local if local is not None else is_local(provider):
            return 0.0
        price = self.price(provider, model)
        return None if price is None else cost_with(price, usage)


def cost_with(price: Price, usage: Usage) -> float:
    """The formula of the module docstring."""
    cached = max(0, usage.cached_tokens or 0)
    written = max(0, usage.cache_creation_tokens or 0)
    fresh = max(0, (usage.prompt_tokens or 0) - cached - written)
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    write_rate = price.cache_write if price.cache_write is not None else price.input
    total = (fresh * price.input + cached * cached_rate + written * write_rate
             + (usage.completion_tokens or 0) * price.output)
    return total / PER


def is_local(provider: str) -> bool:
    """Whether ``provider`` is a local server by the catalog (Ollama, LM Studio, vLLM, llama.cpp)."""
    spec = find_spec(provider)
    return spec is not None and spec.is_local


def parse_prices(text: str, source: str) -> tuple[dict[str, list[_Entry]], str | None]:
    """One prices document as {provider: entries}, and its ``as_of``; ConfigError if unusable."""
    # The config files' parser: aliases that would blow the document up are refused (issue 16).
    data, _ = parse_yaml(text, Path(source))
    if data is None:
        return {}, None
    if not isinstance(data, dict) or not isinstance(data.get("prices") or {}, dict):
        raise ConfigError("expected a mapping with 'prices: {provider: {model glob: {input, output}}}'",
                          path=source)
    layer: dict[str, list[_Entry]] = {}
    for provider, section in (data.get("prices") or {}).items():
        if not isinstance(section, dict):
            raise ConfigError(f"prices.{provider} must be a mapping of model globs", path=source)
        key = "*" if provider == "*" else canonical_provider(str(provider))
        layer[key] = _entries(section, source, str(provider)) + layer.get(key, [])
    as_of = data.get("as_of")
    return layer, str(as_of) if as_of is not None else None


def default_user_path() -> Path:
    """``<user config dir>/victor_gui/prices.yaml``."""
    return app_dirs.config_dir() / BUNDLED_NAME


_lock = threading.Lock()
_table: PriceTable | None = None
_DEFAULT = object()


def load_prices_sync(user_path: Path | str | object | None = _DEFAULT) -> PriceTable:
    """Parse the bundled and the user price files and cache the table (sync: use a thread).

    ``user_path=None`` skips the user file. A user file that cannot be used is reported in
    ``errors`` and the bundled prices still apply.
    """
    global _table
    table = PriceTable()
    bundled = resources.files("victor_gui.resources").joinpath(BUNDLED_NAME)
    chosen = default_user_path() if user_path is _DEFAULT else user_path
    path = Path(chosen) if isinstance(chosen, str | Path) else None
    if path is not None and path.is_file():
        try:
            layer, _ = parse_prices(read_config_text(path), str(path))  # bounded in size
            table.layers.append(layer)
            table.sources.append(str(path))
        except (ConfigError, OSError, UnicodeDecodeError) as exc:
            err = exc if isinstance(exc, ConfigError) else ConfigError(str(exc), path=str(path))
            log.warning("user prices ignored: %s", err)
            table.errors.append(err)
    try:
        layer, table.as_of = parse_prices(bundled.read_text(encoding="utf-8"), str(bundled))
        table.layers.append(layer)
        table.sources.append(str(bundled))
    except (ConfigError, OSError) as exc:  # a build defect; costs then show as unknown
        log.error("bundled prices unusable: %s", exc)
        table.errors.append(exc if isinstance(exc, ConfigError) else ConfigError(str(exc)))
    with _lock:
        _table = table
    return table


async def load_prices(user_path: Path | str | object | None = _DEFAULT) -> PriceTable:
    """:func:`load_prices_sync` in a thread (call at start-up and after the user edits prices)."""
    return await asyncio.to_thread(load_prices_sync, user_path)


def loaded() -> bool:
    """Whether a table is cached (the chat session loads one in a thread before first use)."""
    return _table is not None


def current_prices() -> PriceTable:
    """The cached table (loaded now, synchronously, if nothing was loaded yet)."""
    return _table or load_prices_sync()


def cost_of(provider: str, model: str, usage: Usage, *, local: bool | None = None) -> float | None:
    """USD for one reply from the cached table; None when the price is unknown."""
    return current_prices().cost(provider, model, usage, local=local)


def default_cost_fn(provider: str, model: str, usage: Usage) -> float | None:
    """The ``cost_fn`` a chat session uses by default (:func:`cost_of` with catalog locality)."""
    return cost_of(provider, model, usage)
