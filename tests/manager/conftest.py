"""Shared fixtures for the model-manager tests: one probe client per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from victor_gui.providers.http import PROBE_TIMEOUTS, make_client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(PROBE_TIMEOUTS) as c:
        yield c
