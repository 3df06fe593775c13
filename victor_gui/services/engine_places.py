"""Where other apps keep the llama-server binaries they ship (Jan, LM Studio), read by both the
engine runner's search (:mod:`engine_binary`) and ``victor-gui engine status``
(:mod:`engine_install`). Qt-free; blocking (file system): call it in a thread."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

EXE = "llama-server.exe" if sys.platform == "win32" else "llama-server"


def executable(path: Path) -> bool:
    """``path`` is a file this user may run: by its mode bits, or on Windows by its extension
    (Windows has no execute bit: ``os.access(..., X_OK)`` says yes to every file there, so a
    text file or a model named in Settings would be started)."""
    if sys.platform == "win32":
        return path.suffix.lower() == ".exe" and path.is_file()
    return path.is_file() and os.access(path, os.X_OK)


def below(root: Path, depth: int) -> Iterator[Path]:
    """``EXE`` files up to ``depth`` folders below ``root``, newest folder names first."""
    if depth < 0 or not root.is_dir():
        return
    here = root / EXE
    if executable(here):
        yield here
    try:
        subs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True)
    except OSError:
        return
    for sub in subs:
        yield from below(sub, depth - 1)


def _vendor_places(env: Mapping[str, str], home: Path) -> list[tuple[str, Path, str | None]]:
    """``(app, folder, glob or None)`` where Jan and LM Studio keep the llama-servers they ship:
    a glob for a known layout, None to look up to three folders down."""
    jan_data = [home / ".local" / "share" / "Jan" / "data", home / ".config" / "Jan" / "data",
                home / "Library" / "Application Support" / "Jan" / "data"]
    if env.get("APPDATA"):
        jan_data.append(Path(env["APPDATA"]) / "Jan" / "data")
    places: list[tuple[str, Path, str | None]] = [
        ("Jan", data, f"llamacpp/backends/*/*/build/bin/{EXE}") for data in jan_data]
    places += [("Jan", home / "jan" / "engines", None)]
    places += [("Jan", data / "engines", None) for data in jan_data]
    places += [("LM Studio", home / ".lmstudio" / "extensions" / "backends", None),
               ("LM Studio", home / ".cache" / "lm-studio" / "extensions" / "backends", None)]
    return places


def vendor_engines(env: Mapping[str, str] | None = None,
                   home: Path | None = None) -> list[tuple[str, Path, list[Path]]]:
    """``(app, folder, binaries)`` for each place Jan and LM Studio keep llama-servers, newest
    version first (at most 8 a place): the one list both the engine runner's search and
    ``victor-gui engine status`` read. Blocking (file system)."""
    env = os.environ if env is None else env
    home = home or Path.home()
    out: list[tuple[str, Path, list[Path]]] = []
    for app, folder, pattern in _vendor_places(env, home):
        hits: list[Path] = []
        with contextlib.suppress(OSError):
            if pattern is not None:
                hits = [p for p in sorted(folder.glob(pattern), reverse=True) if executable(p)]
            else:
                hits = list(itertools.islice(below(folder, 3), 8))
        out.append((app, folder, hits[:8]))
    return out



__all__ = ["EXE", "below", "executable", "vendor_engines"]
