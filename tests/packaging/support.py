"""Shared helper of the packaging tests."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest


def need(what: str, ok: bool) -> None:
    """Skip (locally) or fail (under CI) when a tool the test needs is missing."""
    if ok:
        return
    msg = f"{what} is not installed (bash .ci/setup.sh test installs it)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def load_packaging_script(name: str) -> ModuleType:
    """``packaging/<name>.py`` imported as a module (``packaging/`` is not a package: its name
    would shadow the PyPI ``packaging`` library)."""
    path = Path(__file__).resolve().parents[2] / "packaging" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"victor_packaging_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def signing_env(folder: Path) -> dict[str, str]:
    """A throwaway self-signed code-signing key and certificate in ``folder``, as the settings
    ``build.py sign`` reads (key-file backend, no timestamp server: tests stay off the network)."""
    need("osslsigncode and openssl", bool(shutil.which("osslsigncode") and shutil.which("openssl")))
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=Victor GUI Test Signing"],
                   capture_output=True, timeout=60, check=True)
    return {"PATH": "/usr/bin:/bin", "SIGN_KEY_FILE": str(key), "SIGN_CERT_FILE": str(cert),
            "SIGN_NO_TIMESTAMP": "1"}
