"""Where GGUF models live on this machine (Qt-free): the user's model folders and the libraries
other apps already filled, scanned so that nothing is downloaded twice.

Folders come from ``settings.model_folders`` (the settings service owns them; this module only
reads). Libraries found without asking, when ``reuse_libraries`` is on:

* LM Studio — ``~/.lmstudio/models`` and the older ``~/.cache/lm-studio/models``, laid out as
  ``<author>/<repo>/<file>`` (the layout our downloads use too, so LM Studio lists them);
* llama.cpp's cache — ``LLAMA_CACHE``, else ``~/.cache/llama.cpp``: flat files named
  ``<author>_<repo>_<file>`` by ``llama-server -hf``;
* Hugging Face's cache — ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``:
  ``models--<author>--<repo>/snapshots/<rev>/<file>``, each a link to ``blobs/<sha256>`` for LFS
  files, so the sha256 is known without reading the file.

:func:`scan_libraries` walks them (blocking: :meth:`ModelFolders.scan` runs it in a thread) and
:func:`find_present` answers "do we have this repo file already, and where".
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from victor_gui.config.settings import ModelFolderSettings
from victor_gui.core import app_dirs
from victor_gui.services.download_jobs import SPLIT

LMSTUDIO, LLAMA_CACHE, HF_CACHE, FOLDER = "LM Studio", "llama.cpp cache", "Hugging Face cache", "Folder"
LAYOUT_REPO, LAYOUT_FLAT, LAYOUT_HF = "author/repo/file", "flat", "hf-cache"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# A walk never follows more entries than this per library (a models folder pointed at / by mistake).
MAX_ENTRIES = 200_000


@dataclass(frozen=True)
class Library:
    """One place GGUFs are kept: ``name`` says whose (``LM Studio``… or ``Folder``), ``layout``
    how files are named inside, ``found`` whether it was found rather than added by the user."""

    name: str
    path: Path
    layout: str = LAYOUT_REPO
    found: bool = False


@dataclass(frozen=True)
class LocalModel:
    """A GGUF on disk; ``repo_id``/``file`` where the layout tells them, ``sha256`` where it is
    known without reading the file (Hugging Face's blob names, our own verified downloads)."""

    path: Path
    size: int
    library: str
    repo_id: str | None = None
    file: str | None = None
    sha256: str | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain values for ``--json``."""
        return {"path": str(self.path), "size": self.size, "library": self.library,
                "repo_id": self.repo_id, "file": self.file, "sha256": self.sha256}


def _home(home: Path | None) -> Path:
    return home if home is not None else Path.home()


def _cache_root(env: Mapping[str, str], home: Path) -> Path:
    return Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else home / ".cache"


def known_libraries(env: Mapping[str, str] | None = None, home: Path | None = None) -> list[Library]:
    """Where other apps keep models, whether or not the folders exist."""
    env = os.environ if env is None else env
    home = _home(home)
    cache = _cache_root(env, home)
    llama = Path(env["LLAMA_CACHE"]) if env.get("LLAMA_CACHE") else cache / "llama.cpp"
    if env.get("HF_HUB_CACHE"):
        hf = Path(env["HF_HUB_CACHE"])
    elif env.get("HF_HOME"):
        hf = Path(env["HF_HOME"]) / "hub"
    else:
        hf = cache / "huggingface" / "hub"
    return [Library(LMSTUDIO, home / ".lmstudio" / "models", LAYOUT_REPO, True),
            Library(LMSTUDIO, home / ".cache" / "lm-studio" / "models", LAYOUT_REPO, True),
            Library(LLAMA_CACHE, llama, LAYOUT_FLAT, True),
            Library(HF_CACHE, hf, LAYOUT_HF, True)]


def found_libraries(env: Mapping[str, str] | None = None, home: Path | None = None) -> list[Library]:
    """The libraries of :func:`known_libraries` that exist here (blocking: a few ``stat``)."""
    return [lib for lib in known_libraries(env, home) if lib.path.is_dir()]


def default_download_folder(env: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """Without a choice: LM Studio's folder when LM Studio is installed (it then lists our
    downloads), else ``models`` in the app's data folder (blocking: one ``stat``)."""
    lmstudio = _home(home) / ".lmstudio" / "models"
    return lmstudio if lmstudio.is_dir() else app_dirs.data_dir() / "models"


def _walk(root: Path) -> Iterable[Path]:
    """GGUF files under ``root`` (links followed for files, never for folders), bounded."""
    seen = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            seen += 1
            if seen > MAX_ENTRIES:
                return
            if name.lower().endswith(".gguf"):
                yield Path(folder) / name


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:  # a dangling link, a file removed during the walk
        return None


def _scan_one(lib: Library) -> list[LocalModel]:
    out: list[LocalModel] = []
    for path in _walk(lib.path):
        size = _size(path)
        if size is None:
            continue
        parts = path.relative_to(lib.path).parts
        repo_id = file = sha = None
        if lib.layout == LAYOUT_REPO and len(parts) >= 3:
            repo_id, file = f"{parts[0]}/{parts[1]}", "/".join(parts[2:])
        elif lib.layout == LAYOUT_HF and len(parts) >= 4 and parts[0].startswith("models--") \
                and parts[1] == "snapshots":
            names = parts[0].split("--")
            if len(names) >= 3:
                repo_id, file = f"{names[1]}/{'--'.join(names[2:])}", "/".join(parts[3:])
            target = os.path.basename(os.readlink(path)) if path.is_symlink() else ""
            sha = target if _SHA256.match(target) else None
        out.append(LocalModel(path, size, lib.name, repo_id, file, sha))
    return out


def scan_libraries(libraries: Iterable[Library]) -> list[LocalModel]:
    """Every GGUF in ``libraries`` (blocking: run it in a thread). A folder that cannot be read
    is skipped; a file reached through two libraries is listed once."""
    out: list[LocalModel] = []
    seen: set[Path] = set()
    for lib in libraries:
        try:
            found = _scan_one(lib)
        except OSError:
            continue
        for model in found:
            key = model.path.resolve() if model.path.is_symlink() else model.path
            if key not in seen:
                seen.add(key)
                out.append(model)
    return out


def is_runnable(path: Path) -> bool:
    """Whether ``path`` is a model a server can start with: not a vision projector (``mmproj``)
    and not a later part of a split model (llama-server is given the first part)."""
    split = SPLIT.match(path.name)
    return "mmproj" not in path.name.lower() and (split is None or int(split["index"]) == 1)


def llama_cache_name(repo_id: str, file: str) -> str:
    """The name ``llama-server -hf`` gives a download in its cache."""
    return f"{repo_id.replace('/', '_')}_{file.replace('/', '_')}"


def find_present(models: Iterable[LocalModel], repo_id: str, file: str, size: int | None,
                 sha256: str | None) -> LocalModel | None:
    """The local copy of ``repo_id``/``file``: same sha256, or same repo, file and size (a file
    of the same name but another size is a different or unfinished file, not a copy)."""
    flat = llama_cache_name(repo_id, file)
    for model in models:
        if sha256 and model.sha256 == sha256:
            return model
        if size is not None and model.size != size:
            continue
        if model.repo_id is not None and model.repo_id.lower() == repo_id.lower() and model.file == file:
            return model
        if model.repo_id is None and model.path.name == flat:
            return model
    return None


class ModelFolders:
    """The model folders of the settings in force, and the scan of them.

    ``settings`` is the app's SettingsService (or anything with a ``.settings`` holding
    ``model_folders``); None uses the defaults. ``env``/``home`` are for tests."""

    def __init__(self, settings: object | None = None, *, env: Mapping[str, str] | None = None,
                 home: Path | None = None) -> None:
        self._settings = settings
        self.env = os.environ if env is None else env
        self.home = home

    @property
    def config(self) -> ModelFolderSettings:
        """``settings.model_folders`` now."""
        current = getattr(self._settings, "settings", None)
        value = getattr(current, "model_folders", None)
        return value if isinstance(value, ModelFolderSettings) else ModelFolderSettings()

    def libraries(self) -> list[Library]:
        """The user's folders, then (if reused) every other app's library that exists
        (blocking: a few ``stat``)."""
        config = self.config
        libs = [Library(FOLDER, Path(f).expanduser()) for f in config.folders]
        if config.reuse_libraries:
            mine = {lib.path for lib in libs}
            libs += [lib for lib in found_libraries(self.env, self.home) if lib.path not in mine]
        return libs

    def download_root(self) -> Path:
        """Where new downloads go (blocking: one ``stat``)."""
        config = self.config
        if config.download_folder:
            return Path(config.download_folder).expanduser()
        if config.folders:
            return Path(config.folders[0]).expanduser()
        return default_download_folder(self.env, self.home)

    async def scan(self, *, also: Path | None = None) -> list[LocalModel]:
        """Every GGUF in :meth:`libraries`, the download folder and ``also`` (a folder named
        for one download), read in a worker thread."""
        def work() -> list[LocalModel]:
            libs = self.libraries()
            for root in (self.download_root(), also):
                if root is not None and all(lib.path != root for lib in libs):
                    libs.insert(0, Library(FOLDER, root))
            return scan_libraries(libs)

        return await asyncio.to_thread(work)


__all__ = ["FOLDER", "HF_CACHE", "LLAMA_CACHE", "LMSTUDIO", "Library", "LocalModel", "ModelFolders",
           "default_download_folder", "find_present", "found_libraries", "is_runnable", "known_libraries",
           "llama_cache_name", "scan_libraries"]
