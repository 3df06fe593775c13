"""Every reply bounded in bytes and time (issue 16, findings 3 and 9), against real hostile
servers on loopback (tests/providers/hostile_http.py) and the real client the app builds for an
endpoint (``make_endpoint_client`` with the endpoint's own idle and deadline settings).

Each case: the provider ends with a typed error, within about twice its deadline, and the
process's resident memory grows by little (the body, line and error caps, not the reply's size).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.providers import hostile_http as hh
from victor_gui.config.settings import Endpoint
from victor_gui.errors import (
    InvalidResponseError,
    ProviderError,
    ProviderServerError,
    ProviderTimeoutError,
    ResponseStalledError,
)
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.bounded import LONG_TRANSFER, BoundedClient
from victor_gui.providers.endpoint_access import EndpointAccess, make_endpoint_client
from victor_gui.providers.http import transport_error
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.resilience import RetryPolicy, call_with_retry
from victor_gui.providers.streaming import iter_lines, iter_ndjson
from victor_gui.providers.types import Message
from victor_gui.services.endpoint_providers import endpoint_access

READ_S = 1.0  # first-byte wait
IDLE_S = 1.0  # silence allowed once a reply began
DEADLINE_S = 2.5  # the whole exchange
MAX_GROWTH_MIB = 160  # 16 MiB body cap or 8 MiB line cap, times copies, plus the allocator's slack
HI = [Message(role="user", content="hi")]
RETRIES = RetryPolicy(max_retries=3, base_delay=0.0, jitter=0.0)


@dataclass(frozen=True)
class Kind:
    """One provider protocol: how to build it on a base URL and what its streams look like."""

    name: str
    suffix: str  # base URL path
    stream_type: str
    line_prefix: bytes  # what starts a stream line (SSE "data: ")

    def make(self, url: str, **kwargs: Any) -> BaseProvider:
        client = make_endpoint_client(EndpointAccess(
            url + self.suffix, read_timeout_s=READ_S, idle_timeout_s=IDLE_S, deadline_s=DEADLINE_S))
        extra = {"api_key": "sk-ant-hostile-test-0001"} if self.name == "anthropic" else {}
        return ProviderRegistry.create(self.name, base_url=url + self.suffix, timeout=READ_S,
                                       http_client=client, retry_policy=RETRIES, **extra, **kwargs)


KINDS = [
    Kind("llamacpp", "/v1", "text/event-stream", b"data: "),
    Kind("ollama", "", "application/x-ndjson", b""),
    Kind("anthropic", "", "text/event-stream", b"data: "),
]
MODES = ["chat", "stream"]


async def _call(provider: BaseProvider, mode: str) -> None:
    if mode == "chat":
        await provider.chat(HI, model="m")
    else:
        async for _ in provider.stream(HI, model="m"):
            pass


@dataclass
class Outcome:
    error: ProviderError
    seconds: float
    growth_mib: float
    requests: int


async def _run(kind: Kind, mode: str, writer: hh.Writer) -> Outcome:
    async with hh.serve(writer) as server:
        provider = kind.make(server.url)
        try:
            with hh.PeakRSS() as rss:
                started = time.monotonic()
                with pytest.raises(ProviderError) as caught:
                    await _call(provider, mode)
                seconds = time.monotonic() - started
        finally:
            await provider.close()
            await provider.http.aclose()
    print(f"{kind.name}/{mode}: {type(caught.value).__name__} in {seconds:.2f} s, "
          f"peak RSS +{rss.growth_mib:.0f} MiB, {server.requests} request(s) at "
          f"{[round(t - started, 2) for t in server.times]}: {caught.value.message[:80]!r}")
    return Outcome(caught.value, seconds, rss.growth_mib, server.requests)


Case = Callable[[Kind, str], Awaitable[None]]
params = pytest.mark.parametrize(("kind", "mode"), [(k, m) for k in KINDS for m in MODES],
                                 ids=[f"{k.name}-{m}" for k in KINDS for m in MODES])


@params
async def test_gzip_bomb_is_capped_by_decoded_size(kind: Kind, mode: str) -> None:
    ctype = "application/json" if mode == "chat" else kind.stream_type
    out = await _run(kind, mode, hh.gzip_bomb("200 OK", ctype))
    assert isinstance(out.error, InvalidResponseError)
    assert "exceeded" in out.error.message and "MiB" in out.error.message
    assert out.requests == 1  # not worth asking again
    assert out.seconds < DEADLINE_S
    assert out.growth_mib < MAX_GROWTH_MIB


@params
async def test_gzip_bomb_error_body_is_read_only_to_its_cap(kind: Kind, mode: str) -> None:
    out = await _run(kind, mode, hh.gzip_bomb("500 Internal Server Error", "text/plain"))
    assert isinstance(out.error, ProviderServerError)
    assert out.error.status_code == 500
    assert out.seconds < DEADLINE_S
    assert out.growth_mib < MAX_GROWTH_MIB


@params
async def test_endless_error_body_is_read_only_to_its_cap(kind: Kind, mode: str) -> None:
    out = await _run(kind, mode, hh.endless("500 Internal Server Error", "text/plain"))
    assert isinstance(out.error, ProviderServerError)
    assert out.error.message.startswith("HTTP 500: aaaa")
    assert len(out.error.message) < 70_000
    assert out.seconds < DEADLINE_S
    assert out.growth_mib < MAX_GROWTH_MIB


@params
async def test_endless_line_is_capped_while_it_grows(kind: Kind, mode: str) -> None:
    ctype = "application/json" if mode == "chat" else kind.stream_type
    out = await _run(kind, mode, hh.endless("200 OK", ctype, kind.line_prefix))
    assert isinstance(out.error, InvalidResponseError)
    want = "The response exceeded 16 MiB" if mode == "chat" else "A stream line exceeded 8 MiB"
    assert want in out.error.message
    assert out.requests == 1
    assert out.seconds < DEADLINE_S
    assert out.growth_mib < MAX_GROWTH_MIB


@params
async def test_headers_then_silence_ends_after_at_most_two_waits(kind: Kind, mode: str) -> None:
    ctype = "application/json" if mode == "chat" else kind.stream_type
    out = await _run(kind, mode, hh.silent_after_headers(ctype))
    assert isinstance(out.error, ProviderTimeoutError)
    assert out.requests <= 2  # asked once more at most, not max_retries (3) more times
    # Local models' capabilities scale the first-byte wait (llama.cpp 1.5x, Ollama 2x).
    assert out.seconds <= 2 * (2 * READ_S) + 1.0


@params
async def test_slow_loris_body_is_ended_by_its_deadline(kind: Kind, mode: str) -> None:
    ctype = "application/json" if mode == "chat" else kind.stream_type
    out = await _run(kind, mode, hh.slow_loris(ctype, every=0.3, prefix=kind.line_prefix))
    assert isinstance(out.error, ResponseStalledError)
    assert not out.error.retryable and out.requests == 1
    assert out.seconds <= 2 * DEADLINE_S
    if mode == "stream":  # no line completes: ended by the minimum-progress rule, before the deadline
        assert "no complete line" in out.error.message and out.seconds < DEADLINE_S
    else:
        assert "deadline" in out.error.message


@params
async def test_slow_loris_headers_are_ended_by_the_deadline(kind: Kind, mode: str) -> None:
    out = await _run(kind, mode, hh.slow_headers(every=0.3))
    assert isinstance(out.error, ResponseStalledError)
    assert "deadline" in out.error.message and out.requests == 1
    assert out.seconds <= 2 * DEADLINE_S


@params
async def test_huge_headers_are_named_and_not_retried(kind: Kind, mode: str) -> None:
    out = await _run(kind, mode, hh.huge_headers())
    assert isinstance(out.error, InvalidResponseError)
    assert "headers larger than" in out.error.message
    assert "closed the connection" not in out.error.message
    assert out.requests == 1


async def test_a_silent_server_is_asked_once_more_and_a_stalled_reply_not_at_all() -> None:
    async def run(error: ProviderError) -> int:
        calls = 0

        async def operation() -> None:
            nonlocal calls
            calls += 1
            raise error

        async def no_sleep(_: float) -> None:
            return None

        with pytest.raises(type(error)):
            await call_with_retry(operation, policy=RETRIES, sleep=no_sleep)
        return calls

    assert await run(ProviderServerError("HTTP 500", "p")) == 4  # max_retries=3 still holds for 5xx
    assert await run(ProviderTimeoutError("no answer", "p")) == 2
    assert await run(ResponseStalledError("stopped", "p")) == 1


async def test_lines_split_across_chunks_keep_their_ends_and_characters() -> None:
    euro = "€".encode()
    pieces = [b"data: a\r", b"\ndata: " + euro[:1], euro[1:] + b"\r\rlast"]

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    response = httpx.Response(200, content=body())
    lines = [line async for line in iter_lines(response)]
    assert lines == ["data: a", "data: €", "", "last"]


def _pause_between_lines(pause: float) -> hh.Writer:
    """A well-behaved but slow transfer: one line, ``pause`` seconds of silence, one more line."""
    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(hh.head("200 OK", {"Content-Type": "application/x-ndjson",
                                        "Transfer-Encoding": "chunked"}))
        writer.write(hh.chunk(b'{"status": "pulling"}\n'))
        await writer.drain()
        await asyncio.sleep(pause)
        writer.write(hh.chunk(b'{"status": "success"}\n') + b"0\r\n\r\n")
        await writer.drain()

    return write


async def test_a_long_transfer_lifts_idle_and_deadline_for_its_request_only() -> None:
    async with hh.serve(_pause_between_lines(1.5)) as server:
        client = make_endpoint_client(EndpointAccess(server.url, idle_timeout_s=0.5, deadline_s=1.0))
        async with client:
            async with client.stream("POST", server.url + "/api/pull", extensions=LONG_TRANSFER) as response:
                lines = [line async for line in iter_ndjson(response)]
            assert lines == [{"status": "pulling"}, {"status": "success"}]
            with pytest.raises(ProviderTimeoutError, match=r"no data for 0\.5 s"):
                async with client.stream("POST", server.url + "/api/pull") as response:
                    try:
                        [line async for line in iter_ndjson(response)]
                    except httpx.HTTPError as exc:
                        raise transport_error(exc, "ollama") from exc


async def test_an_endpoints_idle_and_deadline_settings_reach_its_client() -> None:
    entry = Endpoint(name="box", kind="llamacpp", url="http://127.0.0.1:9", idle_timeout_s=7,
                     deadline_s=90)
    client = make_endpoint_client(endpoint_access(entry, None))
    default = make_endpoint_client(endpoint_access(Endpoint(name="b", kind="ollama", url="http://127.0.0.1:9"),
                                                   None))
    async with client, default:
        assert isinstance(client, BoundedClient) and isinstance(default, BoundedClient)
        assert (client.idle_s, client.deadline_s) == (7, 90)
        assert (default.idle_s, default.deadline_s) == (60.0, 1800.0)  # the local defaults


def test_the_shared_client_never_cuts_a_reply_sooner_than_its_own_kind_would() -> None:
    """The app's one client carries cloud and local replies; its idle gap and deadline belong to the
    client, so they are the longer of the two kinds' (a cloud model thinking 90 s between tokens
    through the shared client is not ended by a local server's 60 s idle rule)."""
    from victor_gui.providers.http import CLOUD_TIMEOUTS, LOCAL_TIMEOUTS, SHARED_TIMEOUTS, make_client

    for kind in (CLOUD_TIMEOUTS, LOCAL_TIMEOUTS):
        assert SHARED_TIMEOUTS.idle >= kind.idle
        assert SHARED_TIMEOUTS.deadline >= kind.deadline
        assert SHARED_TIMEOUTS.read >= kind.read
    client = make_client(SHARED_TIMEOUTS)
    assert (client.idle_s, client.deadline_s) == (CLOUD_TIMEOUTS.idle, LOCAL_TIMEOUTS.deadline)


@pytest.mark.parametrize("kind", ["llamacpp", "ollama"])
async def test_an_endpoints_read_timeout_bounds_its_requests(kind: str) -> None:
    """A hand-added endpoint's read_timeout_s is what a silent server costs: the provider set its
    own per-request timeout (300 s locally) over it, so a 2 s setting waited minutes."""
    from victor_gui.services.endpoint_providers import provider_for_endpoint

    async with hh.serve(hh.silent_after_headers("application/json")) as server:
        entry = Endpoint(name="box", kind=kind, url=server.url, read_timeout_s=1)
        provider, client = provider_for_endpoint(entry, secrets=None, max_retries=0)
        began = time.monotonic()
        try:
            with pytest.raises(ProviderError):
                await provider.chat([Message(role="user", content="hi")], model="m")
        finally:
            await provider.close()
            await client.aclose()
    # One retry of a stall is allowed (RetryPolicy.max_timeout_retries): two waits of ~1 s each,
    # scaled by the model's timeout multiplier (at most 2x).
    assert time.monotonic() - began < 8, time.monotonic() - began
