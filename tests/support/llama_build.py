"""Build (once) and locate the real llama.cpp ``llama-server`` the integration tier runs against.

The recipe is the app's own (:mod:`victor_gui.services.engine_install`, the one behind
``victor-gui engine install``): the pinned ``llama-cpp-python`` sdist from PyPI (sha256
checked), only ``vendor/llama.cpp`` extracted, cmake for the ``llama-server`` target alone --
CPU only, static libs, no web UI, no curl/OpenSSL. This module only chooses the test flavour:
``GGML_NATIVE=OFF`` so the cached binary survives a CPU change, and ``-O0``: the build is ~40 %
faster than ``-O3`` and the tiny test models still decode at well over a thousand tokens per
second.

The binary is cached outside the repository (never commit build outputs)::

    ${VICTOR_LLAMA_CACHE:-${XDG_CACHE_HOME:-~/.cache}/victor_gui/llama-server}/<version>-O0/llama-server

next to a ``build-stamp.json`` (version, flags, build seconds). A present binary with its stamp
is reused, so ``--ensure`` costs well under a second after the first build.

``VICTOR_LLAMA_SERVER=/path/to/llama-server`` points the tier at a binary built elsewhere;
``VICTOR_PYPI_URL`` at a PyPI mirror. The sdist stays in ``<cache>/work-<version>/dl`` so a
rebuild needs no network.

CLI::

    python -m tests.support.llama_build --ensure      # build if missing; print path + build time
    python -m tests.support.llama_build --print-path  # print the path if built, else exit 1

Under ``CI=true`` a failed build exits non-zero (the tier is mandatory there); locally a missing
binary only makes the tier skip, with :func:`missing_reason` as the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from victor_gui.errors import EngineInstallError
from victor_gui.services.engine_build import EngineProgress, cmake_flags
from victor_gui.services.engine_cross import build_cache_root
from victor_gui.services.engine_install import STAMP_NAME, build_from_sdist, fetch_sdist
from victor_gui.services.engine_sdist import DEFAULT_VERSION

#: The llama-cpp-python release whose vendored llama.cpp we build. Bump deliberately (in
#: engine_sdist, with its sha256): the integration tier pins the server's behaviour to it.
LLAMA_CPP_PYTHON_VERSION = DEFAULT_VERSION
OPT_LEVEL = "O0"
NATIVE = False
CMAKE_FLAGS = cmake_flags(OPT_LEVEL, NATIVE)


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where the llama.cpp tier must not skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def cache_root() -> Path:
    """Folder holding one sub-folder per built version (shared with the Windows cross build)."""
    return build_cache_root()


def build_dir(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    """Where the binary of ``version`` lives once built."""
    return cache_root() / f"{version}-{OPT_LEVEL}"


def binary_path(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    """Path the cached binary has (whether or not it exists yet)."""
    return build_dir(version) / "llama-server"


def find_binary(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path | None:
    """The usable ``llama-server``: ``$VICTOR_LLAMA_SERVER`` if set, else the cached build.

    A cached binary counts only with its stamp file, which is written last: a build that died
    half-way never passes for a good one.
    """
    override = os.environ.get("VICTOR_LLAMA_SERVER")
    if override:
        path = Path(override).expanduser()
        return path if path.is_file() and os.access(path, os.X_OK) else None
    path = binary_path(version)
    if path.is_file() and os.access(path, os.X_OK) and (path.parent / STAMP_NAME).is_file():
        return path
    return None


def missing_reason() -> str:
    """Why the tier cannot run, phrased as a skip reason that says how to fix it."""
    override = os.environ.get("VICTOR_LLAMA_SERVER")
    if override:
        return f"VICTOR_LLAMA_SERVER={override} is not an executable file"
    return (
        f"no llama-server at {binary_path()}; build it (~5-10 min, needs cmake and g++) with "
        "`.venv/bin/python -m tests.support.llama_build --ensure`"
    )


def binary_for_tests() -> Path:
    """The binary for a test of the llama.cpp tier: skip when it is missing, fail under CI, where
    the tier is mandatory."""
    import pytest  # here, not at the top: the build script itself runs without pytest

    path = find_binary()
    if path is None:
        if in_ci():
            pytest.fail(f"CI=true and the llama.cpp tier is mandatory: {missing_reason()}")
        pytest.skip(missing_reason())
    return path


def read_stamp(version: str = LLAMA_CPP_PYTHON_VERSION) -> dict[str, object] | None:
    """The build stamp of the cached binary, or None."""
    stamp = build_dir(version) / STAMP_NAME
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    # Several worktrees (or a CI matrix on one runner) may ask for the same build at once; one
    # builds, the others wait and then find the finished binary.
    # fcntl is POSIX-only: imported here, not at the top, so the Windows test run can collect
    # this module (issue 15); on Windows msvcrt's byte-range lock does the same job.
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as fh:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
            return
        import fcntl

        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _log(msg: str) -> None:
    print(f"[llama_build] {msg}", file=sys.stderr, flush=True)


def _show(event: EngineProgress) -> None:
    # A line per build step and per other event; the whole output is in <cache>/work-<version>/build.log.
    if event.phase != "build":
        _log(f"{event.phase}: {event.line}")
    elif event.percent is not None:
        _log(event.line)


async def _build(version: str, work: Path, jobs: int) -> float:
    t0 = time.monotonic()
    sdist: Path | None = None
    async for event in fetch_sdist(version, work / "dl"):
        if event.phase != "download" or event.percent in (0.0, 100.0):
            _show(event)
        sdist = event.path or sdist
    if sdist is None:
        raise EngineInstallError(f"no sdist of llama-cpp-python {version}", reason="download")
    fetch_seconds = round(time.monotonic() - t0, 1)
    async for event in build_from_sdist(sdist, work_dir=work, dest_dir=build_dir(version), opt=OPT_LEVEL,
                                        native=NATIVE, jobs=jobs, log_path=work / "build.log",
                                        stamp_extra={"fetch_seconds": fetch_seconds}):
        _show(event)
    return fetch_seconds


def build(version: str = LLAMA_CPP_PYTHON_VERSION, jobs: int | None = None) -> Path:
    """Download (unless the sdist is kept), configure and compile ``llama-server``; returns the
    cached binary's path."""
    root = cache_root()
    target = binary_path(version)
    with _build_lock(root):
        if find_binary(version) == target:
            return target
        asyncio.run(_build(version, root / f"work-{version}", jobs or os.cpu_count() or 1))
        return target


def ensure(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    """The binary, building it first if it is missing."""
    return find_binary(version) or build(version)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.support.llama_build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--ensure", action="store_true", help="build if missing, print the path")
    mode.add_argument("--print-path", action="store_true", help="print the path if built")
    ap.add_argument("--version", default=LLAMA_CPP_PYTHON_VERSION, help="llama-cpp-python version")
    args = ap.parse_args(argv)

    if args.print_path:
        path = find_binary(args.version)
        if path is None:
            print(missing_reason(), file=sys.stderr)
            return 1
        print(path)
        return 0

    t0 = time.monotonic()
    try:
        path = ensure(args.version)
    except (OSError, RuntimeError, EngineInstallError) as exc:
        _log(f"build failed: {exc}")
        if in_ci():
            return 1
        # Locally the tier just skips; setup must not fail for lack of a compiler.
        _log("continuing without llama-server: the llama.cpp integration tier will skip")
        return 0
    stamp = read_stamp(args.version) or {}
    print(path)
    print(f"ensure took {time.monotonic() - t0:.1f} s; build took {stamp.get('build_seconds', '?')} s "
          f"(+{stamp.get('fetch_seconds', '?')} s fetch) on {stamp.get('built_at', '?')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
