"""Shared helper of the packaging tests."""

from __future__ import annotations

import os

import pytest


def need(what: str, ok: bool) -> None:
    """Skip (locally) or fail (under CI) when a tool the test needs is missing."""
    if ok:
        return
    msg = f"{what} is not installed (bash .ci/setup.sh test installs it)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)
