"""The Windows bundle's engine: ``llama-server.exe`` cross-compiled on Linux with mingw-w64.

``python packaging/llama_windows.py --ensure`` builds it once with the app's own recipe
(:func:`victor_gui.services.engine_install.build_from_sdist` with ``target="win64"``: the pinned
``llama-cpp-python`` sdist's vendored llama.cpp, the same sources the test tier builds; a
generated cmake toolchain file; ``-O2``, ``GGML_NATIVE=OFF`` and the x86-64 baseline because it
ships to other machines; libstdc++, libgcc and winpthread linked statically) and caches it
outside the repository::

    ${VICTOR_LLAMA_CACHE:-~/.cache/victor_gui/llama-server}/<version>-win64-O2/llama-server.exe

beside its ``build-stamp.json``. The sdist is shared with the test build
(``<cache>/work-<version>/dl``), so no network is needed once either has run.

Needs cmake, make and Debian's mingw-w64 POSIX-threads compilers
(``apt install g++-mingw-w64-x86-64-posix gcc-mingw-w64-x86-64-posix``). A Linux host only.

``victor_gui.spec`` puts the exe in the bundle's ``engines/llama-server/`` when it is present
(:func:`bundle_exe`; ``VICTOR_BUNDLE_LLAMA_SERVER=PATH`` names one built elsewhere, e.g. a CI
artifact on the Windows runner), where the frozen app's engine search finds it.

CLI::

    python packaging/llama_windows.py --ensure      # build if missing; print path, size, DLLs
    python packaging/llama_windows.py --print-path  # print the path if built, else exit 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: the repo's victor_gui first
    sys.path.insert(0, str(ROOT))

from victor_gui.services.engine_cross import (  # noqa: E402
    WIN64,
    binary_name,
    build_cache_root,
    pe_imports,
    runtime_dlls,
)
from victor_gui.services.engine_sdist import DEFAULT_VERSION  # noqa: E402

OPT_LEVEL = "O2"
EXE_NAME = binary_name(WIN64)
#: Where the bundle keeps the engine, relative to the app's folder (the engine search looks there).
BUNDLE_DIR = "engines/llama-server"
ENV_BUNDLE = "VICTOR_BUNDLE_LLAMA_SERVER"


def cache_dir(version: str = DEFAULT_VERSION) -> Path:
    """``<cache>/<version>-win64-O2``: the cached exe and its stamp."""
    return build_cache_root() / f"{version}-{WIN64}-{OPT_LEVEL}"


def exe_path(version: str = DEFAULT_VERSION) -> Path:
    """Where the exe of ``version`` is, once built."""
    return cache_dir(version) / EXE_NAME


def find_exe(version: str = DEFAULT_VERSION) -> Path | None:
    """The cached exe when it is there with its stamp (written last: a build that died half-way
    never passes for a good one), else None."""
    from victor_gui.services.engine_install import stamped_binary

    return stamped_binary(cache_dir(version), EXE_NAME)


def bundle_exe(windows: bool, version: str = DEFAULT_VERSION) -> Path | None:
    """The llama-server the bundle ships: ``$VICTOR_BUNDLE_LLAMA_SERVER`` when set (it must
    exist; any OS), else for a ``windows`` bundle the cached cross build, else None (the bundle
    then ships without an engine, as a Linux or macOS one does by default)."""
    explicit = os.environ.get(ENV_BUNDLE)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{ENV_BUNDLE}={explicit} is not a file")
        return path
    return find_exe(version) if windows else None


def bundle_datas(windows: bool) -> list[tuple[str, str]]:
    """PyInstaller ``datas`` entries that put :func:`bundle_exe` in ``engines/llama-server/``
    (a data file: PyInstaller must not analyse a Windows exe on another OS); [] when none."""
    exe = bundle_exe(windows)
    if exe is None:
        return []
    print(f"bundling the engine {exe} into {BUNDLE_DIR}/", flush=True)
    return [(str(exe), BUNDLE_DIR)]


def missing_reason(version: str = DEFAULT_VERSION) -> str:
    """Why there is no exe, phrased as a skip reason that says how to build it."""
    return (f"no {EXE_NAME} at {exe_path(version)}; cross-build it (~15-30 min, needs cmake and "
            "g++-mingw-w64-x86-64-posix) with `.venv/bin/python packaging/llama_windows.py --ensure`")


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    # Two ensures at once (a setup script and a test run) would share one work folder: one
    # builds, the other waits and then finds the stamped exe.
    import fcntl  # the cross build runs on Linux only

    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".build-{WIN64}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


async def _build(version: str, jobs: int) -> Path:
    from victor_gui.services.engine_install import build_from_sdist, fetch_sdist

    root = build_cache_root()
    sdist: Path | None = None
    async for event in fetch_sdist(version, root / f"work-{version}" / "dl"):
        if event.phase != "download" or event.percent in (0.0, 100.0):
            print(f"[llama_windows] {event.phase}: {event.line}", file=sys.stderr, flush=True)
        sdist = event.path or sdist
    assert sdist is not None
    work = root / f"work-{version}-{WIN64}"
    built: Path | None = None
    async for event in build_from_sdist(sdist, work_dir=work, dest_dir=cache_dir(version), opt=OPT_LEVEL,
                                        native=False, jobs=jobs, log_path=work / "build.log", target=WIN64):
        if event.phase != "build" or event.percent is not None:
            print(f"[llama_windows] {event.phase}: {event.line}", file=sys.stderr, flush=True)
        built = event.path or built
    assert built is not None
    return built


def check_imports(exe: Path) -> list[str]:
    """The DLLs ``exe`` imports; RuntimeError when one is a mingw runtime DLL (it would not start
    on a machine without mingw)."""
    imports = pe_imports(exe)
    bad = runtime_dlls(imports)
    if bad:
        raise RuntimeError(f"{exe} imports mingw runtime DLLs {bad}: the static link failed")
    return imports


def ensure(version: str = DEFAULT_VERSION, jobs: int | None = None) -> Path:
    """The cached exe, cross-building it first when it is missing."""
    found = find_exe(version)
    if found is not None:
        return found
    with _lock(build_cache_root()):
        found = find_exe(version)  # built by whoever held the lock before us
        if found is not None:
            return found
        return asyncio.run(_build(version, jobs or os.cpu_count() or 1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python packaging/llama_windows.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--ensure", action="store_true", help="cross-build if missing; print path and DLLs")
    mode.add_argument("--print-path", action="store_true", help="print the path if built, else exit 1")
    ap.add_argument("--version", default=DEFAULT_VERSION, help="llama-cpp-python version")
    ap.add_argument("--jobs", type=int, default=None, help="parallel compile jobs (default: CPU count)")
    args = ap.parse_args(argv)
    if args.print_path:
        path = find_exe(args.version)
        if path is None:
            print(missing_reason(args.version), file=sys.stderr)
            return 1
        print(path)
        return 0
    from victor_gui.errors import EngineInstallError
    from victor_gui.services.engine_install import read_stamp

    t0 = time.monotonic()
    try:
        path = ensure(args.version, args.jobs)
        imports = check_imports(path)
    except (OSError, RuntimeError, EngineInstallError) as exc:
        print(f"[llama_windows] failed: {exc}", file=sys.stderr)
        for line in getattr(exc, "log_tail", ())[-20:]:
            print(f"  {line}", file=sys.stderr)
        return 1
    stamp = read_stamp(path.parent) or {}
    print(path)
    print(f"{path.stat().st_size / 2**20:.1f} MiB; imports {', '.join(imports)}")
    print(f"ensure took {time.monotonic() - t0:.1f} s; build took {stamp.get('build_seconds', '?')} s "
          f"on {stamp.get('built_at', '?')} with {stamp.get('jobs', '?')} jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
