"""Every simulator fault against OllamaProvider: the typed error, the retry count taken from the
server's request log, and no request sent twice once output reached the caller."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.providers.ollama_support import collect, make_provider, user
from tests.servers.base import Fault, Script, free_port
from tests.servers.ollama import BUSY, BUSY_MESSAGE, OllamaServer, make_server
from victor_gui.errors import (
    BadRequestError,
    ContextLengthExceededError,
    InvalidResponseError,
    ModelNotFoundError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)
from victor_gui.providers.protocols.ollama import OllamaProvider

RETRIES = 2  # so a retryable failure shows as exactly 3 requests


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with make_server(load_seconds=0.2) as srv:
        srv.stall_seconds = 3.0
        yield srv


@pytest.fixture
async def ollama(server: OllamaServer) -> AsyncIterator[OllamaProvider]:
    # 0.25 s read timeout x the 2.0 timeout_multiplier Ollama models get = 0.5 s before a stall fails.
    provider = make_provider(server.url, retries=RETRIES, timeout=0.25)
    yield provider
    await provider.close()


def fault(name: str, **kw: object) -> Script:
    return Script(text="Hello there, friend.", pieces=4, fault=name, **kw)  # type: ignore[arg-type]


# -- failures before any output: typed error, retried only when retrying can help ------------------

EARLY = [
    (Fault.UNAUTHORIZED, ProviderAuthError, 1),
    (Fault.UNKNOWN_MODEL, ModelNotFoundError, 1),
    (Fault.SERVER_ERROR, ProviderServerError, RETRIES + 1),
    (BUSY, ProviderServerError, RETRIES + 1),
    (Fault.HTML, InvalidResponseError, 1),
    (Fault.RATE_LIMIT, ProviderRateLimitError, RETRIES + 1),
]


@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize(("name", "error", "requests"), EARLY, ids=[e[0] for e in EARLY])
async def test_early_faults(server: OllamaServer, ollama: OllamaProvider, streamed: bool, name: str,
                            error: type[Exception], requests: int) -> None:
    server.script(fault(name, retry_after="0.01", repeat=RETRIES + 1))
    with pytest.raises(error) as info:
        if streamed:
            await collect(ollama)
        else:
            await ollama.chat(user(), model="sim-model")
    assert len(server.chat_requests()) == requests
    assert type(info.value) is error  # exactly this type, not a neighbour that happens to match


async def test_unknown_model_hint_names_the_pull_command(server: OllamaServer,
                                                         ollama: OllamaProvider) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        await ollama.chat(user(), model="llama9:70b")
    assert info.value.status_code == 404
    assert 'model "llama9:70b" not found, try pulling it first' in info.value.message
    assert "ollama pull llama9:70b" in info.value.message
    assert len(server.chat_requests()) == 1


async def test_busy_is_retried_then_succeeds(server: OllamaServer, ollama: OllamaProvider) -> None:
    server.script(fault(BUSY))
    chunks = await collect(ollama)
    assert "".join(c.content for c in chunks) == "Hello from the simulator."  # the next script
    assert len(server.chat_requests()) == 2


async def test_busy_message_keeps_ollamas_double_space(server: OllamaServer, ollama: OllamaProvider) -> None:
    server.script(fault(BUSY, repeat=RETRIES + 1))
    with pytest.raises(ProviderServerError) as info:
        await ollama.chat(user(), model="sim-model")
    assert info.value.status_code == 503 and info.value.retryable
    assert BUSY_MESSAGE in info.value.message


async def test_429_honours_retry_after(server: OllamaServer, ollama: OllamaProvider) -> None:
    server.script(fault(Fault.RATE_LIMIT, retry_after="0.3"))
    started = time.monotonic()
    reply = await ollama.chat(user(), model="sim-model")
    elapsed = time.monotonic() - started
    assert reply.content == "Hello from the simulator."
    assert len(server.chat_requests()) == 2
    assert elapsed >= 0.3  # waited the server's Retry-After, not the 10 ms backoff


async def test_429_error_carries_retry_after(server: OllamaServer, ollama: OllamaProvider) -> None:
    server.script(fault(Fault.RATE_LIMIT, retry_after="0.05", repeat=RETRIES + 1))
    with pytest.raises(ProviderRateLimitError) as info:
        await ollama.chat(user(), model="sim-model")
    assert info.value.retry_after == pytest.approx(0.05)


# -- failures after output began: typed error with the partial text, never re-sent -------------------

MID = [
    (Fault.MALFORMED, InvalidResponseError),
    (Fault.TRUNCATED, InvalidResponseError),
    (Fault.MIDSTREAM_ERROR, ProviderServerError),
    (Fault.STALL, ProviderTimeoutError),
]


@pytest.mark.parametrize(("name", "error"), MID, ids=[m[0] for m in MID])
async def test_midstream_faults_keep_partial_and_do_not_resend(server: OllamaServer, ollama: OllamaProvider,
                                                               name: str, error: type[Exception]) -> None:
    script = fault(name, fail_after=2)
    server.script(script)
    expected = "".join(script.text_pieces()[:2])
    assert expected == "Hello ther"
    seen: list[str] = []
    with pytest.raises(error) as info:
        async for chunk in ollama.stream(user(), model="sim-model"):
            seen.append(chunk.content)
    assert type(info.value) is error
    assert "".join(seen) == expected  # two of the four pieces
    assert info.value.partial_content == expected
    assert len(server.chat_requests()) == 1


async def test_midstream_error_line_is_ollamas_text(server: OllamaServer, ollama: OllamaProvider) -> None:
    server.script(fault(Fault.MIDSTREAM_ERROR, fail_after=1))
    with pytest.raises(ProviderServerError) as info:
        await collect(ollama)
    assert "unexpected EOF" in info.value.message and info.value.status_code == 200


@pytest.mark.parametrize("name", [Fault.MIDSTREAM_ERROR, Fault.STALL, Fault.TRUNCATED])
async def test_failure_before_first_chunk_is_retried(server: OllamaServer, ollama: OllamaProvider,
                                                     name: str) -> None:
    server.script(fault(name, fail_after=0))
    chunks = await collect(ollama)
    assert "".join(c.content for c in chunks) == "Hello from the simulator."
    assert len(server.chat_requests()) == 2


@pytest.mark.parametrize(("name", "error"), [
    (Fault.MALFORMED, InvalidResponseError),
    (Fault.MIDSTREAM_ERROR, ProviderServerError),  # nothing written yet: Ollama sets status 500
    (Fault.STALL, ProviderTimeoutError),
    (Fault.TRUNCATED, ProviderConnectionError),  # body cut short: nothing delivered, so retried
])
async def test_non_stream_body_faults(server: OllamaServer, ollama: OllamaProvider, name: str,
                                      error: type[Exception]) -> None:
    server.script(fault(name, repeat=RETRIES + 1))
    with pytest.raises(error):
        await ollama.chat(user(), model="sim-model")
    # A stall (the server took the request, then said nothing) is asked once more, not RETRIES more.
    tries = {Fault.MALFORMED: 1, Fault.STALL: 2}.get(name, RETRIES + 1)
    assert len(server.chat_requests()) == tries


async def test_utf8_split_across_chunks_is_joined(server: OllamaServer, ollama: OllamaProvider) -> None:
    text = "héllo wörld ✓ 日本語 🙂"
    server.script(Script(text=text, pieces=6, fault=Fault.UTF8_SPLIT))
    chunks = await collect(ollama)
    assert "".join(c.content for c in chunks) == text
    assert chunks[-1].is_final


async def test_loading_blocks_then_answers(server: OllamaServer, ollama: OllamaProvider) -> None:
    server.script(fault(Fault.LOADING))
    chunks = await collect(ollama)
    assert "".join(c.content for c in chunks) == "Hello there, friend."
    assert chunks[-1].metadata["load_duration_ms"] >= 200  # the request blocked while "loading"
    assert len(server.chat_requests()) == 1


async def test_context_overflow_is_silently_truncated_by_default(server: OllamaServer,
                                                                 ollama: OllamaProvider) -> None:
    server.script(fault(Fault.CONTEXT_OVERFLOW))
    reply = await ollama.chat(user("x" * 100), model="sim-model", num_ctx=2048)
    assert reply.content == "Hello there, friend."
    assert reply.usage.prompt_tokens == 2048  # what Ollama reports: the prompt was cut to fit


async def test_context_overflow_with_truncate_false_is_typed(server: OllamaServer,
                                                             ollama: OllamaProvider) -> None:
    server.script(fault(Fault.CONTEXT_OVERFLOW))
    with pytest.raises(ContextLengthExceededError) as info:
        await ollama.chat(user(), model="sim-model", truncate=False)
    assert info.value.status_code == 400
    assert len(server.chat_requests()) == 1
    assert server.chat_requests()[0].body["truncate"] is False


async def test_real_overflow_from_long_prompt(server: OllamaServer, ollama: OllamaProvider) -> None:
    with pytest.raises(ContextLengthExceededError):
        await collect(ollama, user("word " * 3000), num_ctx=512, truncate=False)


async def test_host_check_403_says_what_to_do(server: OllamaServer) -> None:
    client = httpx.AsyncClient(headers={"Host": "victor.example.com"})
    provider = make_provider(server.url, http_client=client)
    try:
        with pytest.raises(ProviderAuthError) as info:
            await provider.chat(user(), model="sim-model")
    finally:
        await client.aclose()
    assert info.value.status_code == 403
    assert "OLLAMA_HOST" in info.value.message and "Host" in info.value.message
    assert len(server.requests) == 1


async def test_unknown_route_means_not_ollama(server: OllamaServer) -> None:
    provider = make_provider(server.url + "/not-here")
    try:
        with pytest.raises(BadRequestError) as info:
            await provider.chat(user(), model="sim-model")
    finally:
        await provider.close()
    assert "404 page not found" in info.value.message and "is this Ollama" in info.value.message


async def test_nothing_listening_is_a_connection_error() -> None:
    provider = make_provider(f"http://127.0.0.1:{free_port()}", retries=1)
    try:
        with pytest.raises(ProviderConnectionError):
            await collect(provider)
    finally:
        await provider.close()


async def test_local_timeouts_apply_to_an_injected_client(server: OllamaServer) -> None:
    # The app injects one shared client with cloud timeouts; a stalled local stream must still
    # fail on this provider's own (scaled) read timeout.
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0))
    provider = make_provider(server.url, retries=0, timeout=0.25, http_client=client)
    server.script(fault(Fault.STALL, fail_after=1))
    started = time.monotonic()
    try:
        with pytest.raises(ProviderTimeoutError):
            await collect(provider)
    finally:
        await client.aclose()
    assert time.monotonic() - started < 3.0
