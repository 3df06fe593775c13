"""Reading YAML with line numbers for errors, and writing it atomically without secrets.

Config files are read with bounds, because a hostile or broken file must not take the machine:
a file over :data:`MAX_CONFIG_BYTES` is refused before it is read whole, and a document whose
aliases would expand it by more than :data:`MAX_ALIAS_NODES` values (a "billion laughs" bomb,
which passed 2 GB under a profile's ``api_key``) is refused before it is built. Plain anchors
and aliases (``<<: *defaults``) stay allowed: Victor's own profiles files use them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from pydantic import ValidationError

from victor_gui.core.redact import redact
from victor_gui.errors import ConfigError

# A settings file with hundreds of endpoints, or a profiles file with hundreds of profiles, is
# tens of kilobytes; 1 MiB leaves room for twenty times that while bounding the start-up cost
# (a 100 MB file took minutes and 700 MB+ before this limit).
MAX_CONFIG_BYTES = 1 << 20
# Values that aliases may add to a document beyond the ones written out (a merge key adds a few).
MAX_ALIAS_NODES = 100_000
# libyaml's C loader is about ten times faster and has its own nesting limit; the Python one is
# the fallback where PyYAML was built without it.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_config_text(path: Path) -> str:
    """The text of the config file ``path``, read with a bound.

    Raises :class:`ConfigError` (naming the file) when it is larger than
    :data:`MAX_CONFIG_BYTES`, and ``OSError`` / ``UnicodeDecodeError`` when it cannot be read.
    The size is checked before reading and again while reading (a FIFO or a growing file has
    no honest size). Blocking: call it from a worker thread.
    """
    with open(path, "rb") as fh:
        data = _read_bounded(fh, path)
    return data.decode("utf-8")


def _read_bounded(fh: BinaryIO, path: Path) -> bytes:
    if os.fstat(fh.fileno()).st_size <= MAX_CONFIG_BYTES:
        data = fh.read(MAX_CONFIG_BYTES + 1)
        if len(data) <= MAX_CONFIG_BYTES:
            return data
    raise ConfigError(
        f"the file is larger than {MAX_CONFIG_BYTES // 1024} KiB, far more than any real "
        "configuration; it was not read (move it aside or trim it)", path=str(path))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _expanded_sizes(root: yaml.Node) -> dict[int, int] | None:
    """Values each node stands for once aliases are expanded (by ``id``), or None when an alias
    refers to a node that contains it (a recursive document). Iterative: no recursion limit."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # being expanded: the current node's ancestors
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        if finished:
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in _children(node))
            continue
        if id(node) in sizes:
            continue
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                return None
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes


def _alias_use_line(root: yaml.Node, sizes: dict[int, int]) -> int:
    """Line where the alias that blows the document up is used: follow the largest child down
    (an alias use first) until the step is an alias, i.e. a child written before the place it
    is used (its anchor came earlier)."""
    node, line = root, root.start_mark.line + 1
    while True:
        steps: list[tuple[int, bool, yaml.Node, int]] = []  # (size, is an alias use, child, line)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                key_line = key.start_mark.line + 1
                steps.append((sizes[id(key)], key.start_mark.index < node.start_mark.index, key, key_line))
                steps.append((sizes[id(value)], value.start_mark.index < key.end_mark.index, value, key_line))
        elif isinstance(node, yaml.SequenceNode):
            written_up_to = node.start_mark.index
            for item in node.value:
                steps.append((sizes[id(item)], item.start_mark.index < written_up_to, item, line))
                written_up_to = max(written_up_to, item.end_mark.index)
        if not steps:
            return line
        _, aliased, child, step_line = max(steps, key=lambda s: (s[0], s[1]))
        if aliased:
            return step_line
        node, line = child, child.start_mark.line + 1


def _check_aliases(root: yaml.Node, path: Path) -> None:
    sizes = _expanded_sizes(root)
    if sizes is None:
        raise ConfigError("not valid here: an alias refers to a value that contains it "
                          "(a recursive document)", path=str(path), line=root.start_mark.line + 1)
    if sizes[id(root)] - len(sizes) > MAX_ALIAS_NODES:
        raise ConfigError(
            f"aliases (*name) here would expand the file to {sizes[id(root)]:,} values; "
            f"a configuration file may repeat at most {MAX_ALIAS_NODES:,} through aliases",
            path=str(path), line=_alias_use_line(root, sizes))


def parse_yaml(text: str, path: Path) -> tuple[Any, yaml.Node | None]:
    """(data, node tree) of a YAML document; :class:`ConfigError` with file and line if it is not
    YAML, or if its aliases would expand it beyond :data:`MAX_ALIAS_NODES` values.

    One parse gives both the plain data and the node tree whose marks say where each value
    was written, so a bad value can be reported by line. The expansion is measured on the node
    tree, before any Python object is built.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_aliases(node, path)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {problem}", path=str(path), line=line) from None
    except RecursionError:
        raise ConfigError("not valid here: nested too deeply", path=str(path)) from None
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
