"""Retry with backoff and a per-endpoint circuit breaker.

Whether to retry is decided from the error *type* (see :mod:`victor_gui.errors`: connection,
timeout, 429 and 5xx are retryable), never by searching message text. A stream is retried only
until its first piece has been delivered: once anything reached the caller, a failure is raised
with the partial text attached, so no request is ever answered twice.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import math
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from victor_gui.errors import CircuitOpenError, ProviderError, ProviderTimeoutError

T = TypeVar("T")

# Longest wait honoured from a Retry-After header: beyond this a person is better served by an
# error that says "rate limited, try in N s" than by a frozen-looking request.
RETRY_AFTER_CAP_S = 60.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are always UTC
            when = when.replace(tzinfo=datetime.UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``base * 2**attempt`` capped at ``max_delay``."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0
    jitter: float = 0.2
    retry_after_cap: float = RETRY_AFTER_CAP_S
    # A server that took the request and said nothing for a whole read timeout (300 s locally)
    # is asked once more, not ``max_retries`` times: four full waits would be 20 minutes.
    max_timeout_retries: int = 1

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        if not (attempt < self.max_retries and isinstance(error, ProviderError) and error.retryable):
            return False
        return not isinstance(error, ProviderTimeoutError) or attempt < self.max_timeout_retries

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to sleep before retry number ``attempt + 1`` (attempt counts from 0)."""
        if isinstance(error, ProviderError) and error.retryable and error.retry_after is not None:
            # 429 and 503 (loading, busy) both say how long to wait; honour it up to the cap.
            return float(min(max(0.0, error.retry_after), self.retry_after_cap))
        raw = min(self.max_delay, self.base_delay * 2.0 ** min(attempt, 64))
        jittered = raw * (1 + random.uniform(-self.jitter, self.jitter))
        return max(0.0, min(self.max_delay, jittered))


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; lets one trial through after
    ``recovery_timeout`` seconds (half-open); closes again on a success.

    Only errors whose type has ``trips_breaker`` count: a wrong key or a bad request says
    nothing about the endpoint's health.
    """

    key: str = ""
    failure_threshold: int = 5
    recovery_timeout: float = 30.0
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    _trial_running: bool = field(default=False, repr=False)

    def before_call(self, provider: str | None = None) -> None:
        """Raise :class:`CircuitOpenError` if the endpoint should not be called now."""
        if self.state is BreakerState.OPEN:
            remaining = self.recovery_timeout - (self.clock() - self.opened_at)
            if remaining > 0:
                raise CircuitOpenError(
                    f"{self.key or 'endpoint'} failed {self.failures} times in a row; "
                    f"not calling it for {remaining:.0f} s",
                    provider,
                    retry_after=remaining,
                )
            self.state = BreakerState.HALF_OPEN
            self._trial_running = False
        if self.state is BreakerState.HALF_OPEN:
            if self._trial_running:
                raise CircuitOpenError(
                    f"{self.key or 'endpoint'} is being re-tried; waiting for that trial",
                    provider,
                    retry_after=1.0,
                )
            self._trial_running = True

    def record_success(self) -> None:
        self.state = BreakerState.CLOSED
        self.failures = 0
        self._trial_running = False

    def record_failure(self, error: BaseException) -> None:
        if isinstance(error, ProviderError) and not error.trips_breaker:
            # The endpoint answered; a half-open trial that got a clear answer proves it is up.
            if self.state is BreakerState.HALF_OPEN:
                self.record_success()
            return
        self._trial_running = False
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            self.state = BreakerState.OPEN
            self.opened_at = self.clock()

    def record_cancel(self) -> None:
        """A call was cancelled (Stop): it proves nothing either way."""
        self._trial_running = False


class BreakerRegistry:
    """One breaker per endpoint key, bounded so long sessions do not grow it without end."""

    def __init__(self, max_size: int = 256) -> None:
        self._breakers: OrderedDict[str, CircuitBreaker] = OrderedDict()
        self._max = max_size

    def get(self, key: str, **settings: Any) -> CircuitBreaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(key=key, **settings)
            self._breakers[key] = breaker
            while len(self._breakers) > self._max:
                self._breakers.popitem(last=False)
        else:
            self._breakers.move_to_end(key)
        return breaker

    def clear(self) -> None:
        self._breakers.clear()


BREAKERS = BreakerRegistry()

Sleep = Callable[[float], Awaitable[None]]


async def call_with_retry(
    operation: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    breaker: CircuitBreaker | None = None,
    provider: str | None = None,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run ``operation`` through the breaker, retrying retryable failures per ``policy``."""
    attempt = 0
    while True:
        if breaker is not None:
            breaker.before_call(provider)
        try:
            result = await operation()
        except asyncio.CancelledError:
            if breaker is not None:
                breaker.record_cancel()
            raise
        except ProviderError as exc:
            if breaker is not None:
                breaker.record_failure(exc)
            if not policy.should_retry(exc, attempt):
                raise
            await sleep(policy.delay(attempt, exc))
            attempt += 1
            continue
        except Exception:
            # Not a provider failure (a bug, a parse error in caller code): it says nothing about
            # the endpoint, but a half-open trial must be released or the breaker stays shut.
            if breaker is not None:
                breaker.record_cancel()
            raise
        if breaker is not None:
            breaker.record_success()
        return result


async def stream_with_retry(
    open_stream: Callable[[], AsyncIterator[T]],
    *,
    policy: RetryPolicy,
    breaker: CircuitBreaker | None = None,
    provider: str | None = None,
    sleep: Sleep = asyncio.sleep,
) -> AsyncIterator[T]:
    """Yield from a fresh ``open_stream()``, retrying only while nothing has been yielded.

    After the first item reaches the caller, any failure propagates unchanged: retrying then
    would send the request twice and show the start of the reply twice.
    """
    attempt = 0
    delivered = False
    while True:
        if breaker is not None:
            breaker.before_call(provider)
        stream: AsyncIterator[T] | None = None
        try:
            stream = open_stream()
            async for item in stream:
                delivered = True
                yield item
        except asyncio.CancelledError:
            if breaker is not None:
                breaker.record_cancel()
            raise
        except GeneratorExit:
            if breaker is not None:
                breaker.record_cancel()
            raise
        except ProviderError as exc:
            if breaker is not None:
                breaker.record_failure(exc)
            if delivered or not policy.should_retry(exc, attempt):
                raise
            await sleep(policy.delay(attempt, exc))
            attempt += 1
            continue
        except Exception:
            if breaker is not None:
                breaker.record_cancel()
            raise
        finally:
            aclose = getattr(stream, "aclose", None) if stream is not None else None
            if aclose is not None:
                await aclose()
        if breaker is not None:
            breaker.record_success()
        return
