"""The MCP servers the app knows: ``mcp.json`` in the app's config folder, and imports of other
clients' files (Claude Desktop, Cursor, LM Studio: the same ``{"mcpServers": {...}}`` shape).

Each entry is either a stdio server ``{command, args, env, cwd}`` or a Streamable HTTP server
``{url, headers}``. Secret values never live in ``mcp.json``: an HTTP header or an environment
variable whose name looks secret (Authorization, *token*, *key*, *secret*, *password*) is moved to
the OS keyring on import (entry ``mcp:<server>:<header>``, or ``mcp:<server>:env:<VAR>``) and the
file keeps only its name in ``secret_headers`` / ``secret_env``.

One bad entry never hides the good ones: :func:`load_mcp_config` returns the usable servers
and, by name, a :class:`ConfigError` for each entry it could not use. Everything here is
blocking file or keyring I/O: call it from a worker thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from victor_gui.config.yaml_io import atomic_write_text, read_config_text
from victor_gui.core import app_dirs
from victor_gui.errors import ConfigError

FILE_NAME = "mcp.json"
_SECRET_NAME = re.compile(r"authorization|token|key|secret|password|cookie", re.IGNORECASE)


def default_mcp_path() -> Path:
    """``user_config_dir("victor_gui")/mcp.json``."""
    return app_dirs.config_dir() / FILE_NAME


@dataclass(frozen=True)
class StdioServerConfig:
    """A server the app starts as a process and talks to over its stdin/stdout."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    secret_env: tuple[str, ...] = ()  # values in the keyring, ``mcp:<name>:env:<VAR>``

    @property
    def transport(self) -> str:
        """``"stdio"``."""
        return "stdio"


@dataclass(frozen=True)
class HttpServerConfig:
    """A server reached over Streamable HTTP."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    secret_headers: tuple[str, ...] = ()  # values in the keyring, ``mcp:<name>:<header>``

    @property
    def transport(self) -> str:
        """``"http"``."""
        return "http"


McpServerConfig = StdioServerConfig | HttpServerConfig


@dataclass(frozen=True)
class McpConfig:
    """What ``mcp.json`` gave: the usable servers in file order, and the entries it could not use."""

    servers: dict[str, McpServerConfig] = field(default_factory=dict)
    problems: dict[str, ConfigError] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportResult:
    """What an import did, by server name."""

    added: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # already in the app's file, left as they were
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why (a bad entry)
    secrets_moved: tuple[str, ...] = ()  # keyring entry names written


class SecretWriter(Protocol):
    """Where secret values go (``config.secrets.KeyringStore`` implements it)."""

    def set_key(self, provider: str, key: str) -> None: ...


class SecretReader(Protocol):
    """Where secret values come from (``config.secrets.KeyringStore`` implements it)."""

    def get_key(self, provider: str) -> str | None: ...


def header_secret_name(server: str, header: str) -> str:
    """The keyring entry holding ``header``'s value for ``server``."""
    return f"mcp:{server}:{header}"


def env_secret_name(server: str, var: str) -> str:
    """The keyring entry holding environment variable ``var`` for ``server``."""
    return f"mcp:{server}:env:{var}"


def looks_secret(name: str) -> bool:
    """Whether a header or variable name suggests its value is a credential."""
    return bool(_SECRET_NAME.search(name))


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"'{what}' must be an object of names to text values")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ConfigError(f"'{what}.{key}' must be text")
        out[key] = str(item)
    return out


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"'{what}' must be a list of text values")
    return tuple(value)


def parse_server(name: str, entry: Any) -> McpServerConfig:
    """One ``mcpServers`` entry as a config, or :class:`ConfigError` saying what is wrong."""
    if not isinstance(entry, dict):
        raise ConfigError(f"server '{name}' must be an object with 'command' or 'url'")
    try:
        if "command" in entry and "url" in entry:
            raise ConfigError("it has both 'command' and 'url'; keep one")
        if "command" in entry:
            command = entry["command"]
            if not isinstance(command, str) or not command.strip():
                raise ConfigError("'command' must be a non-empty text")
            cwd = entry.get("cwd")
            if cwd is not None and not isinstance(cwd, str):
                raise ConfigError("'cwd' must be a folder path")
            return StdioServerConfig(name=name, command=command, args=_str_list(entry.get("args"), "args"),
                                     env=_str_map(entry.get("env"), "env"), cwd=cwd or None,
                                     secret_env=_str_list(entry.get("secret_env"), "secret_env"))
        if "url" in entry:
            url = entry["url"]
            if not isinstance(url, str) or not re.match(r"https?://", url):
                raise ConfigError("'url' must be an http:// or https:// address")
            return HttpServerConfig(name=name, url=url, headers=_str_map(entry.get("headers"), "headers"),
                                    secret_headers=_str_list(entry.get("secret_headers"), "secret_headers"))
        raise ConfigError("it has neither 'command' (a program to start) nor 'url' (an HTTP server)")
    except ConfigError as exc:
        raise ConfigError(f"server '{name}': {exc}") from None


def _read_servers(path: Path) -> dict[str, Any]:
    """The raw ``mcpServers`` object of ``path`` ({} when the file does not exist)."""
    try:
        text = read_config_text(path)
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the file could not be read ({type(exc).__name__})", path=str(path)) from None
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the file is not valid JSON ({exc.msg})", path=str(path),
                          line=exc.lineno) from None
    if not isinstance(data, dict):
        raise ConfigError('the file must hold an object like {"mcpServers": {...}}', path=str(path))
    servers = data.get("mcpServers", {})
    if not isinstance(servers, dict):
        raise ConfigError("'mcpServers' must be an object of server names to entries", path=str(path))
    return servers


def load_mcp_config(path: Path | None = None) -> McpConfig:
    """The servers in ``path`` (default :func:`default_mcp_path`).

    A missing file is an empty config. A file that is not JSON (or too large) raises
    :class:`ConfigError`; a bad entry is reported in ``problems`` and the others are kept.
    """
    path = path or default_mcp_path()
    raw = _read_servers(path)
    servers: dict[str, McpServerConfig] = {}
    problems: dict[str, ConfigError] = {}
    for name, entry in raw.items():
        try:
            servers[name] = parse_server(name, entry)
        except ConfigError as exc:
            problems[name] = ConfigError(str(exc), path=str(path))
    return McpConfig(servers=servers, problems=problems)


def _move_secrets(name: str, entry: dict[str, Any],
                  secrets: SecretWriter | None) -> tuple[dict[str, Any], list[str]]:
    """``entry`` with secret-looking header and env values moved into the keyring."""
    entry = dict(entry)
    moved: list[str] = []
    for key, list_key, naming in (("headers", "secret_headers", header_secret_name),
                                  ("env", "secret_env", env_secret_name)):
        values = entry.get(key)
        if not isinstance(values, dict):
            continue
        kept: dict[str, Any] = {}
        secret_names = list(entry.get(list_key) or [])
        for var, value in values.items():
            if looks_secret(var) and isinstance(value, str) and value:
                if secrets is None:
                    raise ConfigError(f"server '{name}': '{key}.{var}' holds a secret and no keyring "
                                      "is available to keep it; it was not imported")
                secrets.set_key(naming(name, var), value)
                moved.append(naming(name, var))
                if var not in secret_names:
                    secret_names.append(var)
            else:
                kept[var] = value
        entry[key] = kept
        if secret_names:
            entry[list_key] = secret_names
    return entry, moved


def import_mcp_json(source: Path, target: Path | None = None, *, secrets: SecretWriter | None,
                    replace: bool = False) -> ImportResult:
    """Merge the servers of another client's ``mcp.json``-shaped file into the app's file.

    Extra top-level keys of ``source`` (Claude Desktop keeps its own settings there) are
    ignored. Names already in ``target`` are kept as they are unless ``replace``. Secret-looking
    header and environment values go to ``secrets`` (the keyring), never into the file. The
    target is written atomically; an unreadable source raises :class:`ConfigError`.
    """
    target = target or default_mcp_path()
    incoming = _read_servers(source)
    if not incoming and not source.exists():
        raise ConfigError("the file does not exist", path=str(source))
    try:
        text = read_config_text(target)
        existing_doc: dict[str, Any] = json.loads(text) if text.strip() else {}
    except FileNotFoundError:
        existing_doc = {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the app's file is not valid JSON ({exc.msg}); fix it before importing",
                          path=str(target), line=exc.lineno) from None
    if not isinstance(existing_doc, dict) or not isinstance(existing_doc.get("mcpServers", {}), dict):
        raise ConfigError("the app's file does not hold an 'mcpServers' object", path=str(target))
    servers: dict[str, Any] = dict(existing_doc.get("mcpServers", {}))
    added: list[str] = []
    replaced: list[str] = []
    kept: list[str] = []
    skipped: dict[str, str] = {}
    moved: list[str] = []
    for name, entry in incoming.items():
        try:
            parse_server(name, entry)
        except ConfigError as exc:
            skipped[name] = str(exc)
            continue
        if name in servers and not replace:
            kept.append(name)
            continue
        try:
            clean, moved_here = _move_secrets(name, entry, secrets)
        except ConfigError as exc:
            skipped[name] = str(exc)
            continue
        moved.extend(moved_here)
        (replaced if name in servers else added).append(name)
        servers[name] = clean
    if added or replaced:
        doc = dict(existing_doc)
        doc["mcpServers"] = servers
        atomic_write_text(target, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return ImportResult(added=tuple(added), replaced=tuple(replaced), kept=tuple(kept), skipped=skipped,
                        secrets_moved=tuple(moved))


def resolve_secrets(config: McpServerConfig,
                    secrets: SecretReader | None) -> tuple[dict[str, str], list[str]]:
    """The headers (HTTP) or environment (stdio) of ``config`` with its keyring values filled in,
    and the names whose value was missing from the keyring. Blocking (keyring): worker thread."""
    naming: Callable[[str, str], str]
    if isinstance(config, HttpServerConfig):
        values, names, naming = dict(config.headers), config.secret_headers, header_secret_name
    else:
        values, names, naming = dict(config.env), config.secret_env, env_secret_name
    missing: list[str] = []
    for var in names:
        value = secrets.get_key(naming(config.name, var)) if secrets is not None else None
        if value is None:
            missing.append(var)
        else:
            values[var] = value
    return values, missing
