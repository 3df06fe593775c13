"""App settings: one pydantic schema stored as YAML, versioned, migrated, written atomically.

File: ``platformdirs.user_config_dir("victor_gui")/settings.yaml``. A bad file never stops the
app, and never loses what it holds: :func:`load_settings` drops only the parts it cannot use (an
unknown or invalid key, or one bad endpoint entry), each reported as a :class:`ConfigError`
naming the file and line, and keeps the rest. A file it cannot read at all (not YAML, not a
mapping, written by a newer version, too large) gives the defaults plus one error. Either way
the load is *lossy*, and :func:`backup_settings` keeps the original bytes beside the file
before anything is written over it (see :class:`~victor_gui.services.settings_service.SettingsService`).
A file from an older version is migrated by the named steps in :data:`MIGRATIONS`; the original
is kept beside it as ``settings.yaml.v<N>.bak``.
Settings never hold secrets (API keys live in the OS keyring; see :mod:`.secrets`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from victor_gui.config.yaml_io import atomic_write_text, dump_yaml, line_of, parse_yaml, read_config_text
from victor_gui.core import app_dirs
from victor_gui.core.files import copy_file
from victor_gui.errors import ConfigError, StorageError
from victor_gui.providers.endpoint_access import has_url_credentials
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


class ToolApprovalRule(BaseModel):
    """What the person allowed for one MCP server: every tool (``all``) or the named ``tools``."""

    model_config = ConfigDict(extra="forbid")

    all: bool = False
    tools: list[str] = Field(default_factory=list)


class EmbeddingChoice(BaseModel):
    """The embedding model attached documents are retrieved with: a provider as the chat names
    it (``ollama``, ``llamacpp``, an endpoint's name) and a model on it."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)


class AttachmentSettings(BaseModel):
    """How attached documents reach the model (see services.document_context)."""

    model_config = ConfigDict(extra="forbid")

    # None: the first local server that has an embedding model (services.embedding_choice).
    embedding: EmbeddingChoice | None = None
    retrieve_k: int = Field(default=4, ge=1, le=50)  # passages put in a request
    chunk_chars: int = Field(default=800, ge=100, le=20000)  # ~200 tokens: one idea per chunk


class ModelFolderSettings(BaseModel):
    """Where GGUF models live (issue 17): the user's folders, which of them downloads go to, how
    many downloads run at once, and whether the libraries of other apps (LM Studio, llama.cpp's
    cache, Hugging Face's cache) are scanned and reused."""

    model_config = ConfigDict(extra="forbid")

    folders: list[str] = Field(default_factory=list)
    # None: the first of ``folders``, else LM Studio's folder when it exists, else the data folder's.
    download_folder: str | None = None
    max_downloads: int = Field(default=2, ge=1, le=8)
    reuse_libraries: bool = True


class FirstRunSettings(BaseModel):
    """The first-run offer (issue 17): "Don't show again", and the recommended repositories
    (empty: the built-in list of services.first_run; a mirror or a test names its own)."""

    model_config = ConfigDict(extra="forbid")

    dismissed: bool = False
    recommended: list[str] = Field(default_factory=list)


# The project's GitHub Releases: each release carries a signed ``latest.json`` manifest asset,
# and this address always answers the newest one (services/updates.py).
DEFAULT_UPDATE_FEED = "https://github.com/victor-gui/victor-gui/releases/latest/download/latest.json"


class UpdateSettings(BaseModel):
    """Whether the app looks for a new version (at most once a day, never at first paint) and
    where (a signed release feed; see services/updates.py)."""

    model_config = ConfigDict(extra="forbid")

    check: bool = True
    feed_url: str = DEFAULT_UPDATE_FEED

    @field_validator("feed_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


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
    # Tools (MCP): the remembered approvals per server, the rounds of calls one reply may make,
    # and how long one call may run. New keys with defaults: no migration needed.
    tool_approvals: dict[str, ToolApprovalRule] = Field(default_factory=dict)
    tool_max_rounds: int = Field(default=10, ge=1, le=100)
    tool_call_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    # Attachments: the embedding model for retrieval and the chunking (new key, no migration).
    attachments: AttachmentSettings = Field(default_factory=AttachmentSettings)
    # Model folders and downloads (issue 17; new key with defaults, no migration).
    model_folders: ModelFolderSettings = Field(default_factory=ModelFolderSettings)
    # The llama-server binary the app runs models with (None: looked for on PATH, in the build
    # cache, LM Studio's and Jan's folders). New key, no migration.
    llama_server_path: str | None = None
    # The first-run offer (issue 17). New key with defaults, no migration.
    first_run: FirstRunSettings = Field(default_factory=FirstRunSettings)
    # Updates: on/off and the release feed (new key with defaults, no migration).
    updates: UpdateSettings = Field(default_factory=UpdateSettings)

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
    return app_dirs.config_dir() / "settings.yaml"


@dataclass
class SettingsLoad:
    """What :func:`load_settings` found: the settings to use and any problem to show.

    ``error``: the file could not be used at all (defaults are in use). ``dropped``: parts of
    it that were left out, one :class:`ConfigError` each with its line (the rest is in use).
    """

    settings: Settings
    error: ConfigError | None = None
    migrated_from: int | None = None
    dropped: list[ConfigError] = field(default_factory=list)

    @property
    def lossy(self) -> bool:
        """Whether saving these settings would lose something the file holds."""
        return self.error is not None or bool(self.dropped)


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


# Each round of validation drops at least one part; a document has few top-level keys and
# endpoints, but a bound keeps a pathological one from looping long.
_MAX_DROP_ROUNDS = 200


def _drop_at(data: dict[str, Any], loc: tuple[int | str, ...]) -> tuple[int | str, ...] | None:
    """Remove the part of ``data`` that ``loc`` (a pydantic error location) points into: a whole
    endpoint entry, else the innermost mapping key that exists, else the top-level key.
    Returns the location removed, None when nothing was left to remove."""
    if len(loc) >= 2 and loc[0] == "endpoints" and isinstance(loc[1], int):
        entries = data.get("endpoints")
        if isinstance(entries, list) and 0 <= loc[1] < len(entries):
            del entries[loc[1]]
            return loc[:2]
    container: Any = data
    for depth, part in enumerate(loc):
        if not isinstance(container, dict) or part not in container:
            break
        if depth == len(loc) - 1 or not isinstance(container[part], dict):
            del container[part]
            return loc[: depth + 1]
        container = container[part]
    if loc and loc[0] in data:
        del data[str(loc[0])]
        return loc[:1]
    return None


def _validate_keeping_the_rest(
    data: dict[str, Any], path: Path, node: Any
) -> tuple[Settings, list[ConfigError]]:
    """Validate ``data``, leaving out each part that is invalid (reported with its line)."""
    dropped: list[ConfigError] = []
    for _ in range(_MAX_DROP_ROUNDS):
        try:
            return Settings.model_validate(data), dropped
        except ValidationError as exc:
            done: list[tuple[int | str, ...]] = []
            # Later endpoints first, so an index still points at the entry it named.
            for error in sorted(exc.errors(), key=lambda e: [str(p).zfill(9) for p in e["loc"]],
                                reverse=True):
                loc = tuple(error["loc"])
                if any(loc[: len(prefix)] == prefix for prefix in done):
                    continue  # inside a part already left out (another error of one endpoint)
                removed = _drop_at(data, loc)
                if removed is None:
                    continue
                done.append(removed)
                what = "endpoint entry" if removed[0] == "endpoints" and len(removed) == 2 else "setting"
                where = ".".join(str(p) for p in error["loc"]) or "(top level)"
                dropped.append(ConfigError(
                    f"{where}: {error['msg']} (this {what} was left out; the rest of the file is in use)",
                    path=str(path), line=line_of(node, loc)))
            if not done:
                break
    return Settings(), [*dropped, ConfigError("the settings could not be used", path=str(path))]


def _load_sync(path: Path | None = None) -> SettingsLoad:
    # Blocking; runs in a worker thread via load_settings().
    path = path or settings_path()
    if not path.exists():
        return SettingsLoad(Settings())
    try:
        text = read_config_text(path)
    except ConfigError as exc:
        return SettingsLoad(Settings(), exc)
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
    # Lines come from the document as written; keys a migration renamed point at its start.
    settings, dropped = _validate_keeping_the_rest(migrated, path, node)
    if start == CONFIG_VERSION:
        return SettingsLoad(settings, dropped=dropped)
    copy_file(path, path.with_name(f"{path.name}.v{start}.bak"))
    # A lossy load is not written back (the user's first change will be, after a backup), nor
    # one whose URLs hold credentials (SettingsService moves them to the keyring first).
    url_credentials = bool(settings.proxy and has_url_credentials(settings.proxy)) or any(
        has_url_credentials(e.url) for e in settings.endpoints)
    if not dropped and not url_credentials:
        try:
            _save_sync(settings, path)
        except (OSError, ConfigError):  # still usable; migrated again at the next start
            pass
    return SettingsLoad(settings, migrated_from=start, dropped=dropped)


def backup_settings(path: Path | None = None) -> Path | None:
    """Copy the settings file, byte for byte, to ``settings.yaml.bak-<UTC time>`` beside it
    (before settings from a lossy load are written over it); None when there is no file.
    Blocking: call it from a worker thread."""
    path = path or settings_path()
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.bak-{stamp}-{n}")
    copy_file(path, backup)
    return backup


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
