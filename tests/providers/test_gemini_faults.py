"""Gemini fault matrix (Google AI shapes): typed errors, retries only before output."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers import cloud_faults as cf
from tests.providers.cloud_sims import Sleeps
from tests.servers.gemini import make_server
from victor_gui.providers.protocols.gemini import GeminiProvider
from victor_gui.providers.registry import ProviderRegistry

KEY = "AIzaSyD-faultmatrix-key-00001"


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def h(sleeps: Sleeps) -> Iterator[cf.Harness]:
    with make_server(api_key=KEY) as server:
        provider = ProviderRegistry.create(
            "google",
            api_key=KEY,
            base_url=server.url,
            **cf.fault_options(sleeps),
        )
        assert isinstance(provider, GeminiProvider)
        yield cf.Harness(server, provider, "gemini-sim-flash", "Content")


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("fault", sorted(cf.HTTP_FAULTS))
async def test_http_faults(h: cf.Harness, fault: str, stream: bool, sleeps: Sleeps) -> None:
    error = await cf.http_fault(h, fault, stream=stream)
    if fault == "rate_limit":  # the wait comes from google.rpc.RetryInfo, not a header
        assert error.retry_after == 1.0 and sleeps.delays == [1.0, 1.0]
    if fault == "unauthorized":
        assert error.status_code == 400  # API_KEY_INVALID
    if fault == "loading":
        assert error.status_code == 503
    await h.provider.close()


@pytest.mark.parametrize("fault", sorted(cf.MID_FAULTS))
async def test_faults_after_output(h: cf.Harness, fault: str) -> None:
    await cf.mid_fault(h, fault)
    await h.provider.close()


@pytest.mark.parametrize("scenario", sorted(cf.SCENARIOS))
async def test_scenarios(h: cf.Harness, scenario: str) -> None:
    await cf.SCENARIOS[scenario](h)
    await h.provider.close()
