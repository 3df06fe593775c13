"""Assistants: named presets of a system prompt, parameters, a default provider and model, and
the tools (MCP servers) a chat starts with. This module owns them.

They live in ``assistants.yaml`` in the config folder (beside ``settings.yaml``), read with the
bounds of :mod:`victor_gui.config.yaml_io` and written atomically (never with a secret in it).
One assistant can be exported to a YAML file of its own and imported back; an import replaces an
assistant of the same name. A file with a broken entry keeps the good ones and names the bad one
(with its line) in :attr:`AssistantsLoad.problems`.

Parameters use the neutral names of :mod:`victor_gui.providers.params`; unknown keys and values
of the wrong kind are dropped on reading, so a hand-edited file never breaks a request.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from victor_gui.config.settings import settings_path
from victor_gui.config.yaml_io import (
    atomic_write_text,
    dump_yaml,
    parse_yaml,
    read_config_text,
    validation_error,
)
from victor_gui.errors import ConfigError
from victor_gui.providers.params import PARAM_KEYS, clean_params
from victor_gui.services.tool_loop import PARAMS_KEY as TOOLS_KEY
from victor_gui.services.tool_loop import ToolChoice

FILE_NAME = "assistants.yaml"
FILE_VERSION = 1
MAX_NAME = 80
# The conversation params key that remembers which assistant a chat started from.
PARAMS_KEY = "assistant"


class Assistant(BaseModel):
    """One preset. ``tools``: MCP server names turned on for the chat (None: left as they are)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    name: str = Field(min_length=1, max_length=MAX_NAME)
    description: str = ""
    system_prompt: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    provider: str | None = None
    model: str | None = None
    tools: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        value = value.strip()
        if not value or "\n" in value:
            raise ValueError("a name is one non-empty line")
        return value

    @field_validator("params", mode="before")
    @classmethod
    def _known_params(cls, value: Any) -> dict[str, Any]:
        return clean_params(value) if isinstance(value, dict) else {}

    def summary(self) -> str:
        """One line for a list: provider · model, and how many parameters are set."""
        from victor_gui.providers.catalog import display_name

        provider = display_name(self.provider) if self.provider else None
        where = " · ".join(p for p in (provider, self.model) if p) or "the chat's provider and model"
        count = len(self.params)
        return f"{where}; {count} parameter{'s' if count != 1 else ''}" if count else where

    def to_yaml_data(self) -> dict[str, Any]:
        """The entry as written in a file (empty fields left out)."""
        data = self.model_dump(exclude_none=True)
        return {k: v for k, v in data.items() if v not in ("", {}) or k == "name"}


@dataclass
class AssistantsLoad:
    """What was read: the assistants, and a problem per entry (or file) that could not be used."""

    assistants: list[Assistant] = field(default_factory=list)
    problems: list[ConfigError] = field(default_factory=list)


def assistants_path() -> Path:
    """Where ``assistants.yaml`` lives (the config folder of ``settings.yaml``)."""
    return settings_path().with_name(FILE_NAME)


def parse_assistants(text: str, path: Path) -> AssistantsLoad:
    """Assistants from a file's text: a list under ``assistants:`` or one assistant alone (an
    export). Raises :class:`ConfigError` when the text is not YAML or not that shape."""
    data, node = parse_yaml(text, path)
    if data is None:
        return AssistantsLoad()
    if isinstance(data, dict) and "assistants" in data:
        entries, prefix = data["assistants"], ["assistants"]
    elif isinstance(data, dict) and "name" in data:
        entries, prefix = [data], []
    else:
        raise ConfigError("expected 'assistants:' with a list, or one assistant with a 'name:'",
                          path=str(path))
    if not isinstance(entries, list):
        raise ConfigError("'assistants:' must be a list", path=str(path))
    out = AssistantsLoad()
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        loc: list[str | int] = [*prefix, index] if prefix else []
        try:
            assistant = Assistant.model_validate(entry)
        except ValidationError as exc:
            out.problems.append(validation_error(exc, path, node, loc))
            continue
        if assistant.name.lower() in seen:
            out.problems.append(ConfigError(f"a second assistant named {assistant.name!r} was left out",
                                            path=str(path)))
            continue
        seen.add(assistant.name.lower())
        out.assistants.append(assistant)
    return out


def dump_assistants(assistants: list[Assistant]) -> str:
    """The text of ``assistants.yaml``."""
    return dump_yaml({"version": FILE_VERSION, "assistants": [a.to_yaml_data() for a in assistants]})


def export_file_name(name: str) -> str:
    """A file name for one exported assistant: ``Code reviewer`` → ``code-reviewer.assistant.yaml``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "assistant"
    return f"{slug}.assistant.yaml"


class Assistants:
    """The assistants file: read, changed and written off the event loop, one writer at a time."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or assistants_path()
        self._lock = asyncio.Lock()
        self.problems: list[ConfigError] = []
        self.unreadable: ConfigError | None = None  # why the whole file could not be used

    def _read_sync(self, path: Path, *, missing_ok: bool = True) -> AssistantsLoad:
        try:
            text = read_config_text(path)
        except FileNotFoundError:
            if not missing_ok:
                raise ConfigError("no such file", path=str(path)) from None
            return AssistantsLoad()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"could not be read: {exc}", path=str(path)) from None
        return parse_assistants(text, path)

    async def load(self) -> list[Assistant]:
        """Every usable assistant, in file order (problems go to :attr:`problems`); [] when the
        file is missing; a file that cannot be used at all is one problem and no assistants."""
        try:
            found = await asyncio.to_thread(self._read_sync, self.path)
        except ConfigError as exc:
            self.problems, self.unreadable = [exc], exc
            return []
        self.problems, self.unreadable = found.problems, None
        return found.assistants

    async def get(self, name: str) -> Assistant | None:
        """The assistant called ``name`` (any case), or None."""
        wanted = name.strip().lower()
        return next((a for a in await self.load() if a.name.lower() == wanted), None)

    async def _write(self, assistants: list[Assistant]) -> None:
        await asyncio.to_thread(atomic_write_text, self.path, dump_assistants(assistants))

    async def save(self, assistant: Assistant) -> None:
        """Add ``assistant``, or replace the one with its name (its place in the list kept)."""
        async with self._lock:
            current = await self.load()
            self._refuse_overwriting_a_broken_file()
            names = [a.name.lower() for a in current]
            if assistant.name.lower() in names:
                current[names.index(assistant.name.lower())] = assistant
            else:
                current.append(assistant)
            await self._write(current)

    async def remove(self, name: str) -> bool:
        """Remove the assistant ``name``; False when there is none."""
        async with self._lock:
            current = await self.load()
            self._refuse_overwriting_a_broken_file()
            kept = [a for a in current if a.name.lower() != name.strip().lower()]
            if len(kept) == len(current):
                return False
            await self._write(kept)
            return True

    def _refuse_overwriting_a_broken_file(self) -> None:
        # A file that could not be read at all would be replaced by the few entries known here.
        if self.unreadable is not None:
            raise ConfigError(f"{self.unreadable} — fix or move the file before changing assistants")

    async def export(self, name: str, target: Path) -> Path:
        """Write the assistant ``name`` alone to ``target`` (a file, or a folder for its usual name)."""
        assistant = await self.get(name)
        if assistant is None:
            raise ConfigError(f"there is no assistant named {name!r}", path=str(self.path))

        def write() -> Path:
            path = target / export_file_name(assistant.name) if target.is_dir() else target
            atomic_write_text(path, dump_yaml(assistant.to_yaml_data()))
            return path

        return await asyncio.to_thread(write)

    async def import_file(self, source: Path) -> AssistantsLoad:
        """Add the assistants of ``source`` (one exported, or a whole assistants file); one with
        a name already here replaces it. Returns what was imported and what was left out."""
        found = await asyncio.to_thread(lambda: self._read_sync(source, missing_ok=False))
        for assistant in found.assistants:
            await self.save(assistant)
        return found


def chat_params(assistant: Assistant, kept: dict[str, Any] | None = None) -> dict[str, Any]:
    """A conversation's params after applying ``assistant``: its parameters replace the chat's
    (so a preset means the same wherever it is applied), the chat's other keys (tools switch,
    profile, ...) are kept unless the assistant names tools, and the assistant's name is noted."""
    out = {k: v for k, v in (kept or {}).items() if k not in PARAM_KEYS}
    out.update(assistant.params)
    out[PARAMS_KEY] = assistant.name
    if assistant.tools is not None:
        out[TOOLS_KEY] = ToolChoice(tuple(assistant.tools)).to_params()
    return out


__all__ = ["FILE_NAME", "PARAMS_KEY", "Assistant", "Assistants", "AssistantsLoad", "assistants_path",
           "chat_params", "dump_assistants", "export_file_name", "parse_assistants"]
