"""Anthropic fault matrix: every simulator fault mode becomes the right typed error, retried only
before output (counts from the simulator's request log)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers import cloud_faults as cf
from tests.providers.cloud_sims import Sleeps
from tests.servers.anthropic import make_server
from victor_gui.errors import ProviderServerError
from victor_gui.providers.protocols.anthropic import AnthropicProvider
from victor_gui.providers.registry import ProviderRegistry

KEY = "sk-ant-api03-faultmatrix00001"


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def h(sleeps: Sleeps) -> Iterator[cf.Harness]:
    with make_server(api_key=KEY) as server:
        provider = ProviderRegistry.create(
            "anthropic",
            api_key=KEY,
            base_url=server.url,
            **cf.fault_options(sleeps),
        )
        assert isinstance(provider, AnthropicProvider)
        yield cf.Harness(server, provider, "claude-sim-4", "/v1/messages")


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("fault", sorted(cf.HTTP_FAULTS))
async def test_http_faults(h: cf.Harness, fault: str, stream: bool, sleeps: Sleeps) -> None:
    error = await cf.http_fault(h, fault, stream=stream)
    if fault == "rate_limit":
        assert error.retry_after == 1.0 and sleeps.delays == [1.0, 1.0]
    if fault == "loading":  # 529 overloaded_error
        assert error.status_code == 529 and "overloaded" in error.message.lower()
    await h.provider.close()


@pytest.mark.parametrize("fault", sorted(cf.MID_FAULTS))
async def test_faults_after_output(h: cf.Harness, fault: str) -> None:
    error = await cf.mid_fault(h, fault)
    if fault == "midstream_error":
        assert isinstance(error, ProviderServerError) and "Overloaded" in error.message
    await h.provider.close()


@pytest.mark.parametrize("scenario", sorted(cf.SCENARIOS))
async def test_scenarios(h: cf.Harness, scenario: str) -> None:
    await cf.SCENARIOS[scenario](h)
    await h.provider.close()


async def test_error_event_before_output_is_retried(h: cf.Harness) -> None:
    """An ``error`` event before any content is retried like a 529: nothing reached the caller."""
    from tests.servers.base import Fault, Script

    h.server.script(Script(text="", fault=Fault.MIDSTREAM_ERROR, fail_after=0))
    chunks, error = await cf.collect(h.provider.stream(cf.HI, model=h.model))
    assert error is None and cf.text_of(chunks) == h.server.default_script.text
    assert h.count() == 2
    await h.provider.close()
