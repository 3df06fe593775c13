"""What the cloud wire protocols (Anthropic, Gemini, Vertex, Azure) share: key resolution at
request time, one request path with typed errors, retry before the first streamed chunk only,
and client-side timings.

A protocol module supplies the URL, the headers, the payload, a parser for a whole reply and a
decoder for its stream; everything about failure handling lives here once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, Protocol, cast

import httpx

from victor_gui.errors import InvalidResponseError, MissingAPIKeyError, ProviderError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import ProviderSpec
from victor_gui.providers.http import (
    CLOUD_TIMEOUTS,
    classify_http_error,
    parse_json_body,
    read_body,
    send_streamed,
    transport_error,
)
from victor_gui.providers.keys import key_hint, resolve_api_key
from victor_gui.providers.resilience import call_with_retry, stream_with_retry
from victor_gui.providers.types import CompletionResponse, StreamChunk, Timings, Usage

# Error bodies are read up to this size; a proxy's megabyte page is not worth more.


class StreamDecoder(Protocol):
    """Turns one streamed HTTP response into :class:`StreamChunk` objects."""

    @property
    def partial(self) -> str:
        """The answer text so far (read when an error needs it)."""
        ...

    def run(self, response: httpx.Response) -> AsyncGenerator[StreamChunk, None]: ...


class Clock:
    """Client-side timings of one reply: time to first token and generation speed."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None

    def mark(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def timings(self, completion_tokens: int) -> Timings:
        end = time.perf_counter()
        ttft = (self.first - self.started) * 1000 if self.first is not None else None
        span = end - (self.first if self.first is not None else self.started)
        tps = completion_tokens / span if completion_tokens and span > 0 else None
        return Timings(source="client", ttft_ms=ttft, tokens_per_second=tps)


class CloudProvider(BaseProvider):
    """Base of the cloud protocol classes, built by the registry as ``Cls(spec=spec, **kwargs)``.

    Keywords beyond the seed's: ``spec`` (the catalog row), ``api_key_env`` (a profile's key
    variable), ``retry_policy`` and ``sleep`` (tests). Creation never fails for want of a key:
    :class:`MissingAPIKeyError` is raised by the first request, before any I/O.
    """

    default_timeouts = CLOUD_TIMEOUTS

    def __init__(
        self,
        spec: ProviderSpec,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int = 3,
        *,
        http_client: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> None:
        self.spec = spec
        self._api_key_env: str | None = kwargs.pop("api_key_env", None)
        policy = kwargs.pop("retry_policy", None)
        self._sleep: Callable[[float], Any] = kwargs.pop("sleep", asyncio.sleep)
        key, self.key_source = resolve_api_key(spec, api_key, api_key_env=self._api_key_env)
        super().__init__(
            api_key=key,
            base_url=base_url or spec.default_base_url,
            timeout=timeout or 0,
            max_retries=max_retries,
            http_client=http_client,
            **kwargs,
        )
        if policy is not None:
            self.retry_policy = policy

    @property
    def name(self) -> str:
        return self.spec.name

    def supports_tools(self) -> bool:
        return True

    def supports_streaming(self) -> bool:
        return True

    def supports_vision(self, model: str | None = None) -> bool:
        return True

    # -- keys and errors ------------------------------------------------------------------------

    def _require_key(self) -> str:
        """The API key, looked up again if it appeared since creation; raises when there is none."""
        if not self.api_key:
            self.api_key, self.key_source = resolve_api_key(self.spec, None, api_key_env=self._api_key_env)
        if not self.api_key:
            raise MissingAPIKeyError(
                f"No API key for {self.spec.display_name}. {key_hint(self.spec)}", self.name
            )
        return self.api_key

    def classify_error(
        self, status: int, body: str, headers: httpx.Headers, model: str | None
    ) -> ProviderError:
        """The typed error for a non-2xx reply; protocols refine what their dialect says."""
        return classify_http_error(
            status,
            body,
            provider=self.name,
            model=model,
            headers=headers,
            content_type=headers.get("content-type", ""),
        )

    # -- the one request path -------------------------------------------------------------------

    async def prepare(self, request: httpx.Request) -> None:
        """Last touch before sending (AWS signs the finished request here); nothing by default."""

    async def _open(
        self, method: str, url: str, *, headers: dict[str, str], body: Any = None, model: str | None = None
    ) -> httpx.Response:
        """Send a request and return the (streamed) 2xx response; any failure is typed."""
        content = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        request = self.http.build_request(
            method, url, content=content, headers=headers, timeout=self.timeouts().to_httpx()
        )
        await self.prepare(request)
        return await send_streamed(self.http, request, provider=self.name, model=model,
                                   classify=self.classify_error)

    async def _request_json(
        self, method: str, url: str, *, headers: dict[str, str], body: Any = None, model: str | None = None
    ) -> Any:
        """One attempt: send, read the whole body, decode JSON."""
        response = await self._open(method, url, headers=headers, body=body, model=model)
        raw = await read_body(response, provider=self.name, model=model)
        return parse_json_body(
            raw,
            provider=self.name,
            status=response.status_code,
            model=model,
            content_type=response.headers.get("content-type", ""),
        )

    async def _retrying_json(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: Any = None,
        model: str | None = None,
        parse: Callable[[Any, Clock], CompletionResponse] | None = None,
    ) -> Any:
        """:meth:`_request_json` behind the breaker with retries; ``parse`` runs inside the attempt
        so a reply that decodes but breaks the protocol is typed like any other failure."""

        async def attempt() -> Any:
            clock = Clock()
            data = await self._request_json(method, url, headers=headers, body=body, model=model)
            return parse(data, clock) if parse is not None else data

        return await call_with_retry(
            attempt, policy=self.retry_policy, breaker=self.breaker, provider=self.name, sleep=self._sleep
        )

    def _retrying_stream(
        self,
        url: str,
        *,
        headers: dict[str, str],
        body: Any,
        model: str,
        decoder: Callable[[Clock], StreamDecoder],
    ) -> AsyncGenerator[StreamChunk, None]:
        """Open the stream behind the breaker; retried only while nothing has been yielded."""

        async def open_stream() -> AsyncIterator[StreamChunk]:
            clock = Clock()
            dec = decoder(clock)
            response = await self._open("POST", url, headers=headers, body=body, model=model)
            try:
                async with aclosing(dec.run(response)) as chunks:
                    async for chunk in chunks:
                        yield chunk
            except ProviderError as exc:
                if exc.partial_content is None and dec.partial:
                    exc.partial_content = dec.partial
                raise
            except httpx.HTTPError as exc:
                raise transport_error(exc, self.name, model=model, partial=dec.partial or None) from exc
            except (json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
                raise InvalidResponseError(
                    f"Malformed stream event: {exc}",
                    self.name,
                    model=model,
                    raw_error=exc,
                    partial_content=dec.partial or None,
                ) from exc
            finally:
                await response.aclose()

        # stream_with_retry is an async generator (it has aclose) though typed as an iterator.
        return cast(
            AsyncGenerator[StreamChunk, None],
            stream_with_retry(
                open_stream,
                policy=self.retry_policy,
                breaker=self.breaker,
                provider=self.name,
                sleep=self._sleep,
            ),
        )


def final_chunk(
    *,
    clock: Clock,
    usage: Usage | None,
    stop_reason: str | None,
    tool_calls: list[Any],
    model: str | None,
    native_stop: str | None = None,
) -> StreamChunk:
    """The closing :class:`StreamChunk` every cloud protocol ends with."""
    metadata = {"native_stop_reason": native_stop} if native_stop else {}
    return StreamChunk(
        is_final=True,
        stop_reason=stop_reason,
        tool_calls=tool_calls or None,
        usage=usage,
        timings=clock.timings(usage.completion_tokens if usage else 0),
        model=model,
        metadata=metadata,
    )
