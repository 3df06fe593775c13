"""Where the llama-server build is cached, when it counts as present, and how --ensure fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.base import free_port
from tests.support import llama_build
from tests.support.llama_build import LLAMA_CPP_PYTHON_VERSION, STAMP_NAME

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in ("VICTOR_LLAMA_CACHE", "VICTOR_LLAMA_SERVER", "XDG_CACHE_HOME", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # Path.home() reads USERPROFILE on Windows, not HOME (the Windows test run failed here).
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "home"))
    return tmp_path


def _fake_binary(path: Path, *, stamp: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho fake\n")
    path.chmod(0o755)
    if stamp:
        (path.parent / STAMP_NAME).write_text('{"build_seconds": 1.0}')
    return path


def test_cache_location_follows_the_documented_precedence(clean_env: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    expected = f"engine-install/O0-native-off/{LLAMA_CPP_PYTHON_VERSION}/llama-server"
    assert llama_build.binary_path() == clean_env / "home/.cache/victor_gui/llama-server" / expected
    monkeypatch.setenv("XDG_CACHE_HOME", str(clean_env / "xdg"))
    assert llama_build.binary_path() == clean_env / "xdg/victor_gui/llama-server" / expected
    monkeypatch.setenv("VICTOR_LLAMA_CACHE", str(clean_env / "mine"))
    assert llama_build.binary_path() == clean_env / "mine" / expected


def test_a_binary_counts_only_with_its_stamp(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VICTOR_LLAMA_CACHE", str(clean_env / "c"))
    assert llama_build.find_binary() is None
    assert "tests.support.llama_build --ensure" in llama_build.missing_reason()
    path = _fake_binary(llama_build.binary_path(), stamp=False)
    assert llama_build.find_binary() is None  # a build that died before the stamp
    _fake_binary(path)
    assert llama_build.find_binary() == path
    assert llama_build.read_stamp() == {"build_seconds": 1.0}


def test_explicit_binary_overrides_the_cache(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VICTOR_LLAMA_SERVER", str(clean_env / "nowhere"))
    assert llama_build.find_binary() is None
    assert "VICTOR_LLAMA_SERVER" in llama_build.missing_reason()
    path = _fake_binary(clean_env / "bin/llama-server", stamp=False)
    monkeypatch.setenv("VICTOR_LLAMA_SERVER", str(path))
    assert llama_build.find_binary() == path


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.support.llama_build", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=50, check=False)


def _offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "VICTOR_LLAMA_SERVER")}
    # PyPI's JSON API pointed at a port nothing listens on: the sdist fetch fails at once, offline.
    env.update(VICTOR_LLAMA_CACHE=str(tmp_path / "cache"), VICTOR_PYPI_URL=f"http://127.0.0.1:{free_port()}",
               **extra)
    return env


def test_print_path_exits_1_when_missing_and_prints_the_path_when_built(tmp_path: Path) -> None:
    env = _offline_env(tmp_path)
    missing = _cli("--print-path", env=env)
    assert missing.returncode == 1 and "--ensure" in missing.stderr
    path = _fake_binary(tmp_path / "cache" / "engine-install" / "O0-native-off" / LLAMA_CPP_PYTHON_VERSION
                        / "llama-server")
    found = _cli("--print-path", env=env)
    assert (found.returncode, found.stdout.strip()) == (0, str(path))
    reused = _cli("--ensure", env=env)
    assert reused.returncode == 0 and reused.stdout.splitlines()[0] == str(path)


def test_a_failed_build_fails_setup_only_under_ci(tmp_path: Path) -> None:
    local = _cli("--ensure", env=_offline_env(tmp_path))
    assert local.returncode == 0, local.stderr
    assert "build failed" in local.stderr and "will skip" in local.stderr
    ci = _cli("--ensure", env=_offline_env(tmp_path, CI="true"))
    assert ci.returncode == 1
    assert "build failed" in ci.stderr
