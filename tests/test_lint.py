"""CI gate: ruff over the code and tests, mypy over the whole package (strict on the Qt-free
core, every function body checked in the Qt views; per pyproject)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MYPY_TARGETS = ["victor_gui"]


def _run(module: str, *args: str, timeout: float = 50) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed here (pip install -e '.[dev]' brings it)")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "--no-fix", "--output-format", "concise", "victor_gui", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(200)  # a cold run on a busy 2-core CI machine takes far longer than a warm one
def test_mypy_is_clean() -> None:
    result = _run("mypy", *MYPY_TARGETS, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
