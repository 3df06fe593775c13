"""Fixtures for the packaging tests: the build script as a module, the tools, a cached bundle.

Missing tools (makensis, wine, PyInstaller) skip the tests on a developer machine and fail them
under CI (``CI`` set), where ``.ci/setup.sh test`` installs them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.packaging.support import load_packaging_script, need
from tests.packaging.wine import WinePrefix, wine_binary

ROOT = Path(__file__).resolve().parents[2]
BUNDLE_CACHE = ROOT / "build" / "test-bundle"


@pytest.fixture(scope="session")
def build() -> ModuleType:
    """``packaging/build.py`` imported as a module."""
    return load_packaging_script("build")


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WinePrefix]:
    """A fresh Wine prefix (nothing but Wine's own DLLs), shut down after the module."""
    binary = wine_binary()
    need("wine (apt: wine wine64)", binary is not None)
    assert binary is not None
    prefix = WinePrefix(tmp_path_factory.mktemp("wine"), binary)
    prefix.boot()
    yield prefix
    prefix.shutdown()


@pytest.fixture(scope="session")
def makensis() -> str:
    found = shutil.which("makensis")
    need("makensis (apt: nsis)", found is not None)
    return str(found)


def _bundle_key() -> str:
    """A hash of everything that goes into the bundle: sources, spec, tool and library versions."""
    h = hashlib.sha256()
    files = [*sorted((ROOT / "victor_gui").rglob("*.py")), *sorted((ROOT / "resources").iterdir()),
             *sorted((ROOT / "packaging").glob("*.py")), ROOT / "packaging" / "victor_gui.spec",
             ROOT / "pyproject.toml"]
    for path in files:
        if path.is_file():
            h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    h.update(sys.version.encode())
    for dist in ("pyinstaller", "PySide6-Essentials", "pydantic", "httpx"):
        try:
            h.update(f"{dist}={importlib.metadata.version(dist)}".encode())
        except importlib.metadata.PackageNotFoundError:
            pass
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def linux_bundle(build: ModuleType) -> Path:
    """The app frozen by ``packaging/victor_gui.spec`` on this machine, built once per source
    state: cached in build/test-bundle/<hash>, older builds there are removed."""
    need("PyInstaller (pip install -e '.[packaging]')", importlib.util.find_spec("PyInstaller") is not None)
    key = _bundle_key()
    out = BUNDLE_CACHE / key
    bundle = out / "dist" / build.EXE_NAME
    if not (bundle / build.EXE_NAME).is_file():
        if BUNDLE_CACHE.is_dir():
            for old in BUNDLE_CACHE.iterdir():
                shutil.rmtree(old, ignore_errors=True)
        proc = subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "bundle",
                               "--dist", str(out / "dist"), "--work", str(out / "work")],
                              capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        shutil.rmtree(out / "work", ignore_errors=True)
    return bundle


@pytest.fixture(scope="session")
def dummy_payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for the Windows bundle (which only a Windows runner can build): the same top
    level (two exes and _internal/), with a library large enough to make EstimatedSize count."""
    root = tmp_path_factory.mktemp("payload") / "victor-gui"
    (root / "_internal" / "PySide6").mkdir(parents=True)
    (root / "victor-gui.exe").write_bytes(b"MZ dummy gui exe")
    (root / "victor-gui-cli.exe").write_bytes(b"MZ dummy cli exe")
    (root / "_internal" / "python312.dll").write_bytes(os.urandom(300_000))
    (root / "_internal" / "PySide6" / "Qt6Core.dll").write_bytes(os.urandom(50_000))
    return root


@pytest.fixture(scope="session")
def installer_exe(build: ModuleType, makensis: str, dummy_payload: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``packaging/installer.nsi`` compiled around the dummy payload by ``build.py installer``."""
    out = tmp_path_factory.mktemp("installer") / build.installer_name(build.app_version())
    return build.installer(dummy_payload, out)
