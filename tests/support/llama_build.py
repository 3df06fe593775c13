"""Build (once) and locate the real llama.cpp ``llama-server`` the integration tier runs against.

The tier's binary is built by the app's own command, ``victor-gui engine install`` (run as a
subprocess: the pinned ``llama-cpp-python`` sdist from PyPI, sha256 checked, only
``vendor/llama.cpp`` extracted, cmake for the ``llama-server`` target alone -- CPU only, static
libs, no web UI, no curl/OpenSSL). So the one build CI pays for is also the proof that
``engine install`` builds a working server. This module only chooses the test flavour:
``--no-native`` (``GGML_NATIVE=OFF``) so the cached binary survives a CPU change, and ``--opt O0``:
the build is ~40 % faster than ``-O3`` and the tiny test models still decode at well over a
thousand tokens per second.

The binary is cached outside the repository (never commit build outputs), in the prefix the
command installs into::

    ${VICTOR_LLAMA_CACHE:-${XDG_CACHE_HOME:-~/.cache}/victor_gui/llama-server}/engine-install/O0-native-off/<version>/llama-server

next to its ``build-stamp.json`` (version, flags, build seconds; written last). A present binary
with its stamp is reused, so ``--ensure`` costs well under a second after the first build.

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
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from victor_gui.errors import EngineInstallError
from victor_gui.services.engine_build import cmake_flags
from victor_gui.services.engine_cross import build_cache_root
from victor_gui.services.engine_install import STAMP_NAME
from victor_gui.services.engine_sdist import DEFAULT_VERSION, sdist_name

#: The llama-cpp-python release whose vendored llama.cpp we build. Bump deliberately (in
#: engine_sdist, with its sha256): the integration tier pins the server's behaviour to it.
LLAMA_CPP_PYTHON_VERSION = DEFAULT_VERSION
OPT_LEVEL = "O0"
NATIVE = False
CMAKE_FLAGS = cmake_flags(OPT_LEVEL, NATIVE)


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where the llama.cpp tier must not skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def victor_cache_home() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/victor_gui``: where test tiers keep what they download or
    build, outside the repository."""
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "victor_gui"


def cache_root() -> Path:
    """Folder holding one sub-folder per built version (shared with the Windows cross build)."""
    return build_cache_root()


def install_prefix() -> Path:
    """The ``--prefix`` the test flavour is installed into (one folder per version below it)."""
    return cache_root() / "engine-install" / f"{OPT_LEVEL}-native-{'on' if NATIVE else 'off'}"


def build_dir(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    """Where the binary of ``version`` lives once built."""
    return install_prefix() / version


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


def kept_sdist(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    """Where a downloaded sdist is kept, so a rebuild needs no network."""
    return cache_root() / f"work-{version}" / "dl" / sdist_name(version)


def install_command(version: str = LLAMA_CPP_PYTHON_VERSION, jobs: int | None = None) -> list[str]:
    """The ``victor-gui engine install`` command line that builds the tier's binary."""
    args = [sys.executable, "-m", "victor_gui", "engine", "install", "--version", version,
            "--prefix", str(install_prefix()), "--opt", OPT_LEVEL, "--jobs", str(jobs or os.cpu_count() or 1),
            "--force"]  # a llama-server on PATH (a system package) must not stand in for the build
    if not NATIVE:
        args.append("--no-native")
    if kept_sdist(version).is_file():
        args += ["--sdist", str(kept_sdist(version))]
    return args


def build(version: str = LLAMA_CPP_PYTHON_VERSION, jobs: int | None = None) -> Path:
    """Build and install ``llama-server`` with ``victor-gui engine install`` (its progress goes to
    stderr); returns the cached binary's path."""
    root = cache_root()
    target = binary_path(version)
    with _build_lock(root):
        if find_binary(version) == target:
            return target
        _log(" ".join(install_command(version, jobs)))
        done = subprocess.run(install_command(version, jobs), cwd=Path(__file__).resolve().parents[2],
                              stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0 or find_binary(version) != target:
            raise RuntimeError(f"victor-gui engine install exited {done.returncode} "
                               f"without installing {target}")
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
          f"on {stamp.get('built_at', '?')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
