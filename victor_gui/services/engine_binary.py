"""Where a ``llama-server`` binary is on this machine (Qt-free; blocking: call it in a thread).

Looked for in this order, first hit wins:

1. the path set in Settings (``Settings.llama_server_path``; a folder holding the binary counts);
2. ``PATH`` (a system package, Homebrew, a hand build installed with ``cmake --install``);
3. the engine ``victor-gui engine install`` built (``<data>/engines/llama-server/<version>/``);
4. the app's own build cache: ``$VICTOR_LLAMA_CACHE`` or ``<cache>/victor_gui/llama-server/``
   (where the test tier and an engine build put it; only a finished build, with its stamp);
5. LM Studio's and Jan's install folders, which ship llama.cpp servers with their engines
   (:func:`vendor_engines`: Jan's ``llamacpp/backends/*/*/build/bin`` and ``engines`` under its data
   folder, ``~/.lmstudio/extensions/backends/*``, ``~/.cache/lm-studio/extensions/backends/*``);
6. the CPU ``llama-server.exe`` the frozen Windows app ships in ``engines/llama-server/``.

:func:`find_llama_server` returns the first executable found, :func:`candidates` every place
looked at (the error text lists them so the user knows where to put one).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from victor_gui.services.engine_places import EXE, below, executable, vendor_engines

STAMP_NAME = "build-stamp.json"  # written last by a finished cache build


@dataclass(frozen=True)
class BinarySearch:
    """The binary found (None: none) and where it was looked for."""

    path: Path | None
    looked: tuple[str, ...]

    @property
    def reason(self) -> str:
        """Why there is none, with the places looked at (empty when found)."""
        if self.path is not None:
            return ""
        return ("No llama-server was found. Set its path in Settings, or put it on PATH. Looked in: "
                + "; ".join(self.looked))


def _settings_path(setting: str) -> Path:
    chosen = Path(setting).expanduser()
    if chosen.is_dir():
        return chosen / EXE
    with_exe = chosen.with_name(chosen.name + ".exe")
    if sys.platform == "win32" and not chosen.suffix and with_exe.is_file():
        return with_exe  # "C:\llama\llama-server", as a Windows shell finds it
    return chosen


def chosen_binary(setting: str) -> Path | None:
    """The executable a Settings value names (the file, or a folder holding it), or None."""
    path = _settings_path(setting)
    return path if executable(path) else None


def _cache_roots(env: Mapping[str, str], home: Path) -> list[Path]:
    explicit = env.get("VICTOR_LLAMA_CACHE")
    if explicit:
        return [Path(explicit).expanduser()]
    xdg = env.get("XDG_CACHE_HOME") or str(home / ".cache")
    return [Path(xdg).expanduser() / "victor_gui" / "llama-server"]


def candidates(setting: str | None, env: Mapping[str, str] | None = None,
               home: Path | None = None) -> Iterator[tuple[str, Path | None]]:
    """``(where, path or None)`` for each place, in search order (a generator: stops early)."""
    env = os.environ if env is None else env
    home = home or Path.home()
    if setting:
        yield "Settings", _settings_path(setting)
    found = shutil.which(EXE, path=env.get("PATH", ""))
    yield "PATH", Path(found) if found else None
    from victor_gui.services.engine_install import engines_root, installed_engine

    yield "victor-gui engine install", installed_engine(engines_root())
    for root in _cache_roots(env, home):
        hit = next((p for p in below(root, 3) if (p.parent / STAMP_NAME).is_file()), None)
        yield str(root), hit
    for _app, folder, hits in vendor_engines(env, home):
        yield str(folder), hits[0] if hits else None
    from victor_gui.services.engine_install import bundled_engine

    # Last: the CPU build the Windows bundle ships (a PATH, installed or vendor one may use the GPU).
    yield "shipped with Victor GUI", bundled_engine()


def find_llama_server(setting: str | None = None, env: Mapping[str, str] | None = None,
                      home: Path | None = None) -> BinarySearch:
    """The first usable ``llama-server`` (see the module doc). Blocking (file system)."""
    looked: list[str] = []
    for where, path in candidates(setting, env, home):
        looked.append(where if path is None else f"{where} ({path})")
        if path is not None and executable(path):
            return BinarySearch(path, tuple(looked))
    return BinarySearch(None, tuple(looked))


__all__ = ["EXE", "BinarySearch", "candidates", "chosen_binary", "find_llama_server"]
