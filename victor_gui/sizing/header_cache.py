"""A persistent cache of model descriptions read from GGUF headers.

Walking a real header costs tens of milliseconds (a 128k-token vocabulary and 280k merges are
~400k length-prefixed strings, skipped without decoding but still visited one by one); the
description the estimator needs is a few kilobytes. The cache keeps that description, keyed by
what identifies the bytes it came from:

* a local file: its resolved path, size and modification time (nanoseconds);
* a URL: the URL and the server's ETag (the Hub's ``X-Linked-Etag`` is the file's sha256), so a
  re-uploaded file is read again. Without an ETag nothing is cached.

Entries also carry a stamp of the parsing code (a hash of the sources of the reader and of
:mod:`.architecture`), so a changed parser never answers from an old reading. One small JSON
file per entry, written atomically; at most :data:`MAX_ENTRIES` are kept (oldest removed). An
unreadable, foreign or stale entry is a miss, never an error. All of it is file I/O: callers on
an event loop run it in a worker thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from victor_gui.sizing.architecture import ModelArchitecture

FORMAT = 1
MAX_ENTRIES = 512
MAX_ENTRY_BYTES = 4 << 20  # a real entry is a few KB (per-layer lists); anything bigger is not ours
_FIELDS = {f.name: f for f in dataclasses.fields(ModelArchitecture)}
# Every module between the header's bytes and the description (the GGUF reader is four files).
_SOURCES = ("architecture.py", "gguf_header.py", "gguf_strings.py", "gguf_parse.py", "gguf_reader.py",
            "ggml_types.py", "header_cache.py")
_stamp: str | None = None


def code_stamp() -> str:
    """A hash of the code that turns header bytes into a description (computed once)."""
    global _stamp
    if _stamp is None:
        h = hashlib.blake2b(digest_size=8)
        here = Path(__file__).resolve().parent
        for name in _SOURCES:
            with contextlib.suppress(OSError):
                h.update((here / name).read_bytes())
        _stamp = h.hexdigest()
    return _stamp


def file_key(path: str | Path) -> str | None:
    """The key of a local file as it is now, or None when it cannot be stat'ed."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return f"file:{real}:{st.st_size}:{st.st_mtime_ns}"


def url_key(url: str, etag: str | None) -> str | None:
    """The key of a remote file, or None without an ETag (nothing says the bytes are the same)."""
    return f"url:{url}:{etag.strip()}" if etag and etag.strip() else None


def _to_json(arch: ModelArchitecture) -> dict[str, Any]:
    return {name: getattr(arch, name) for name in _FIELDS}


def _fits_field(annotation: Any, value: Any) -> bool:
    """``value`` is of the plain type the field declares (annotations are strings here)."""
    kind = str(annotation)
    if kind.startswith("list["):
        item = bool if "bool" in kind else int
        return isinstance(value, list) and all(isinstance(v, item) for v in value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return kind == "str" and isinstance(value, str)


def _from_json(data: Any) -> ModelArchitecture | None:
    if not isinstance(data, dict) or set(data) != set(_FIELDS):
        return None
    if not all(_fits_field(_FIELDS[name].type, value) for name, value in data.items()):
        return None
    return ModelArchitecture(**data)


class HeaderCache:
    """Model descriptions by key, as JSON files in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / (hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ".json")

    def get(self, key: str | None) -> tuple[ModelArchitecture, int | None] | None:
        """The description and file size stored under ``key``, or None."""
        if key is None:
            return None
        try:
            path = self._path(key)
            if path.stat().st_size > MAX_ENTRY_BYTES:
                return None
            data = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("code") != code_stamp() \
                or data.get("key") != key:
            return None
        size = data.get("file_size")
        arch = _from_json(data.get("arch"))
        if arch is None or not (size is None or isinstance(size, int)):
            return None
        return arch, size

    def put(self, key: str | None, arch: ModelArchitecture, file_size: int | None) -> None:
        """Store a description (best effort: a read-only or full disk only loses the speed-up)."""
        if key is None:
            return
        payload = json.dumps({"format": FORMAT, "code": code_stamp(), "key": key, "file_size": file_size,
                              "arch": _to_json(arch)}, separators=(",", ":")).encode()
        import tempfile  # only when writing: a cached answer does not pay for it

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, self._path(key))
            self._prune()
        except OSError:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)

    def _prune(self) -> None:
        entries = list(self.folder.glob("*.json"))
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort(key=lambda p: p.stat().st_mtime)
        for old in entries[: len(entries) - MAX_ENTRIES]:
            with contextlib.suppress(OSError):
                old.unlink()


def default_cache() -> HeaderCache:
    """The cache in the app's cache folder (:func:`victor_gui.core.app_dirs.cache_dir`)."""
    from victor_gui.core.app_dirs import cache_dir

    return HeaderCache(cache_dir() / "gguf-headers")
