"""Retry decisions, backoff, Retry-After, the circuit breaker and stream retries."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator

import pytest

from victor_gui.errors import (
    BadRequestError,
    CircuitOpenError,
    ModelLoadingError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)
from victor_gui.providers.resilience import (
    RETRY_AFTER_CAP_S,
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
    RetryPolicy,
    call_with_retry,
    parse_retry_after,
    stream_with_retry,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    """Records the waits instead of sleeping them (the delays are what is under test)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# -- retry decisions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (ProviderConnectionError("refused"), True),
        (ProviderTimeoutError("slow"), True),
        (ProviderRateLimitError("429"), True),
        (ProviderServerError("HTTP 502"), True),
        (ModelLoadingError("loading"), True),
        # Text that looks retryable changes nothing: the type decides.
        (BadRequestError("HTTP 500 from upstream: bad field"), False),
        (ProviderAuthError("503 service unavailable? no: wrong key"), False),
        (ProviderError("connection reset, timeout, 429"), False),
        (ValueError("HTTP 500"), False),
    ],
)
def test_should_retry_by_type_not_text(error: BaseException, retry: bool) -> None:
    policy = RetryPolicy(max_retries=3)
    assert policy.should_retry(error, 0) is retry
    assert policy.should_retry(error, 3) is False  # out of attempts


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=0.0)
    assert [policy.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    jittery = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=0.2)
    for attempt in range(8):
        for _ in range(50):
            raw = min(4.0, 0.5 * 2**attempt)
            assert raw * 0.8 <= jittery.delay(attempt) <= min(4.0, raw * 1.2)


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, jitter=0.0)
    assert policy.delay(0, ProviderRateLimitError("x", retry_after=7.0)) == 7.0
    assert policy.delay(0, ProviderRateLimitError("x", retry_after=3600.0)) == RETRY_AFTER_CAP_S
    assert policy.delay(0, ModelLoadingError("x", retry_after=2.0)) == 2.0  # 503 says how long too
    assert policy.delay(2, ProviderRateLimitError("x")) == 2.0  # no header: backoff


def test_parse_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("") is None
    assert parse_retry_after("soon") is None and parse_retry_after("nan") is None
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)  # "... GMT"
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    naive = email.utils.formatdate(now + 45)  # "-0000" form: parses without a zone
    assert parse_retry_after(naive, now=now) == pytest.approx(45.0)
    past = email.utils.formatdate(now - 100, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


# -- call_with_retry ----------------------------------------------------------------------------------


async def test_call_with_retry_retries_then_succeeds() -> None:
    sleeps = Sleeps()
    errors: list[ProviderError] = [ProviderServerError("502"), ProviderConnectionError("reset")]

    async def op() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    policy = RetryPolicy(max_retries=3, base_delay=1.0, jitter=0.0)
    assert await call_with_retry(op, policy=policy, sleep=sleeps) == "ok"
    assert sleeps.waits == [1.0, 2.0]


async def test_call_with_retry_gives_up_after_max_retries_and_not_on_bad_request() -> None:
    calls = 0

    async def always_500() -> None:
        nonlocal calls
        calls += 1
        raise ProviderServerError("HTTP 500")

    with pytest.raises(ProviderServerError):
        await call_with_retry(always_500, policy=RetryPolicy(max_retries=2), sleep=Sleeps())
    assert calls == 3

    calls = 0

    async def bad_request() -> None:
        nonlocal calls
        calls += 1
        raise BadRequestError("HTTP 500 mentioned in the text")

    with pytest.raises(BadRequestError):
        await call_with_retry(bad_request, policy=RetryPolicy(max_retries=5), sleep=Sleeps())
    assert calls == 1


# -- circuit breaker ------------------------------------------------------------------------------------


def test_breaker_closed_open_half_open_closed() -> None:
    clock = Clock()
    breaker = CircuitBreaker(key="ep", failure_threshold=3, recovery_timeout=10.0, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure(ProviderServerError("500"))
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()
    breaker.record_failure(ProviderConnectionError("refused"))
    assert breaker.state is BreakerState.OPEN

    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call("p")
    assert info.value.retry_after == pytest.approx(10.0) and info.value.provider == "p"

    clock.now += 10.5
    breaker.before_call()  # the trial goes through
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # only one trial at a time
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0
    breaker.before_call()


def test_failed_trial_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=5.0, clock=clock)
    breaker.record_failure(ProviderTimeoutError("t"))
    clock.now += 6
    breaker.before_call()
    breaker.record_failure(ProviderTimeoutError("t"))
    assert breaker.state is BreakerState.OPEN and breaker.opened_at == clock.now


def test_auth_and_request_errors_do_not_trip() -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    for error in (ProviderAuthError("401"), BadRequestError("400"), ProviderAuthError("403")):
        breaker.before_call()
        breaker.record_failure(error)
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0


def test_clear_answer_during_trial_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, clock=clock)
    breaker.record_failure(ProviderServerError("500"))
    clock.now += 2
    breaker.before_call()
    breaker.record_failure(BadRequestError("400"))  # the endpoint answered: it is up
    assert breaker.state is BreakerState.CLOSED


async def test_unexpected_exception_releases_the_half_open_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, clock=clock)
    breaker.record_failure(ProviderServerError("500"))
    clock.now += 2

    async def buggy() -> None:
        raise KeyError("parse bug in caller code")

    with pytest.raises(KeyError):
        await call_with_retry(buggy, policy=RetryPolicy(), breaker=breaker)

    async def fine() -> str:
        return "up"

    assert await call_with_retry(fine, policy=RetryPolicy(), breaker=breaker) == "up"
    assert breaker.state is BreakerState.CLOSED


async def test_breaker_stops_retries_once_open() -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=60.0)
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise ProviderConnectionError("refused")

    with pytest.raises(CircuitOpenError):
        await call_with_retry(down, policy=RetryPolicy(max_retries=5), breaker=breaker, sleep=Sleeps())
    assert calls == 2


async def test_cancellation_is_neutral() -> None:
    breaker = CircuitBreaker(failure_threshold=1)

    async def hang() -> None:
        await asyncio.sleep(10)

    task = asyncio.create_task(call_with_retry(hang, policy=RetryPolicy(), breaker=breaker))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0


def test_breaker_registry_is_bounded_and_shares_by_key() -> None:
    registry = BreakerRegistry(max_size=3)
    first = registry.get("a")
    assert registry.get("a") is first
    for key in "bcd":
        registry.get(key)
    assert registry.get("a") is not first  # evicted as least recently used


# -- stream_with_retry -------------------------------------------------------------------------------


def _flaky_streams(plan: list[tuple[list[str], ProviderError | None]]) -> tuple[list[int], object]:
    """open_stream() factory: each call yields the next plan's items, then raises its error."""
    opened: list[int] = []

    def open_stream() -> AsyncIterator[str]:
        index = len(opened)
        opened.append(index)
        items, error = plan[index]

        async def gen() -> AsyncIterator[str]:
            for item in items:
                await asyncio.sleep(0)
                yield item
            if error is not None:
                raise error

        return gen()

    return opened, open_stream


async def test_stream_retries_before_the_first_item() -> None:
    opened, open_stream = _flaky_streams([
        ([], ProviderConnectionError("refused")),
        ([], ModelLoadingError("loading", retry_after=0.0)),
        (["a", "b", "c"], None),
    ])
    sleeps = Sleeps()
    items = [x async for x in stream_with_retry(open_stream, policy=RetryPolicy(max_retries=3),  # type: ignore[arg-type]
                                                sleep=sleeps)]
    assert items == ["a", "b", "c"] and len(opened) == 3 and len(sleeps.waits) == 2


async def test_stream_never_retries_after_an_item_was_delivered() -> None:
    opened, open_stream = _flaky_streams([
        (["partial "], ProviderConnectionError("reset mid-stream", partial_content="partial ")),
        (["should never be seen"], None),
    ])
    breaker = CircuitBreaker(failure_threshold=5)
    received: list[str] = []
    with pytest.raises(ProviderConnectionError) as info:
        async for item in stream_with_retry(open_stream, policy=RetryPolicy(max_retries=3),  # type: ignore[arg-type]
                                            breaker=breaker, sleep=Sleeps()):
            received.append(item)
    assert received == ["partial "] and len(opened) == 1
    assert info.value.partial_content == "partial "
    assert breaker.failures == 1


async def test_stream_success_closes_breaker_and_early_stop_is_neutral() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, clock=clock)
    breaker.record_failure(ProviderServerError("500"))
    clock.now += 2
    _, open_stream = _flaky_streams([(["x", "y", "z"], None), (["x", "y"], None)])
    stream = stream_with_retry(open_stream, policy=RetryPolicy(), breaker=breaker)  # type: ignore[arg-type]
    assert await anext(stream) == "x"
    await stream.aclose()  # the user pressed Stop during the half-open trial
    assert breaker.state is BreakerState.HALF_OPEN
    assert [x async for x in stream_with_retry(open_stream, policy=RetryPolicy(),  # type: ignore[arg-type]
                                               breaker=breaker)] == ["x", "y"]
    assert breaker.state is BreakerState.CLOSED


async def test_stream_gives_up_after_max_retries() -> None:
    opened, open_stream = _flaky_streams([([], ProviderServerError("503"))] * 3)
    start = time.perf_counter()
    with pytest.raises(ProviderServerError):
        async for _ in stream_with_retry(open_stream, policy=RetryPolicy(max_retries=2),  # type: ignore[arg-type]
                                         sleep=Sleeps()):
            pass
    assert len(opened) == 3 and time.perf_counter() - start < 1.0
