"""What a model can do on a given provider, from ``model_capabilities.yaml``.

The file follows the seed's schema (``schema_version: "0.2.0"``). A lookup merges flat key/value
layers, later winning:

1. ``defaults`` (its ``training``, ``provider_support`` and ``settings`` sections);
2. ``provider_defaults.<provider>``;
3. ``models.<glob>.training``;
4. ``models.<glob>.providers.<provider>``;
5. ``models.<glob>.settings``.

Globs are ``fnmatch`` patterns matched case-insensitively against the model id and against
shorter forms of it: the last path segment (``Qwen/Qwen2.5-Coder-7B-Instruct`` →
``qwen2.5-coder-7b-instruct``) and the id without a Bedrock vendor prefix
(``us.anthropic.claude-…`` → ``claude-…``). When several globs match, they are applied from least
to most specific, each with its steps 3-5, so everything a more specific glob says wins over a
less specific one (a user's ``"qwen3-coder-30b*"`` entry beats the bundled ``"qwen3*"`` whatever
section either uses). **More literal (non-wildcard) characters is more specific; on a tie, fewer
wildcards; on a tie, later in the file.** Literal length comes first because
``llama*3.2*vision*`` must beat ``llama*3.2*`` although it has more wildcards.

The bundled file ships as ``victor_gui.resources/model_capabilities.yaml``. A user file of the
same schema (default ``user_config_dir("victor_gui")/model_capabilities.yaml``) is deep-merged on
top: its entries win key by key. A file that cannot be used (bad YAML, duplicate keys, wrong
types) becomes a :class:`~victor_gui.errors.ConfigError` naming the file and line, recorded in
:func:`load_errors`; the lookup then goes on without that file.

Loading parses files, so call :func:`load_capabilities` in an executor at start-up
(``await asyncio.to_thread(load_capabilities)``); :func:`resolve_capabilities` is then pure dict
merging on the cached parse. If nothing was loaded yet it loads on first use.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from victor_gui.core import app_dirs
from victor_gui.errors import ConfigError
from victor_gui.providers import catalog

log = logging.getLogger(__name__)

SCHEMA_VERSION = "0.2.0"
BUNDLED_NAME = "model_capabilities.yaml"


class ModelCapabilities(BaseModel):
    """Resolved capabilities of one model on one provider (unknown keys are kept as extras)."""

    model_config = ConfigDict(extra="allow")

    # training: what the model itself learned to do
    tool_calling: bool = False
    thinking_mode: bool = False
    code_generation: bool = False
    vision: bool = False
    reasoning: bool = False
    # provider_support: what the serving API offers for it
    native_tool_calls: bool = False
    streaming_tool_calls: bool = False
    parallel_tool_calls: bool = False
    tool_choice_param: bool = False
    streaming: bool = True
    # facts and tuning
    context_window: int | None = None
    recommended_max_tools: int = 15
    recommended_tool_budget: int = 10
    requires_strict_prompting: bool = True
    argument_format: Literal["json", "xml"] = "json"
    exploration_multiplier: float = 1.0
    continuation_patience: int = 10
    timeout_multiplier: float = 1.0
    tool_reliability: Literal["low", "medium", "high"] = "medium"
    thinking_disable_prefix: str | None = None
    # Text fallbacks when native tool calls are off (parsed by victor_gui.providers.tool_parsing).
    json_fallback: bool = True
    xml_fallback: bool = True

    @property
    def uses_native_tools(self) -> bool:
        """Send tools in the API's own field (else describe them in the prompt and parse text)."""
        return self.tool_calling and self.native_tool_calls


_SECTIONS = ("training", "provider_support", "settings")


# -- loading --------------------------------------------------------------------------------------


class _LinedDict(dict[Any, Any]):
    """A mapping that remembers the line (1-based) of each key, for error messages."""

    lines: dict[Any, int]


# A capabilities file is a few hundred KB at most; larger is a mistake or an attack, refused
# before it is read whole (issue 16: a 100 MB config file cost GBs at start-up).
MAX_FILE_BYTES = 1 << 20


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one) and aliases
    (``*name``): the bundled file uses none, and nested aliases are the "billion laughs" that
    blow a small file up to billions of values when it is walked."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a capabilities file", event.start_mark)
        return super().compose_node(parent, index)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> _LinedDict:
    loader.flatten_mapping(node)
    result = _LinedDict()
    result.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found an unhashable key",
                key_node.start_mark) from None
        if key in result:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r} (first on line {result.lines[key]})", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_capabilities_text(text: str, source: str) -> dict[str, Any]:
    """Parse and check one capabilities document; :class:`ConfigError` (file, line) if unusable."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", path=source, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=source) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping", path=source, line=1)
    _check_document(data, source)
    return data


def parse_capabilities_file(path: Path | str) -> dict[str, Any]:
    """Read and parse ``path`` (sync: run it in an executor)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)  # bounded also for a FIFO or a growing file
        if len(raw) > MAX_FILE_BYTES:
            raise ConfigError(f"the file is larger than {MAX_FILE_BYTES // 1024} KiB; it was not read",
                              path=str(path))
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file: {exc}", path=str(path)) from None
    return parse_capabilities_text(text, str(path))


def _line(mapping: Any, key: Any) -> int | None:
    lines = getattr(mapping, "lines", None)
    return lines.get(key) if isinstance(lines, dict) else None


def _check_document(data: dict[str, Any], source: str) -> None:
    version = data.get("schema_version")
    if version is not None and str(version).split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise ConfigError(f"schema_version {version!r} is not supported (expected {SCHEMA_VERSION})",
                          path=source, line=_line(data, "schema_version"))
    defaults = _mapping(data, "defaults", source)
    for section in _SECTIONS:
        _check_layer(_mapping(defaults, section, source), source, f"defaults.{section}")
    providers = _mapping(data, "provider_defaults", source)
    for name in providers:
        _check_layer(_mapping(providers, name, source), source, f"provider_defaults.{name}")
    models = _mapping(data, "models", source)
    for glob in models:
        if not isinstance(glob, str) or not glob.strip():
            raise ConfigError("model patterns must be non-empty strings", path=source,
                              line=_line(models, glob))
        entry = _mapping(models, glob, source)
        _check_layer(_mapping(entry, "training", source), source, f"models.{glob}.training")
        _check_layer(_mapping(entry, "settings", source), source, f"models.{glob}.settings")
        per_provider = _mapping(entry, "providers", source)
        for name in per_provider:
            _check_layer(_mapping(per_provider, name, source), source, f"models.{glob}.providers.{name}")


def _mapping(parent: dict[str, Any], key: Any, source: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key!s} must be a mapping", path=source, line=_line(parent, key))
    return value


def _check_layer(layer: dict[str, Any], source: str, where: str) -> None:
    """Values of known keys must have the field's type; unknown keys are allowed (kept as extras).

    Checked by :class:`ModelCapabilities`' own validator (built anyway) on the known keys: one
    adapter per field held 0.8 MB for the app's whole life."""
    fields = ModelCapabilities.model_fields
    # Strict for strings and bools ("yes" is not a bool here); numbers may widen (2 -> 2.0).
    numbers = {k: v for k, v in layer.items() if k in fields and isinstance(v, int | float)
               and not isinstance(v, bool)}
    others = {k: v for k, v in layer.items() if k in fields and k not in numbers}
    for values, strict in ((others, True), (numbers, False)):
        if not values:
            continue
        try:
            ModelCapabilities.model_validate(values, strict=strict)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = first["loc"][0] if first.get("loc") else next(iter(values))
            reason = first.get("msg", "invalid value")
            raise ConfigError(f"{where}.{key}: {reason} (got {layer.get(str(key))!r})", path=source,
                              line=_line(layer, key)) from None


# -- the cached table ----------------------------------------------------------------------------


@dataclass
class _Pattern:
    glob: str
    regex: re.Pattern[str]
    order: tuple[int, int, int]
    entry: dict[str, Any]


@dataclass
class CapabilityTable:
    """The merged, parsed capabilities (bundled + user file) with compiled globs."""

    data: dict[str, Any]
    errors: list[ConfigError] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    patterns: list[_Pattern] = field(default_factory=list)

    def __post_init__(self) -> None:
        models = self.data.get("models") or {}
        compiled = []
        for index, (glob, entry) in enumerate(models.items()):
            text = str(glob).strip().lower()
            wildcards = sum(text.count(c) for c in "*?[")
            literal = len(re.sub(r"\[[^\]]*\]|[*?]", "", text))
            compiled.append(_Pattern(text, re.compile(fnmatch.translate(text), re.IGNORECASE),
                                     (literal, -wildcards, index), entry or {}))
        self.patterns = sorted(compiled, key=lambda p: p.order)


_lock = threading.Lock()
_table: CapabilityTable | None = None
_USE_DEFAULT = object()
_last_user_path: Path | str | object | None = _USE_DEFAULT


_bundled_parse: tuple[str, dict[str, Any]] | None = None


def _parse_bundled(text: str, source: str) -> dict[str, Any]:
    # The bundled file does not change while the app runs: reloads (after the user edits the
    # override file) reuse its parse. Parsed data is never mutated; deep_merge copies.
    global _bundled_parse
    cached = _bundled_parse
    if cached is not None and cached[0] == text:
        return cached[1]
    data = parse_capabilities_text(text, source)
    _bundled_parse = (text, data)
    return data


def default_user_path() -> Path:
    """``<user config dir>/victor_gui/model_capabilities.yaml`` (platformdirs)."""
    return app_dirs.config_dir() / BUNDLED_NAME


def load_capabilities(user_path: Path | str | object | None = _USE_DEFAULT) -> CapabilityTable:
    """Parse the bundled file and the user file and cache the result (sync: use an executor).

    ``user_path=None`` skips the user file; by default it is :func:`default_user_path`. A file
    that cannot be used is skipped and its :class:`ConfigError` recorded in ``errors``.
    """
    global _table, _last_user_path
    errors: list[ConfigError] = []
    sources: list[str] = []
    bundled_ref = resources.files("victor_gui.resources").joinpath(BUNDLED_NAME)
    try:
        data = _parse_bundled(bundled_ref.read_text(encoding="utf-8"), str(bundled_ref))
        sources.append(str(bundled_ref))
    except (ConfigError, OSError) as exc:
        # A broken bundled file is a build defect; the ModelCapabilities defaults still work.
        err = exc if isinstance(exc, ConfigError) else ConfigError(str(exc), path=str(bundled_ref))
        log.error("model capabilities: %s", err)
        errors.append(err)
        data = {}
    path = default_user_path() if user_path is _USE_DEFAULT else user_path
    chosen = Path(path) if isinstance(path, str | Path) else None
    if chosen is not None and chosen.is_file():
        try:
            data = deep_merge(data, parse_capabilities_file(chosen))
            sources.append(str(chosen))
        except ConfigError as exc:
            log.warning("model capabilities override ignored: %s", exc)
            errors.append(exc)
    table = CapabilityTable(data=data, errors=errors, sources=sources)
    with _lock:
        _table, _last_user_path = table, user_path
    return table


def reload(user_path: Path | str | object | None = _USE_DEFAULT) -> CapabilityTable:
    """Forget the cache and load again (after the user edits the override file, and in tests).

    Without an argument the user file of the previous load is read again.
    """
    return load_capabilities(_last_user_path if user_path is _USE_DEFAULT else user_path)


def load_errors() -> list[ConfigError]:
    """Problems found by the last load (empty when all files were usable)."""
    return list(_current().errors)


def _current() -> CapabilityTable:
    table = _table
    if table is None:
        table = load_capabilities()
    return table


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` merged into ``base`` recursively; override's values win."""
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# -- resolution ------------------------------------------------------------------------------------

_BEDROCK_PREFIX = re.compile(r"^(?:[a-z]{2,4}\.)?(?:anthropic|meta|mistral|amazon|cohere|ai21|deepseek|qwen|"
                             r"openai|writer)\.")


def model_id_forms(model: str) -> list[str]:
    """The lower-cased forms of ``model`` that globs are matched against."""
    full = model.strip().lower()
    forms = [full]
    last = full.rstrip("/").rsplit("/", 1)[-1]
    for candidate in (last, _BEDROCK_PREFIX.sub("", full), _BEDROCK_PREFIX.sub("", last)):
        if candidate and candidate not in forms:
            forms.append(candidate)
    return forms


def canonical_provider(provider: str) -> str:
    """The catalog's name for ``provider`` or one of its aliases; other names lower-cased."""
    spec = catalog.find_spec(provider)
    return spec.name if spec is not None else provider.strip().lower()


def matching_patterns(model: str, table: CapabilityTable | None = None) -> list[str]:
    """The globs that match ``model``, least specific first (the order they are applied in)."""
    forms = model_id_forms(model)
    return [p.glob for p in (table or _current()).patterns if any(p.regex.match(f) for f in forms)]


def resolve_capabilities(provider: str, model: str) -> ModelCapabilities:
    """Capabilities of ``model`` served by ``provider`` (an alias is fine), per the five steps."""
    table = _current()
    data = table.data
    name = canonical_provider(provider)
    flat: dict[str, Any] = {}
    defaults = data.get("defaults") or {}
    for section in _SECTIONS:  # step 1
        flat.update(defaults.get(section) or {})
    flat.update((data.get("provider_defaults") or {}).get(name) or {})  # step 2
    forms = model_id_forms(model)
    matched = [p for p in table.patterns if any(p.regex.match(f) for f in forms)]
    for pattern in matched:  # least specific first; steps 3-5 within each glob
        flat.update(pattern.entry.get("training") or {})
        flat.update((pattern.entry.get("providers") or {}).get(name) or {})
        flat.update(pattern.entry.get("settings") or {})
    return ModelCapabilities.model_validate({str(k): v for k, v in flat.items()})


__all__ = [
    "CapabilityTable",
    "ModelCapabilities",
    "canonical_provider",
    "deep_merge",
    "default_user_path",
    "load_capabilities",
    "load_errors",
    "matching_patterns",
    "model_id_forms",
    "parse_capabilities_file",
    "parse_capabilities_text",
    "reload",
    "resolve_capabilities",
]
