"""Suite-wide fixtures: offscreen Qt, a clean breaker registry and redactor per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _fresh_provider_state() -> Iterator[None]:
    from victor_gui.core.redact import forget_secrets
    from victor_gui.providers.resilience import BREAKERS

    BREAKERS.clear()
    forget_secrets()
    yield
    BREAKERS.clear()
