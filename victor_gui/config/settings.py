"""App settings: one pydantic schema stored as YAML, versioned, migrated, written atomically.

File: ``platformdirs.user_config_dir("victor_gui")/settings.yaml``. A file that is not valid
YAML or holds invalid values never stops the app: :func:`load_settings` returns defaults plus a
:class:`ConfigError` naming the file and line, and leaves the file exactly as it was (the user's
edits are theirs to fix). A file from an older version is migrated by the named steps in
:data:`MIGRATIONS`; the original is kept beside it as ``settings.yaml.v<N>.bak``.
Settings never hold secrets (API keys live in the OS keyring; see :mod:`.secrets`).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from victor_gui.config.yaml_io import atomic_write_text, dump_yaml, parse_yaml, validation_error
from victor_gui.errors import ConfigError, StorageError
from victor_gui.storage.location import check_data_dir

APP_NAME = "victor_gui"
CONFIG_VERSION = 3

# What speaks on an endpoint: the four local servers by name, or any gateway (LiteLLM, a vLLM
# cluster behind nginx, a team proxy) by the protocol it speaks.
EndpointKind = Literal["ollama", "lmstudio", "vllm", "llamacpp", "openai-compatible", "anthropic-compatible"]
ENDPOINT_KINDS: tuple[str, ...] = ("ollama", "lmstudio", "vllm", "llamacpp", "openai-compatible",
                                   "anthropic-compatible")


class Endpoint(BaseModel):
    """A server the user added by hand: on this machine, on the LAN, or a gateway.

    Secrets never live here: the endpoint's API key / bearer token is kept in the keyring under
    the endpoint's name, and so is the value of every header named in ``secret_headers``
    (see :mod:`victor_gui.config.secrets`). ``headers`` holds only headers that are not secret.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: EndpointKind
    url: str
    enabled: bool = True
    # Endpoints sharing a group answer as one provider, failing over in list order by health
    # (None: the endpoint is its own group, named by ``name``).
    group: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: list[str] = Field(default_factory=list)
    tls_verify: bool = True
    ca_bundle: str | None = None
    connect_timeout_s: float | None = Field(default=None, gt=0, le=600)
    read_timeout_s: float | None = Field(default=None, gt=0, le=3600)
    # Once a reply has begun, the longest silence between two bytes; and the deadline of a
    # whole request, headers to last byte (None: 60 s / 30 min locally, 120 s / 15 min cloud).
    idle_timeout_s: float | None = Field(default=None, gt=0, le=3600)
    deadline_s: float | None = Field(default=None, gt=0, le=86400)
    # The user agreed to send this endpoint's key over plain http to a non-loopback,
    # non-private host (asked once, remembered here).
    allow_insecure_key: bool = False

    @property
    def group_name(self) -> str:
        """The provider name this endpoint answers under in the chat."""
        return self.group or self.name

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class ChatDefaults(BaseModel):
    """Parameters a new chat starts with (a chat or a profile may override them)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    context_length: int | None = Field(default=None, gt=0)


class Settings(BaseModel):
    """Everything the user can set (unknown keys are errors: a typo should not pass silently)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    config_version: int = CONFIG_VERSION
    theme: Literal["light", "dark", "system"] = "system"
    data_dir: str | None = None
    endpoints: list[Endpoint] = Field(default_factory=list)
    default_provider: str | None = None
    default_model: str | None = None
    default_profile: str | None = None
    proxy: str | None = None
    health_probe_interval_s: float = Field(default=10.0, ge=1.0, le=3600.0)
    chat_defaults: ChatDefaults = Field(default_factory=ChatDefaults)
    # Server roots (``http://host:port``) of default-port or discovered endpoints the user hid.
    hidden_endpoints: list[str] = Field(default_factory=list)

    @field_validator("data_dir")
    @classmethod
    def _outside_install(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_data_dir(value)
            except StorageError as exc:
                raise ValueError(exc.message) from None
        return value


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 kept ``dark_mode: bool``, one ``ollama_url`` and flat ``temperature``/``max_tokens``."""
    out = {k: v for k, v in data.items() if k not in ("dark_mode", "ollama_url", "temperature", "max_tokens")}
    if "dark_mode" in data:
        out["theme"] = "dark" if data["dark_mode"] else "light"
    if data.get("ollama_url"):
        out["endpoints"] = [{"name": "Ollama", "kind": "ollama", "url": data["ollama_url"]}]
    chat = {k: data[k] for k in ("temperature", "max_tokens") if k in data}
    if chat:
        out["chat_defaults"] = chat
    return out


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """v2 spelt the gateway kind ``openai_compatible``; v3 spells kinds with hyphens."""
    out = dict(data)
    endpoints = data.get("endpoints")
    if isinstance(endpoints, list):
        out["endpoints"] = [
            {**e, "kind": str(e["kind"]).replace("_", "-")}
            if isinstance(e, dict) and isinstance(e.get("kind"), str) else e
            for e in endpoints
        ]
    return out


# MIGRATIONS[i] turns a version i+1 document into version i+2. Append only.
MIGRATIONS: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = [
    ("theme and endpoints replace dark_mode and ollama_url", _v1_to_v2),
    ("endpoint kinds spelt with hyphens (openai_compatible → openai-compatible)", _v2_to_v3),
]
assert len(MIGRATIONS) == CONFIG_VERSION - 1


def settings_path() -> Path:
    """Where settings.yaml lives for this user."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "settings.yaml"


@dataclass
class SettingsLoad:
    """What :func:`load_settings` found: the settings to use and any problem to show."""

    settings: Settings
    error: ConfigError | None = None
    migrated_from: int | None = None


def migrate_settings(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """(data at :data:`CONFIG_VERSION`, version it started at). A file without a version is v1."""
    version = data.get("config_version", 1)
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"config_version must be a whole number from 1 to {CONFIG_VERSION}")
    if version > CONFIG_VERSION:
        raise ValueError(
            f"config_version {version} was written by a newer Victor GUI "
            f"(this one reads up to {CONFIG_VERSION})"
        )
    start = version
    while version < CONFIG_VERSION:
        data = MIGRATIONS[version - 1][1](data)
        version += 1
        data["config_version"] = version
    return data, start


def _load_sync(path: Path | None = None) -> SettingsLoad:
    # Blocking; runs in a worker thread via load_settings().
    path = path or settings_path()
    if not path.exists():
        return SettingsLoad(Settings())
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return SettingsLoad(Settings(), ConfigError(f"cannot read: {exc}", path=str(path)))
    try:
        data, node = parse_yaml(text, path)
    except ConfigError as exc:
        return SettingsLoad(Settings(), exc)
    if data is None:
        return SettingsLoad(Settings())
    if not isinstance(data, dict):
        return SettingsLoad(Settings(), ConfigError("expected a mapping of settings", path=str(path), line=1))
    try:
        migrated, start = migrate_settings(data)
    except (ValueError, TypeError, KeyError) as exc:
        return SettingsLoad(Settings(), ConfigError(str(exc), path=str(path), line=1))
    try:
        settings = Settings.model_validate(migrated)
    except ValidationError as exc:
        # Lines come from the document as written; keys a migration renamed point at its start.
        return SettingsLoad(Settings(), validation_error(exc, path, node))
    if start == CONFIG_VERSION:
        return SettingsLoad(settings)
    shutil.copy2(path, path.with_name(f"{path.name}.v{start}.bak"))
    _save_sync(settings, path)
    return SettingsLoad(settings, migrated_from=start)


def _save_sync(settings: Settings, path: Path | None = None) -> None:
    # Blocking; runs in a worker thread via save_settings().
    data = settings.model_dump(mode="json")
    atomic_write_text(path or settings_path(), dump_yaml(data))


async def load_settings(path: Path | None = None) -> SettingsLoad:
    """Read settings off the event loop; never raises for a bad file (see :class:`SettingsLoad`)."""
    return await asyncio.to_thread(_load_sync, path)


async def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write settings off the event loop (atomic; refuses anything that looks like a secret)."""
    await asyncio.to_thread(_save_sync, settings, path)
