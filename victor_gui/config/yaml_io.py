"""Reading YAML with line numbers for errors, and writing it atomically without secrets."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from victor_gui.core.redact import redact
from victor_gui.errors import ConfigError


def parse_yaml(text: str, path: Path) -> tuple[Any, yaml.Node | None]:
    """(data, node tree) of a YAML document; :class:`ConfigError` with file and line if it is not YAML.

    One parse gives both the plain data and the node tree whose marks say where each value
    was written, so a bad value can be reported by line.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {problem}", path=str(path), line=line) from None
    finally:
        loader.dispose()
    return data, node


def line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """1-based line of the value at ``loc`` (or of the deepest part of it that exists)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def validation_error(
    exc: ValidationError, path: Path, node: yaml.Node | None, prefix: Sequence[str | int] = ()
) -> ConfigError:
    """A :class:`ConfigError` for the first problem pydantic found, pointing at its line."""
    first = exc.errors()[0]
    loc = [*prefix, *first["loc"]]
    where = ".".join(str(p) for p in loc) or "(top level)"
    return ConfigError(f"{where}: {first['msg']}", path=str(path), line=line_of(node, loc))


def dump_yaml(data: Any) -> str:
    """YAML text for ``data`` in a stable, readable layout (insertion order kept)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a crash leaves either the old file or the new one, whole.

    Refuses text containing anything that looks like a credential or a known secret: keys
    belong in the keyring, never in a config file.
    """
    if redact(text) != text:
        raise ConfigError("refusing to write a secret into a configuration file", path=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
