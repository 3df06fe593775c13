"""Build (once) and locate the real llama.cpp ``llama-server`` the integration tier runs against.

PyPI has no wheel of ``llama-cpp-python``, but its sdist vendors all of llama.cpp including
``tools/server``. We fetch that sdist with pip (the only network the project uses is the package
registries), configure cmake for the ``llama-server`` target alone -- CPU only, static libs, no
web UI, no curl/OpenSSL, ``GGML_NATIVE=OFF`` so the cached binary survives a CPU change -- and
compile at ``-O0``: the build is ~40 % faster than ``-O3`` and the tiny test models still decode
at well over a thousand tokens per second.

The binary is cached outside the repository (never commit build outputs)::

    ${VICTOR_LLAMA_CACHE:-${XDG_CACHE_HOME:-~/.cache}/victor_gui/llama-server}/<version>-O0/llama-server

next to a ``build-stamp.json`` (version, flags, build seconds). A present binary with its stamp
is reused, so ``--ensure`` costs well under a second after the first build.

``VICTOR_LLAMA_SERVER=/path/to/llama-server`` points the tier at a binary built elsewhere.

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
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

#: The llama-cpp-python release whose vendored llama.cpp we build. Bump deliberately: the
#: integration tier pins the server's observable behaviour to this version.
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
OPT_LEVEL = "O0"
STAMP_NAME = "build-stamp.json"

CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    f"-DCMAKE_C_FLAGS_RELEASE=-{OPT_LEVEL} -DNDEBUG",
    f"-DCMAKE_CXX_FLAGS_RELEASE=-{OPT_LEVEL} -DNDEBUG",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
)


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where the llama.cpp tier must not skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def victor_cache_home() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/victor_gui``: where test tiers keep what they download or
    build, outside the repository."""
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "victor_gui"


def cache_root() -> Path:
    """Folder holding one sub-folder per built version."""
    explicit = os.environ.get("VICTOR_LLAMA_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    return victor_cache_home() / "llama-server"


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


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    _log("$ " + " ".join(cmd))
    subprocess.run(cmd, cwd=cwd, check=True)


def _fetch_sdist(version: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob(f"llama_cpp_python-{version}.tar.gz"))
    if not found:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:",
              "--dest", str(dest), f"llama-cpp-python=={version}"])
        found = sorted(dest.glob(f"llama_cpp_python-{version}.tar.gz"))
    if not found:
        raise RuntimeError(f"pip download left no llama_cpp_python-{version}.tar.gz in {dest}")
    return found[0]


def _extract_llama_cpp(sdist: Path, dest: Path) -> Path:
    """Extract only ``vendor/llama.cpp`` from the sdist; returns its path."""
    top = sdist.name.removesuffix(".tar.gz")
    src = dest / top / "vendor" / "llama.cpp"
    if (src / "tools" / "server" / "server.cpp").is_file():
        return src
    prefix = f"{top}/vendor/llama.cpp/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(dest, members=members, filter="data")
    if not (src / "tools" / "server" / "server.cpp").is_file():
        raise RuntimeError(f"{sdist.name} has no vendor/llama.cpp/tools/server/server.cpp")
    return src


def build(version: str = LLAMA_CPP_PYTHON_VERSION, jobs: int | None = None) -> Path:
    """Download, configure and compile ``llama-server``; returns the cached binary's path."""
    root = cache_root()
    target = binary_path(version)
    with _build_lock(root):
        if find_binary(version) == target:
            return target
        work = root / f"work-{version}"
        t0 = time.monotonic()
        sdist = _fetch_sdist(version, work / "dl")
        src = _extract_llama_cpp(sdist, work / "src")
        t1 = time.monotonic()
        cmake_build = work / f"build-{OPT_LEVEL}"
        _run(["cmake", "-S", str(src), "-B", str(cmake_build), *CMAKE_FLAGS])
        n = jobs or os.cpu_count() or 1
        _run(["cmake", "--build", str(cmake_build), "--target", "llama-server", "-j", str(n)])
        t2 = time.monotonic()
        built = cmake_build / "bin" / "llama-server"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        shutil.copy2(built, tmp)
        os.replace(tmp, target)
        stamp = {
            "llama_cpp_python_version": version,
            "opt": OPT_LEVEL,
            "cmake_flags": list(CMAKE_FLAGS),
            "jobs": n,
            "fetch_seconds": round(t1 - t0, 1),
            "build_seconds": round(t2 - t1, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (target.parent / STAMP_NAME).write_text(json.dumps(stamp, indent=2) + "\n")
        # The source tree and objects are ~1 GB; the sdist is kept so a rebuild is offline.
        shutil.rmtree(work / "src", ignore_errors=True)
        shutil.rmtree(cmake_build, ignore_errors=True)
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
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
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
