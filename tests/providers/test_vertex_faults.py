"""Vertex AI fault matrix: the Gemini code path on the Vertex route with bearer-token auth, so
the auth failure is Vertex's 401 UNAUTHENTICATED and an unknown model its Publisher Model 404."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.providers import cloud_faults as cf
from tests.servers.gemini import make_server
from victor_gui.providers.protocols.vertex import VertexProvider
from victor_gui.providers.registry import ProviderRegistry

TOKEN = "ya29.vertex-faultmatrix-token"


class Token:
    project = "fault-proj"

    def fetch(self) -> tuple[str, float | None]:
        return TOKEN, time.time() + 3600


@pytest.fixture
def h() -> Iterator[cf.Harness]:
    with make_server(bearer_token=TOKEN) as server:
        provider = ProviderRegistry.create(
            "vertex",
            base_url=server.url,
            token_source=Token(),
            **cf.fault_options(),
        )
        assert isinstance(provider, VertexProvider)
        yield cf.Harness(server, provider, "gemini-sim-flash", "/publishers/google/models/")


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("fault", sorted(cf.HTTP_FAULTS))
async def test_http_faults(h: cf.Harness, fault: str, stream: bool) -> None:
    error = await cf.http_fault(h, fault, stream=stream)
    if fault == "unauthorized":
        assert error.status_code == 401
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in h.server.requests)
    await h.provider.close()


@pytest.mark.parametrize("fault", sorted(cf.MID_FAULTS))
async def test_faults_after_output(h: cf.Harness, fault: str) -> None:
    await cf.mid_fault(h, fault)
    await h.provider.close()


@pytest.mark.parametrize("scenario", sorted(cf.SCENARIOS))
async def test_scenarios(h: cf.Harness, scenario: str) -> None:
    await cf.SCENARIOS[scenario](h)
    await h.provider.close()
