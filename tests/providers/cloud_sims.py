"""Helpers shared by the cloud-protocol tests: providers wired to a simulator with fast retries,
and a collector that records the delays the retry loop asked for instead of sleeping them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.servers.base import RecordedRequest, SimServer
from tests.servers.bedrock import AwsKeys
from victor_gui.providers.resilience import RetryPolicy
from victor_gui.providers.types import StreamChunk, ToolDefinition

FAST = RetryPolicy(max_retries=2, base_delay=0.0, max_delay=0.0, jitter=0.0)
BEDROCK_MODEL = "anthropic.claude-sim-v1:0"
LOOKUP_TOOL = ToolDefinition(
    name="lookup",
    description="Look up",
    parameters={"type": "object", "properties": {"q": {"type": "string"}}},
)
BEDROCK_CREDS = AwsKeys("AKIASIMULATOR0000001", "simulated/secret/key/0000000000000000000")


def bedrock_provider(server: SimServer, **kw: Any) -> Any:
    """A Bedrock provider signing with :data:`BEDROCK_CREDS` against ``server`` (eu-west-1)."""
    from victor_gui.providers.protocols.bedrock import BedrockProvider
    from victor_gui.providers.registry import ProviderRegistry

    p = ProviderRegistry.create(
        "aws",
        base_url=server.url,
        aws_access_key_id=BEDROCK_CREDS.access_key,
        aws_secret_access_key=BEDROCK_CREDS.secret_key,
        region="eu-west-1",
        **kw,
    )
    assert isinstance(p, BedrockProvider)
    return p


def clear_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the machine's own AWS setup (keys, profiles, instance metadata) leaks in."""
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class Sleeps:
    """A ``sleep`` that records what it was asked for and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def posts(server: SimServer, fragment: str = "") -> list[RecordedRequest]:
    """POST requests the simulator received whose path contains ``fragment``."""
    return [r for r in server.requests if r.method == "POST" and fragment in r.path]


async def collect(stream: AsyncIterator[StreamChunk]) -> tuple[list[StreamChunk], BaseException | None]:
    """Every chunk of ``stream`` and the exception that ended it (None when it finished)."""
    chunks: list[StreamChunk] = []
    try:
        async for chunk in stream:
            chunks.append(chunk)
    except Exception as exc:  # the test asserts on the type
        return chunks, exc
    return chunks, None


def text_of(chunks: list[StreamChunk]) -> str:
    return "".join(c.content for c in chunks)


def reasoning_of(chunks: list[StreamChunk]) -> str:
    return "".join(c.reasoning for c in chunks)


async def wait_for(predicate: Any, within: float = 3.0) -> bool:
    """Poll ``predicate()`` until true or ``within`` seconds pass."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return bool(predicate())
