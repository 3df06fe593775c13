"""The seed's custom-provider example, run end to end against a real HTTP server.

The block between the two marker lines is the seed's ``CustomProvider`` text (``000_*.txt``,
"To implement a custom provider") verbatim, with two edits only:

* ``from victor.providers.base`` -> ``from victor_gui.providers.base`` (the package name);
* ``YourAPIClient(api_key=api_key, ...)`` -> ``YourAPIClient(api_key=api_key, base_url=base_url,
  timeout=timeout)``: the seed's ``...`` placeholder after a keyword argument is a SyntaxError
  ("positional argument follows keyword argument"), so it has to be spelled out.

``YourAPIClient`` below is a small real httpx client for a tiny JSON API served on 127.0.0.1 by
a :class:`tests.servers.base.SimServer` handler; nothing of ours is mocked.
"""

# ---- seed text begins -------------------------------------------------------------------------
from typing import Any, AsyncIterator, Dict, List, Optional

from victor_gui.providers.base import (
    BaseProvider,
    CompletionResponse,
    Message,
    ProviderError,
    StreamChunk,
    ToolDefinition,
)


class CustomProvider(BaseProvider):
    """Custom LLM provider implementation."""

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: int = 60,
        max_retries: int = 3,
        **kwargs: Any,
    ):
        """Initialize custom provider.

        Args:
            api_key: API key for authentication
            base_url: Optional base URL for API
            timeout: Request timeout in seconds
            max_retries: Maximum retry attempts
            **kwargs: Additional configuration
        """
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            **kwargs,
        )
        # Initialize your client here
        self.client = YourAPIClient(api_key=api_key, base_url=base_url, timeout=timeout)

    @property
    def name(self) -> str:
        """Provider name."""
        return "custom"

    def supports_tools(self) -> bool:
        """Return True if your provider supports tool calling."""
        return True

    def supports_streaming(self) -> bool:
        """Return True if your provider supports streaming."""
        return True

    async def chat(
        self,
        messages: List[Message],
        *,
        model: str,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        tools: Optional[List[ToolDefinition]] = None,
        **kwargs: Any,
    ) -> CompletionResponse:
        """Send chat completion request.

        Args:
            messages: Conversation messages
            model: Model name
            temperature: Sampling temperature
            max_tokens: Maximum tokens to generate
            tools: Available tools
            **kwargs: Additional parameters

        Returns:
            CompletionResponse with generated content
        """
        try:
            # Convert messages to your provider's format
            formatted_messages = self._format_messages(messages)

            # Make API call with circuit breaker protection
            response = await self._execute_with_circuit_breaker(
                self.client.chat,
                messages=formatted_messages,
                model=model,
                temperature=temperature,
                max_tokens=max_tokens,
                tools=self._convert_tools(tools) if tools else None,
                **kwargs,
            )

            # Parse and return normalized response
            return self._parse_response(response, model)

        except Exception as e:
            raise self._handle_error(e)

    async def stream(
        self,
        messages: List[Message],
        *,
        model: str,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        tools: Optional[List[ToolDefinition]] = None,
        **kwargs: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Stream chat completion response.

        Yields:
            StreamChunk objects with incremental content
        """
        try:
            formatted_messages = self._format_messages(messages)

            async for chunk in self.client.stream(
                messages=formatted_messages,
                model=model,
                temperature=temperature,
                max_tokens=max_tokens,
                **kwargs,
            ):
                yield StreamChunk(
                    content=chunk.text or "",
                    is_final=chunk.is_done,
                    tool_calls=chunk.tool_calls if chunk.is_done else None,
                    stop_reason="stop" if chunk.is_done else None,
                )

        except Exception as e:
            raise self._handle_error(e)

    async def close(self) -> None:
        """Close HTTP client."""
        await self.client.close()

    def _format_messages(self, messages: List[Message]) -> List[Dict]:
        """Convert standard messages to provider format."""
        return [{"role": m.role, "content": m.content} for m in messages]

    def _convert_tools(self, tools: List[ToolDefinition]) -> List[Dict]:
        """Convert standard tools to provider format."""
        return [
            {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            }
            for t in tools
        ]

    def _parse_response(self, response: Any, model: str) -> CompletionResponse:
        """Parse API response to standard format."""
        return CompletionResponse(
            content=response.text,
            role="assistant",
            tool_calls=response.tool_calls,
            stop_reason=response.stop_reason,
            usage={
                "prompt_tokens": response.usage.input,
                "completion_tokens": response.usage.output,
                "total_tokens": response.usage.total,
            },
            model=model,
        )

    def _handle_error(self, error: Exception) -> ProviderError:
        """Convert API errors to standard ProviderError."""
        raise ProviderError(
            message=f"Custom provider error: {error}",
            provider=self.name,
            raw_error=error,
        )


# ---- seed text ends ----------------------------------------------------------------------------

import json  # after the seed's text on purpose
from collections.abc import AsyncIterator as _AsyncIterator
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.servers.base import Fault, Script, ScriptedToolCall, SimHandler, SimServer
from victor_gui.errors import BadRequestError, ProviderServerError
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.resilience import RetryPolicy
from victor_gui.providers.types import ToolCall, Usage

API_KEY = "your-api-key"
FAST_RETRY = RetryPolicy(max_retries=3, base_delay=0.001, max_delay=0.005, jitter=0.0)


# -- the provider's own API: a tiny JSON service ---------------------------------------------------


class _YourAPIHandler(SimHandler):
    """``POST /chat`` answers one JSON object; ``POST /stream`` answers NDJSON lines."""

    routes = {("POST", "/chat"): "chat", ("POST", "/stream"): "stream"}

    def _fail(self, script: Script) -> bool:
        if script.fault == Fault.SERVER_ERROR:
            # Echo the caller's credentials, as careless upstreams do: they must not leak.
            auth = self.headers.get("Authorization", "")
            self.send_json(500, {"error": {"message": f"upstream exploded handling {auth}"}})
            return True
        if script.fault == Fault.CONTEXT_OVERFLOW:
            self.send_json(400, {"error": {"message": "HTTP 500 said the backend; prompt rejected"}})
            return True
        return False

    def _usage(self, script: Script) -> dict[str, int]:
        prompt = sum(len(str(m["content"]).split()) for m in self.body["messages"])
        output = len(script.text.split())
        return {"input": prompt, "output": output, "total": prompt + output}

    def _calls(self, script: Script) -> list[dict[str, object]]:
        if not self.body.get("tools"):
            return []
        return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in script.tool_calls]

    def chat(self) -> None:
        script = self.next_script()
        if self._fail(script):
            return
        calls = self._calls(script)
        self.send_json(200, {
            "text": script.text,
            "tool_calls": calls or None,
            "stop_reason": "tool_use" if calls else "end_turn",
            "usage": self._usage(script),
        })

    def stream(self) -> None:
        script = self.next_script()
        if self._fail(script):
            return
        self.start_stream("application/x-ndjson")
        for piece in script.text_pieces():
            self.write_chunk(json.dumps({"text": piece, "done": False}) + "\n")
        self.write_chunk(json.dumps({"text": "", "done": True, "tool_calls": self._calls(script),
                                     "usage": self._usage(script)}) + "\n")
        self.end_stream()


@dataclass
class _Usage:
    input: int
    output: int
    total: int


@dataclass
class _Reply:
    text: str
    tool_calls: list[dict[str, object]] | None
    stop_reason: str
    usage: _Usage


@dataclass
class _Chunk:
    text: str
    is_done: bool
    tool_calls: list[dict[str, object]] = field(default_factory=list)


class YourAPIClient:
    """The vendor SDK the seed's example wraps: async, httpx, its own reply shapes."""

    def __init__(self, api_key: str | None, base_url: str | None, timeout: float = 60) -> None:
        self._http = httpx.AsyncClient(base_url=base_url or "", timeout=timeout, trust_env=False,
                                       headers={"Authorization": f"Bearer {api_key}"})

    @staticmethod
    def _payload(messages: list[dict[str, object]], model: str, temperature: float, max_tokens: int,
                 tools: list[dict[str, object]] | None = None, **extra: object) -> dict[str, object]:
        return {"messages": messages, "model": model, "temperature": temperature,
                "max_tokens": max_tokens, "tools": tools, **extra}

    async def chat(self, **request: object) -> _Reply:
        response = await self._http.post("/chat", json=self._payload(**request))  # type: ignore[arg-type]
        response.raise_for_status()
        data = response.json()
        return _Reply(data["text"], data["tool_calls"], data["stop_reason"], _Usage(**data["usage"]))

    async def stream(self, **request: object) -> _AsyncIterator[_Chunk]:
        async with self._http.stream("POST", "/stream", json=self._payload(**request)) as response:  # type: ignore[arg-type]
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.strip():
                    data = json.loads(line)
                    yield _Chunk(data["text"], data["done"], data.get("tool_calls") or [])

    async def close(self) -> None:
        await self._http.aclose()


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(_YourAPIHandler) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _registered() -> Iterator[None]:
    ProviderRegistry.register("custom", CustomProvider)
    yield
    ProviderRegistry.unregister("custom")


def _create(server: SimServer, **extra: object) -> BaseProvider:
    return ProviderRegistry.create("custom", api_key=API_KEY, base_url=server.url, **extra)


MESSAGES = [Message(role="system", content="You are terse."),
            Message(role="user", content="Say hello please")]
TOOLS = [ToolDefinition(name="get_time", description="Current time", parameters={
    "type": "object", "properties": {"tz": {"type": "string"}}})]


# -- tests ---------------------------------------------------------------------------------------------


async def test_chat_end_to_end(server: SimServer) -> None:
    server.script(Script(text="Hello there, friend.", tool_calls=[
        ScriptedToolCall("get_time", {"tz": "UTC"}, id="t1")]))
    provider = _create(server)
    assert isinstance(provider, CustomProvider) and provider.name == "custom"
    assert provider.supports_tools() and provider.supports_streaming()
    try:
        response = await provider.chat(MESSAGES, model="custom-large", tools=TOOLS, max_tokens=64)
    finally:
        await provider.close()

    assert isinstance(response, CompletionResponse)
    assert response.content == "Hello there, friend." and response.role == "assistant"
    assert response.model == "custom-large" and response.stop_reason == "tool_use"
    assert isinstance(response.usage, Usage)
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (6, 3)
    assert response.usage["total_tokens"] == 9
    assert response.tool_calls == [ToolCall(id="t1", name="get_time", arguments={"tz": "UTC"})]

    (request,) = server.chat_requests()
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["messages"] == [{"role": "system", "content": "You are terse."},
                                        {"role": "user", "content": "Say hello please"}]
    assert request.body["tools"] == [{"name": "get_time", "description": "Current time",
                                      "parameters": TOOLS[0].parameters}]
    assert (request.body["model"], request.body["temperature"], request.body["max_tokens"]) == (
        "custom-large", 0.7, 64)


async def test_stream_end_to_end(server: SimServer) -> None:
    server.script(Script(text="Streaming works fine.", pieces=4, tool_calls=[
        ScriptedToolCall("get_time", {"tz": "CET"}, id="t9")]))
    provider = _create(server)
    try:
        chunks = [c async for c in provider.stream(MESSAGES, model="custom-large", tools=TOOLS)]
    finally:
        await provider.close()

    assert all(isinstance(c, StreamChunk) for c in chunks)
    assert "".join(c.content for c in chunks) == "Streaming works fine."
    assert len(chunks) == 5
    assert [c.is_final for c in chunks] == [False] * 4 + [True]
    assert all(c.stop_reason is None and c.tool_calls is None for c in chunks[:-1])
    # The seed's stream() passes no tools to the client, so the final chunk has none either.
    assert chunks[-1].stop_reason == "stop" and chunks[-1].tool_calls == []
    assert server.requests[0].path == "/stream" and server.requests[0].body["tools"] is None


async def test_server_errors_are_retried_then_become_a_provider_error(server: SimServer) -> None:
    server.script(Script(fault=Fault.SERVER_ERROR, repeat=10))
    provider = _create(server, retry_policy=FAST_RETRY)
    try:
        with pytest.raises(ProviderError) as info:
            await provider.chat(MESSAGES, model="custom-large")
    finally:
        await provider.close()

    assert len(server.chat_requests()) == 4  # the first try and max_retries=3 more
    error = info.value
    assert type(error) is ProviderError and error.provider == "custom"
    assert str(error).startswith("Custom provider error:")
    # _execute_with_circuit_breaker typed the HTTP 500 before the seed's handler wrapped it.
    assert isinstance(error.raw_error, ProviderServerError) and error.raw_error.status_code == 500
    assert API_KEY not in str(error) and API_KEY not in str(error.raw_error)
    assert "Bearer ***" in str(error)


async def test_bad_request_mentioning_500_is_not_retried(server: SimServer) -> None:
    server.script(Script(fault=Fault.CONTEXT_OVERFLOW, repeat=10))
    provider = _create(server, retry_policy=FAST_RETRY)
    try:
        with pytest.raises(ProviderError) as info:
            await provider.chat(MESSAGES, model="custom-large")
    finally:
        await provider.close()
    assert len(server.chat_requests()) == 1
    assert isinstance(info.value.raw_error, BadRequestError)


async def test_stream_failure_is_a_provider_error(server: SimServer) -> None:
    server.script(Script(fault=Fault.SERVER_ERROR))
    provider = _create(server)
    try:
        with pytest.raises(ProviderError) as info:
            async for _ in provider.stream(MESSAGES, model="custom-large"):
                pass
    finally:
        await provider.close()
    assert info.value.provider == "custom"
    assert isinstance(info.value.raw_error, httpx.HTTPStatusError)
    assert API_KEY not in str(info.value)
