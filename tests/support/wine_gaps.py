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


#: Hugging Face's cache links ``snapshots/<rev>/<file>`` to ``blobs/<sha256>``; under Wine no such
#: link can be made (real Windows makes it with Developer Mode or as administrator, and without
#: either huggingface_hub puts the file itself in the snapshot, a layout tested on every OS).
NO_SYMLINKS = "CreateSymbolicLinkW reports success and makes no link (Wine 8.0)"


#: Under Wine each Windows Python child takes seconds to start (10 s and more on two loaded
#: cores), so a test's own time limit is stretched by this factor, and never below the run's.
WINE_TIMEOUT_FACTOR = 5


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A pytest plugin for the Windows run under Wine (``-p tests.support.wine_gaps``): a test's
    ``@pytest.mark.timeout(N)`` becomes ``N * WINE_TIMEOUT_FACTOR`` (at least the run's own
    ``timeout``). pytest-timeout's only method on Windows ends the whole run, with no report, at
    the first test past its limit (seen: test_instance_lock's four-children rounds past 120 s)."""
    if not UNDER_WINE:
        return
    floor = float(config.getini("timeout") or 0)
    for item in items:
        mark = item.get_closest_marker("timeout")
        if mark is not None and mark.args:
            stretched = max(float(mark.args[0]) * WINE_TIMEOUT_FACTOR, floor)
            item.add_marker(pytest.mark.timeout(stretched), append=False)
