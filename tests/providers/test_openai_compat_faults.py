"""Fault matrix: every simulator fault, in every OpenAI dialect, maps to the right typed error
with the right number of requests on the wire (from the simulator's request log). Above all:
once any output reached the caller, the request is never sent again."""

from __future__ import annotations

import pytest

from tests.providers.openai_sims import (
    DIALECTS,
    FAST,
    HI,
    RecordingSleep,
    collect,
    make_provider,
    running,
    text_of,
)
from tests.servers.base import Fault, Script, free_port
from victor_gui.errors import (
    CircuitOpenError,
    ContextLengthExceededError,
    InvalidResponseError,
    ModelLoadingError,
    ModelNotFoundError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.resilience import BreakerState, RetryPolicy

TEXT = "alpha beta gamma delta épsilon"
ATTEMPTS = FAST.max_retries + 1
OK = None  # the fault is absorbed and the reply arrives intact

# fault -> (error type, requests on the wire, partial text expected) for a streamed request.
STREAM: dict[str, tuple[type[ProviderError] | None, int, bool]] = {
    Fault.UNAUTHORIZED: (ProviderAuthError, 1, False),
    Fault.UNKNOWN_MODEL: (ModelNotFoundError, 1, False),
    Fault.RATE_LIMIT: (ProviderRateLimitError, ATTEMPTS, False),
    Fault.SERVER_ERROR: (ProviderServerError, ATTEMPTS, False),
    Fault.HTML: (InvalidResponseError, 1, False),
    Fault.MALFORMED: (InvalidResponseError, 1, True),
    Fault.TRUNCATED: (ProviderConnectionError, 1, True),
    Fault.MIDSTREAM_ERROR: (ProviderServerError, 1, True),
    Fault.STALL: (ProviderTimeoutError, 1, False),
    Fault.UTF8_SPLIT: (OK, 1, False),
    Fault.CONTEXT_OVERFLOW: (ContextLengthExceededError, 1, False),
}
# The same faults on a whole (non-stream) request: nothing was delivered, so retryable
# failures are retried.
WHOLE: dict[str, tuple[type[ProviderError] | None, int]] = {
    **{f: (e, n) for f, (e, n, _) in STREAM.items()},
    Fault.MALFORMED: (InvalidResponseError, 1),
    Fault.TRUNCATED: (ProviderConnectionError, ATTEMPTS),
    Fault.MIDSTREAM_ERROR: (ProviderServerError, ATTEMPTS),
}
# "Loading" differs per server (servers.md §5): llama.cpp 503 JSON, vLLM refuses/drops the
# connection, LM Studio loads just in time and answers.
LOADING = {
    "llamacpp": (ModelLoadingError, ATTEMPTS),
    "vllm": (ProviderConnectionError, ATTEMPTS),
    "lmstudio": (OK, 1),
}


def _script(fault: str) -> Script:
    return Script(text=TEXT, pieces=6, fault=fault, fail_after=2, retry_after="0", repeat=10)


def _provider(dialect: str, server, fault: str):  # type: ignore[no-untyped-def]
    if fault == Fault.STALL:
        server.stall_seconds = 3.0
        return make_provider(dialect, server, timeout=0.3, retry_policy=RetryPolicy(max_retries=0))
    return make_provider(dialect, server)


@pytest.mark.parametrize("fault", [*STREAM, Fault.LOADING])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_stream_fault_matrix(dialect: str, fault: str) -> None:
    expected, requests, partial = STREAM.get(fault, (*LOADING[dialect], False))
    with running(dialect) as server:
        server.script(_script(fault))
        async with _provider(dialect, server, fault) as provider:
            delivered: list[str] = []
            if expected is OK:
                chunks = await collect(provider.stream(HI, model="sim-model"))
                assert text_of(chunks) in (TEXT, server.default_script.text)
            else:
                with pytest.raises(expected) as info:
                    async for chunk in provider.stream(HI, model="sim-model"):
                        delivered.append(chunk.content)
                assert type(info.value) is expected
                assert info.value.provider == dialect
        assert len(server.chat_requests()) == requests
        if expected is not OK and partial:
            # output began: exactly one request, and the error carries what was shown
            assert "".join(delivered) and info.value.partial_content == "".join(delivered)
            assert TEXT.startswith(info.value.partial_content)


@pytest.mark.parametrize("fault", [*WHOLE, Fault.LOADING])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_chat_fault_matrix(dialect: str, fault: str) -> None:
    expected, requests = WHOLE.get(fault, LOADING[dialect])
    with running(dialect) as server:
        server.script(_script(fault))
        async with _provider(dialect, server, fault) as provider:
            if expected is OK:
                reply = await provider.chat(HI, model="sim-model")
                assert reply.content in (TEXT, server.default_script.text)
            else:
                with pytest.raises(expected) as info:
                    await provider.chat(HI, model="sim-model")
                assert type(info.value) is expected
        assert len(server.chat_requests()) == requests


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_utf8_split_across_network_chunks_comes_out_intact(dialect: str) -> None:
    text = "naïve café — 日本語 😀 fin"
    with running(dialect) as server:
        server.script(
            Script(text=text, pieces=5, fault=Fault.UTF8_SPLIT), Script(text=text, fault=Fault.UTF8_SPLIT)
        )
        async with make_provider(dialect, server) as provider:
            chunks = await collect(provider.stream(HI, model="sim-model"))
            whole = await provider.chat(HI, model="sim-model")
        assert text_of(chunks) == text and whole.content == text
        assert all("\ufffd" not in c.content for c in chunks)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_rate_limit_honours_retry_after(dialect: str) -> None:
    sleep = RecordingSleep()
    with running(dialect) as server:
        server.script(
            Script(fault=Fault.RATE_LIMIT, retry_after="1"),
            Script(text="after the wait"),
            Script(fault=Fault.RATE_LIMIT, retry_after="0"),
            Script(text="streamed"),
        )
        async with make_provider(dialect, server, sleep=sleep) as provider:
            reply = await provider.chat(HI, model="sim-model")
            chunks = await collect(provider.stream(HI, model="sim-model"))
        assert reply.content == "after the wait" and text_of(chunks) == "streamed"
        assert sleep.delays == [1.0, 0.0]
        assert len(server.chat_requests()) == 4


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_unauthorized_does_not_trip_the_breaker(dialect: str) -> None:
    with running(dialect) as server:
        server.script(Script(fault=Fault.UNAUTHORIZED, repeat=20))
        async with make_provider(dialect, server) as provider:
            for _ in range(7):
                with pytest.raises(ProviderAuthError):
                    await provider.chat(HI, model="sim-model")
            assert provider.breaker.state is BreakerState.CLOSED and provider.breaker.failures == 0
        assert len(server.chat_requests()) == 7


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_consecutive_500s_open_the_breaker(dialect: str) -> None:
    with running(dialect) as server:
        server.script(Script(fault=Fault.SERVER_ERROR, repeat=50))
        async with make_provider(dialect, server) as provider:
            with pytest.raises(ProviderServerError):
                await provider.chat(HI, model="sim-model")  # 3 attempts
            with pytest.raises(CircuitOpenError):
                await provider.chat(HI, model="sim-model")  # 2 more failures open it (threshold 5)
            with pytest.raises(CircuitOpenError):
                await collect(provider.stream(HI, model="sim-model"))  # refused without I/O
            assert provider.breaker.state is BreakerState.OPEN
        assert len(server.chat_requests()) == 5


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_clean_close_without_done_is_truncated(dialect: str) -> None:
    with running(dialect, truncate_clean=True) as server:
        server.script(_script(Fault.TRUNCATED))
        async with make_provider(dialect, server) as provider:
            with pytest.raises(InvalidResponseError, match="truncated") as info:
                await collect(provider.stream(HI, model="sim-model"))
        assert info.value.partial_content and TEXT.startswith(info.value.partial_content)
        assert len(server.chat_requests()) == 1


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_connection_refused(dialect: str) -> None:
    sleep = RecordingSleep()
    provider = ProviderRegistry.create(
        dialect,
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        retry_policy=RetryPolicy(max_retries=1, base_delay=0.0),
        sleep=sleep,
    )
    async with provider:
        with pytest.raises(ProviderConnectionError):
            await provider.chat(HI, model="sim-model")
        with pytest.raises(ProviderConnectionError):
            await collect(provider.stream(HI, model="sim-model"))
    assert len(sleep.delays) == 2  # one retry each (4 failures: the breaker, at 5, stays closed)


async def test_vllm_refuses_until_started_then_answers() -> None:
    port = free_port()
    provider = ProviderRegistry.create(
        "vllm", base_url=f"http://127.0.0.1:{port}/v1", retry_policy=RetryPolicy(max_retries=0)
    )
    async with provider:
        with pytest.raises(ProviderConnectionError):
            await provider.chat(HI, model="sim-model")
        with running("vllm", port=port):
            assert (await provider.chat(HI, model="sim-model")).content == "Hello from the simulator."


async def test_llamacpp_loading_then_ready_is_retried() -> None:
    with running("llamacpp", loading=True) as server:

        class ReadyAfterFirstWait(RecordingSleep):
            async def __call__(self, seconds: float) -> None:
                await super().__call__(seconds)
                server.loading = False

        async with make_provider("llamacpp", server, sleep=ReadyAfterFirstWait()) as provider:
            reply = await provider.chat(HI, model="sim-model")
        assert reply.content == "Hello from the simulator."
        assert len(server.chat_requests()) == 1  # the 503 came from the loading gate, unlogged


@pytest.mark.parametrize("stream", [False, True])
async def test_lmstudio_200_with_error_body_is_an_error(stream: bool) -> None:
    with running("lmstudio") as server:
        # A base URL without /v1: LM Studio answers HTTP 200 {"error":"Unexpected endpoint..."}.
        provider = ProviderRegistry.create("lmstudio", base_url=server.url, retry_policy=FAST)
        async with provider:
            with pytest.raises(InvalidResponseError, match="Unexpected endpoint"):
                if stream:
                    await collect(provider.stream(HI, model="sim-model"))
                else:
                    await provider.chat(HI, model="sim-model")
