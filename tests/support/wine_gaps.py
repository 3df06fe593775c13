"""Where the Windows test run under Wine differs from real Windows (issue 15's Windows tier).

``UNDER_WINE`` is true only when the tests run with Windows Python under Wine, never on Linux or
on a real Windows runner. A test that meets a gap of Wine itself (not of the app) is marked with
:func:`wine_gap`, whose reason says what Wine lacks; the README's Windows section lists them.
"""

from __future__ import annotations

import sys

import pytest


def _under_wine() -> bool:
    if sys.platform != "win32":
        return False
    import ctypes

    try:
        return hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")
    except OSError:
        return False


UNDER_WINE = _under_wine()


def wine_gap(reason: str) -> pytest.MarkDecorator:
    """Skip under Wine only, saying which Wine limitation the test meets."""
    return pytest.mark.skipif(UNDER_WINE, reason=f"Wine gap: {reason}")
