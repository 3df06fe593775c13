"""An engine out of the box: build llama-server from the PyPI sdist and install it in the data folder.

This is the ONE recipe for building llama-server -- ``victor-gui engine install`` and the test
tier's cached build (``tests/support/llama_build.py``) both run :func:`build_from_sdist`:

1. check the tools (cmake, make, a C/C++ compiler) before anything is downloaded;
2. fetch the ``llama-cpp-python`` sdist from PyPI (pinned version and sha256) or take a local one,
   and verify it (:mod:`victor_gui.services.engine_sdist`);
3. extract only ``vendor/llama.cpp``, every member checked;
4. configure and build the ``llama-server`` target, progress parsed from the build's output
   (:mod:`victor_gui.services.engine_build`), ``-O2`` and ``GGML_NATIVE=ON`` for users (it is
   built on the machine that runs it), ``-O0``/``NATIVE=OFF`` for the test tier;
5. install the binary into ``<data>/engines/llama-server/<version>/`` with a ``build-stamp.json``
   written last, through a staging folder renamed into place, so a failed or cancelled build
   never leaves a half-installed engine.

:func:`installed_engine` is what the app's binary search (``engine_runner``) adds to PATH and the
LM Studio/Jan folders; :func:`engine_status` lists every candidate and says which would be used.
Everything is async; subprocesses and file I/O never block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from victor_gui.core.app_dirs import data_dir
from victor_gui.core.files import copy_file
from victor_gui.errors import EngineInstallError
from victor_gui.services.engine_build import (
    TARGET,
    BuildLog,
    EngineProgress,
    check_tools,
    cmake_build,
    cmake_flags,
)
from victor_gui.services.engine_cross import binary_name, check_cross_tools, cross_flags, write_toolchain
from victor_gui.services.engine_places import vendor_engines
from victor_gui.services.engine_sdist import (
    DEFAULT_VERSION,
    PINNED_SHA256,
    check_version,
    download_sdist,
    extract_llama_cpp,
    find_sdist,
    sdist_name,
    sdist_version,
    verify_sha256,
)

STAMP_NAME = "build-stamp.json"
BINARY_NAME = TARGET + (".exe" if sys.platform == "win32" else "")
_VERSION_TIMEOUT_S = 5.0


def engines_root() -> Path:
    """``<data>/engines/llama-server``: one sub-folder per installed version."""
    return data_dir() / "engines" / "llama-server"


def install_dir(version: str = DEFAULT_VERSION, prefix: Path | None = None) -> Path:
    """Where ``version`` is installed: ``<prefix or engines_root()>/<version>``."""
    return (prefix or engines_root()) / check_version(version)


def read_stamp(folder: Path) -> dict[str, Any] | None:
    """The build stamp in ``folder``, or None (missing or unreadable)."""
    try:
        data = json.loads((folder / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stamped_binary(folder: Path, name: str = BINARY_NAME) -> Path | None:
    """``folder``'s llama-server (``name``: ``llama-server.exe`` for a win64 cross build) when it
    is executable and its stamp (written last) is there."""
    path = folder / name
    if path.is_file() and os.access(path, os.X_OK) and (folder / STAMP_NAME).is_file():
        return path
    return None


def _version_key(name: str) -> tuple[tuple[int, str], ...]:
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in name.replace("-", ".").split("."))


def installed_engine(prefix: Path | None = None) -> Path | None:
    """The llama-server ``victor-gui engine install`` installed (the newest version), or None.

    Blocking (a few ``stat`` calls): call it from a worker thread on the event loop."""
    root = prefix or engines_root()
    try:
        folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return None
    for folder in sorted(folders, key=lambda p: _version_key(p.name), reverse=True):
        found = stamped_binary(folder)
        if found is not None:
            return found
    return None


# -- candidates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineCandidate:
    """One llama-server on this machine: where it is, how it was found, what ``--version`` said."""

    path: Path
    source: str  # "PATH", "installed", "Jan", "LM Studio", "bundled"
    version: str | None = None  # the first line of ``--version``; None when it did not answer


@dataclass
class EngineStatus:
    """Every llama-server found, in the order the app prefers them, and the one it would use."""

    candidates: list[EngineCandidate] = field(default_factory=list)

    @property
    def chosen(self) -> EngineCandidate | None:
        """The first candidate that answered ``--version``."""
        return next((c for c in self.candidates if c.version is not None), None)

    def reason(self) -> str:
        """One sentence: which llama-server would be used, and why."""
        chosen = self.chosen
        if chosen is None:
            return "No llama-server found: run `victor-gui engine install` to build one."
        why = {
            "PATH": "it is on PATH (a system package or your own build), which comes first",
            "installed": "`victor-gui engine install` installed it and none is on PATH",
            "Jan": "Jan ships it and none is on PATH or installed by victor-gui",
            "LM Studio": "LM Studio ships it and none is on PATH or installed by victor-gui",
            "bundled": "the app ships it (a CPU build) and no other llama-server was found",
        }[chosen.source]
        return f"{chosen.path} would be used: {why}."


#: Where a frozen app keeps the llama-server it ships, relative to its own folder (the Windows
#: bundle: the mingw cross build, see packaging/llama_windows.py).
BUNDLED_DIR = Path("engines") / "llama-server"


def bundled_engine() -> Path | None:
    """The llama-server the frozen app ships in ``engines/llama-server/`` beside its executable
    (or in PyInstaller's ``_internal`` folder), or None: not frozen, or shipped without one.

    Blocking (a few ``stat`` calls): call it from a worker thread on the event loop."""
    if not getattr(sys, "frozen", False):
        return None
    bases = [Path(sys.executable).resolve().parent]
    internal = getattr(sys, "_MEIPASS", None)
    if isinstance(internal, str):
        bases.append(Path(internal))
    for base in bases:
        path = base / BUNDLED_DIR / BINARY_NAME
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def _find_on_disk(path_env: str | None, prefix: Path | None) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    on_path = shutil.which(TARGET, path=path_env)
    if on_path:
        found.append((Path(on_path), "PATH"))
    mine = installed_engine(prefix)
    if mine is not None:
        found.append((mine, "installed"))
    found.extend((hit, app) for app, _folder, hits in vendor_engines() for hit in hits)
    # Last: the app's own CPU build is the fallback for a machine that has no other engine (a
    # system, installed, Jan or LM Studio build may use the GPU).
    shipped = bundled_engine()
    if shipped is not None:
        found.append((shipped, "bundled"))
    return found


async def engine_version(binary: Path) -> str | None:
    """The first line ``binary --version`` prints (llama-server prints it on stderr), or None
    when it does not start or answer within a few seconds."""
    try:
        proc = await asyncio.create_subprocess_exec(
            str(binary), "--version", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), _VERSION_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return None
    if proc.returncode != 0:
        return None
    lines = [ln.strip() for ln in out[:4096].decode("utf-8", "replace").splitlines() if ln.strip()]
    return next((ln for ln in lines if ln.startswith("version")), lines[0] if lines else "")


async def engine_status(*, path_env: str | None = None, prefix: Path | None = None) -> EngineStatus:
    """Every llama-server on this machine -- on PATH, installed by ``engine install``, shipped by
    Jan or LM Studio, shipped in the frozen app -- in that order of preference, each asked for
    ``--version``."""
    found = await asyncio.to_thread(_find_on_disk, path_env, prefix)
    versions = await asyncio.gather(*(engine_version(path) for path, _ in found))
    return EngineStatus([EngineCandidate(path, source, version)
                         for (path, source), version in zip(found, versions, strict=True)])


async def system_engine(path_env: str | None = None) -> EngineCandidate | None:
    """The llama-server on PATH when it answers ``--version`` (a system package), else None."""
    on_path = await asyncio.to_thread(lambda: shutil.which(TARGET, path=path_env))
    if not on_path:
        return None
    version = await engine_version(Path(on_path))
    return EngineCandidate(Path(on_path), "PATH", version) if version is not None else None


# -- the recipe --------------------------------------------------------------------------------


def _install(built: Path, dest: Path, stamp: dict[str, Any], name: str = BINARY_NAME) -> Path:
    """Copy ``built`` into ``dest`` as ``name`` through a staging folder renamed into place, stamp last."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(f".{dest.name}.staging-{os.getpid()}")
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        copy_file(built, staging / name)
        (staging / name).chmod(0o755)
        (staging / STAMP_NAME).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        if dest.exists():
            os.replace(dest, old)
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return dest / name


async def build_from_sdist(sdist: Path, *, work_dir: Path, dest_dir: Path, opt: str = "O2",
                           native: bool = True, jobs: int | None = None, log_path: Path | None = None,
                           stamp_extra: dict[str, Any] | None = None, target: str | None = None,
                           ) -> AsyncIterator[EngineProgress]:
    """Extract ``sdist``'s llama.cpp into ``work_dir``, build llama-server and install it as
    ``dest_dir/llama-server`` with its stamp; the last event (``done``) carries the path.

    ``target="win64"`` cross-compiles ``llama-server.exe`` with mingw-w64 instead
    (:mod:`victor_gui.services.engine_cross`: generated toolchain file, portable x86-64 baseline,
    static runtime); it needs ``native=False``.

    The sources and objects (~1 GB) are removed after a success and kept after a failure or a
    cancel, so the next try resumes the build. Cancel (or ``aclose()``) kills the build's process
    group; ``dest_dir`` is only ever replaced whole by a finished, stamped install.
    """
    if target is None:
        tools = await asyncio.to_thread(check_tools)
    else:
        tools = await asyncio.to_thread(check_cross_tools, target)
    yield EngineProgress("check", None, "tools: " + ", ".join(f"{k} {v}" for k, v in tools.items()))
    version = sdist_version(sdist) or sdist.name
    flags = cmake_flags(opt, native)
    binary = BINARY_NAME
    build_dir = work_dir / f"build-{opt}{'-native' if native else ''}{'-' + target if target else ''}"
    if target is not None:
        toolchain = work_dir / f"toolchain-{target}.cmake"
        flags = cross_flags(flags, target, toolchain)
        binary = binary_name(target)
        if await asyncio.to_thread(write_toolchain, target, toolchain, tools):
            await asyncio.to_thread(shutil.rmtree, build_dir, True)  # configured with another one
    t0 = time.monotonic()
    yield EngineProgress("extract", None, f"extracting vendor/llama.cpp from {sdist.name}")
    src = await extract_llama_cpp(sdist, work_dir / "src")
    t1 = time.monotonic()
    log = BuildLog(log_path)
    await log.open()
    try:
        async for event in cmake_build(src, build_dir, flags, log=log, jobs=jobs):
            yield event
        built = build_dir / "bin" / binary
        if not await asyncio.to_thread(built.is_file):
            raise log.failure(f"the build finished but left no {built}")
    finally:
        await log.close()
    t2 = time.monotonic()
    stamp: dict[str, Any] = {
        "llama_cpp_python_version": version,
        "opt": opt,
        "native": native,
        **({"target": target} if target else {}),
        "cmake_flags": list(flags),
        "jobs": jobs or os.cpu_count() or 1,
        **(stamp_extra or {}),
        "extract_seconds": round(t1 - t0, 1),
        "build_seconds": round(t2 - t1, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    yield EngineProgress("install", None, f"installing into {dest_dir}")
    # Shielded: a cancel here lets the copy finish (whole) rather than abandon a staging folder.
    path = await asyncio.shield(asyncio.to_thread(_install, built, dest_dir, stamp, binary))
    await asyncio.to_thread(shutil.rmtree, work_dir / "src", True)
    await asyncio.to_thread(shutil.rmtree, build_dir, True)
    yield EngineProgress("done", 100.0, f"{binary} installed: {path}", path=path)


async def fetch_sdist(version: str, dest: Path, *, pypi: str | None = None,
                      ) -> AsyncIterator[EngineProgress]:
    """Make ``dest/<sdist>`` the verified sdist of ``version``: reuse a file already there whose
    sha256 matches, else download it from PyPI; the last event's ``path`` is the file."""
    import httpx

    final = dest / sdist_name(version)
    pinned = PINNED_SHA256.get(check_version(version))
    if pinned is not None and await asyncio.to_thread(final.is_file):
        # A pinned version already here needs no network at all (an offline rebuild works).
        yield EngineProgress("verify", None, f"checking {final.name} against the pinned sha256")
        try:
            await verify_sha256(final, pinned)
        except EngineInstallError:
            await asyncio.to_thread(final.unlink, True)
        else:
            yield EngineProgress("verify", 100.0, f"{final.name}: sha256 matches (pinned)", path=final)
            return
    timeout = httpx.Timeout(30.0, read=60.0)
    async with httpx.AsyncClient(timeout=timeout, trust_env=True) as client:
        source = await find_sdist(client, version, pypi)
        yield EngineProgress("download", 0.0, f"downloading {source.url}")
        last = -1
        async for done, total in download_sdist(client, source, dest):
            percent = int(100 * done / total) if total else None
            if percent is not None and percent != last:
                last = percent
                yield EngineProgress("download", float(percent), f"{done >> 20} of {(total or 0) >> 20} MiB")
    yield EngineProgress("verify", 100.0, f"{final.name}: sha256 matches ({source.sha256_source})",
                         path=final)


async def install_engine(version: str = DEFAULT_VERSION, *, sdist: Path | None = None,
                         prefix: Path | None = None, jobs: int | None = None, opt: str = "O2",
                         native: bool = True, pypi: str | None = None) -> AsyncIterator[EngineProgress]:
    """``victor-gui engine install``: check the tools, get the sdist (``sdist`` or PyPI), build
    and install into :func:`install_dir` (``prefix`` replaces ``<data>/engines/llama-server``).

    A local ``sdist`` of a pinned version must match the pinned sha256; the version is then
    read from its name. The work folder (``<prefix>/.work-<version>``) goes after a success;
    the build log stays as ``<prefix>/build-<version>.log``. One install at a time per prefix.
    """
    await asyncio.to_thread(check_tools)  # before any download: say what is missing first
    root = prefix or engines_root()
    if sdist is not None:
        version = sdist_version(sdist) or version
    version = check_version(version)
    work = root / f".work-{version}"
    async with _install_lock(root):
        if sdist is None:
            local: Path | None = None
            async for event in fetch_sdist(version, work / "dl", pypi=pypi):
                local = event.path or local
                yield event
            assert local is not None
            sdist = local
            sha_source = "pinned" if version in PINNED_SHA256 else "pypi"
        elif version in PINNED_SHA256:
            yield EngineProgress("verify", None, f"checking {sdist.name} against the pinned sha256")
            await verify_sha256(sdist, PINNED_SHA256[version])
            sha_source = "pinned"
        else:
            sha_source = "local file, not pinned"
        async for event in build_from_sdist(
                sdist, work_dir=work, dest_dir=install_dir(version, root), opt=opt, native=native,
                jobs=jobs, log_path=root / f"build-{version}.log",
                stamp_extra={"sdist_sha256_source": sha_source}):
            yield event
        await asyncio.to_thread(shutil.rmtree, work, True)


@contextlib.asynccontextmanager
async def _install_lock(root: Path) -> AsyncIterator[None]:
    """Refuse a second install into the same folder while one runs (its build would race ours)."""
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    fh = await asyncio.to_thread(open, root / ".install.lock", "w")
    try:
        if sys.platform != "win32":
            import fcntl

            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise EngineInstallError(f"another engine install is running in {root}",
                                         reason="busy") from None
        yield
    finally:
        await asyncio.to_thread(fh.close)


__all__ = [
    "BINARY_NAME",
    "BUNDLED_DIR",
    "DEFAULT_VERSION",
    "STAMP_NAME",
    "EngineCandidate",
    "EngineProgress",
    "EngineStatus",
    "build_from_sdist",
    "bundled_engine",
    "engine_status",
    "engine_version",
    "engines_root",
    "fetch_sdist",
    "install_dir",
    "install_engine",
    "installed_engine",
    "read_stamp",
    "stamped_binary",
    "system_engine",
]
