"""Shared fixtures for the model-manager tests: one probe client per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from victor_gui.providers.http import PROBE_TIMEOUTS, make_client


@pytest.fixture(autouse=True)
def patient_slowness_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a loaded CI machine a loopback answer can take over a second; only the test about
    slowness (which passes its own threshold) should see "degraded: slow"."""
    monkeypatch.setattr("victor_gui.servers.probe.DEFAULT_SLOW_S", 30.0)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(PROBE_TIMEOUTS) as c:
        yield c
