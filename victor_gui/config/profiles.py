"""Profiles: Victor's ``~/.victor/profiles.yaml`` plus the app's own file, merged.

Reads the schema of the provider guide (seed 001): ``profiles: {name: {provider, model,
base_url, max_tokens, temperature, fallback: [{provider, model}], track_costs, api_key_env,
api_base_env, api_version, deployment, description, timeout}}`` and top-level ``providers:``.
Victor documents ``fallback``, ``track_costs`` and ``api_key_env`` without implementing them;
here they are parsed and carried on :class:`Profile` for the services to honour.

Merging: a profile of the app's file replaces Victor's profile of the same name as a whole
(``source`` records which file each came from). Each profile is validated on its own, so one
bad entry is reported (file and line) while the rest still load; a file that is not YAML is
reported and the other file still loads. Plaintext ``api_key`` values are never used or kept:
they are registered with the redactor and reported as a warning (``${VAR}`` becomes
``api_key_env``).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from victor_gui.config.yaml_io import (
    atomic_write_text,
    dump_yaml,
    line_of,
    parse_yaml,
    read_config_text,
    validation_error,
)
from victor_gui.core import app_dirs
from victor_gui.core.redact import register_secret
from victor_gui.errors import ConfigError
from victor_gui.providers.endpoint_access import has_url_credentials, split_url_userinfo

_ENV_REF = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")


class FallbackTarget(BaseModel):
    """One step of a profile's fallback chain."""

    model_config = ConfigDict(extra="allow")

    provider: str
    model: str | None = None


class Profile(BaseModel):
    """A named provider + model + parameters. Unknown Victor keys are kept (``extra``)."""

    model_config = ConfigDict(extra="allow")

    provider: str
    model: str | None = None
    base_url: str | list[str] | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    fallback: list[FallbackTarget] = Field(default_factory=list)
    track_costs: bool = False
    api_key_env: str | None = None
    api_base_env: str | None = None
    api_version: str | None = None
    deployment: str | None = None
    description: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    source: Literal["victor", "app"] = Field(default="app", exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _victor_aliases(cls, data: Any) -> Any:
        # Victor's docs also spell the chain `fallback_providers`, as names or mappings.
        if isinstance(data, dict) and "fallback_providers" in data and "fallback" not in data:
            data = dict(data)
            chain = data.pop("fallback_providers") or []
            data["fallback"] = [{"provider": p} if isinstance(p, str) else p for p in chain]
        return data


class ProviderSettings(BaseModel):
    """Per-provider connection settings from the top-level ``providers:`` section."""

    model_config = ConfigDict(extra="allow")

    base_url: str | list[str] | None = None
    timeout: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0)
    organization: str | None = None
    api_key_env: str | None = None
    source: Literal["victor", "app"] = Field(default="app", exclude=True)


@dataclass
class ProfileSet:
    """Merged profiles and providers, with every problem found on the way."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    providers: dict[str, ProviderSettings] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def victor_profiles_path() -> Path:
    """Victor's own profiles file."""
    return Path.home() / ".victor" / "profiles.yaml"


def app_profiles_path() -> Path:
    """The app's profiles file (next to settings.yaml)."""
    return app_dirs.config_dir() / "profiles.yaml"


def _strip_key(entry: dict[str, Any], where: str, path: Path, out: ProfileSet) -> dict[str, Any]:
    if "api_key" not in entry:
        return entry
    entry = dict(entry)
    raw = entry.pop("api_key")
    ref = _ENV_REF.match(str(raw)) if raw is not None else None
    if ref:
        entry.setdefault("api_key_env", ref.group(1))
    else:
        register_secret(str(raw))
        out.warnings.append(
            f"{path}: {where}.api_key is ignored: plaintext keys are not used. "
            "Save the key in Settings → API keys (the system keyring) and remove it from the file."
        )
    return entry


def _note_url_credentials(entry: dict[str, Any], where: str, path: Path, out: ProfileSet) -> None:
    # user:pass in a base_url: still sent (the file is the user's), but masked wherever it could
    # be echoed, and the user is told to keep it out of the file.
    urls = entry.get("base_url")
    for url in urls if isinstance(urls, list) else [urls]:
        if isinstance(url, str) and has_url_credentials(url):
            split_url_userinfo(url)  # registers user:pass and the password with the redactor
            out.warnings.append(
                f"{path}: {where}.base_url holds a user name and password. Add the server as an "
                "endpoint (Settings → Endpoints) so they are kept in the system keyring instead.")


def _read_file(path: Path, source: Literal["victor", "app"], out: ProfileSet) -> None:
    if not path.exists():
        return
    try:
        data, node = parse_yaml(read_config_text(path), path)
    except ConfigError as exc:
        out.errors.append(exc)
        return
    except (OSError, UnicodeDecodeError) as exc:
        out.errors.append(ConfigError(f"cannot read: {exc}", path=str(path)))
        return
    if data is None:
        return
    if not isinstance(data, dict):
        out.errors.append(ConfigError("expected a mapping with 'profiles:'", path=str(path), line=1))
        return
    sections: tuple[tuple[str, type[BaseModel], dict[str, Any]], ...] = (
        ("profiles", Profile, out.profiles),
        ("providers", ProviderSettings, out.providers),
    )
    for section, model, target in sections:
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            out.errors.append(
                ConfigError(f"'{section}' must be a mapping", path=str(path), line=line_of(node, [section]))
            )
            continue
        for name, entry in entries.items():
            if not isinstance(entry, dict):
                line = line_of(node, [section, name])
                out.errors.append(
                    ConfigError(f"{section}.{name}: expected a mapping", path=str(path), line=line)
                )
                continue
            entry = _strip_key(entry, f"{section}.{name}", path, out)
            _note_url_credentials(entry, f"{section}.{name}", path, out)
            try:
                target[str(name)] = model.model_validate({**entry, "source": source})
            except ValidationError as exc:
                out.errors.append(validation_error(exc, path, node, prefix=(section, str(name))))


def _load_sync(victor_path: Path | None, app_path: Path | None) -> ProfileSet:
    out = ProfileSet()
    _read_file(victor_path or victor_profiles_path(), "victor", out)
    _read_file(app_path or app_profiles_path(), "app", out)  # later wins: the app's own file
    return out


async def load_profiles(victor_path: Path | None = None, app_path: Path | None = None) -> ProfileSet:
    """Victor's profiles merged under the app's (off the event loop). Never raises for bad files."""
    return await asyncio.to_thread(_load_sync, victor_path, app_path)


async def save_app_profiles(
    profiles: dict[str, Profile],
    providers: dict[str, ProviderSettings] | None = None,
    path: Path | None = None,
) -> None:
    """Write the app's profiles file atomically (Victor's file is never written)."""
    data: dict[str, Any] = {
        "profiles": {
            n: {"provider": p.provider, **p.model_dump(exclude_none=True, exclude_defaults=True)}
            for n, p in profiles.items()
        },
    }
    if providers:
        data["providers"] = {n: p.model_dump(exclude_none=True) for n, p in providers.items()}
    text = dump_yaml(data)
    yaml.safe_load(text)  # what we write must read back
    await asyncio.to_thread(atomic_write_text, path or app_profiles_path(), text)
