"""A minimal OpenAI-compatible streaming provider for tests and benches.

It exists so the services and UI can be driven end to end before the real
``victor_gui.providers.protocols.openai_compat`` lands; it uses the project's own HTTP seam
(``raise_for_status``, ``iter_sse``, ``transport_error``), so what it exercises is real.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from victor_gui.errors import ProviderError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.http import LOCAL_TIMEOUTS, parse_json_body, raise_for_status, transport_error
from victor_gui.providers.streaming import iter_sse
from victor_gui.providers.types import (
    CompletionResponse,
    Message,
    ModelInfo,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    ToolDefinition,
    Usage,
)


class SimOpenAIProvider(BaseProvider):
    default_timeouts = LOCAL_TIMEOUTS

    def __init__(self, *args: Any, spec: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._name = getattr(spec, "name", None) or kwargs.get("name") or "simopenai"

    @property
    def name(self) -> str:
        return self._name

    def supports_streaming(self) -> bool:
        return True

    def _payload(self, messages: list[Message], model: str, stream: bool, **kw: Any) -> dict[str, Any]:
        return {"model": model, "stream": stream, "temperature": kw.get("temperature", 0.7),
                "max_tokens": kw.get("max_tokens", 4096),
                "messages": [{"role": m.role, "content": m.text} for m in messages]}

    async def list_models(self) -> list[ModelInfo]:
        try:
            response = await self.http.get(f"{self.base_url}/models", timeout=self.timeouts().to_httpx())
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.name) from exc
        await raise_for_status(response, provider=self.name)
        data = parse_json_body(response.content, provider=self.name)
        return [ModelInfo(id=m["id"], provider=self.name) for m in data.get("data", [])]

    async def chat(self, messages: list[Message], *, model: str, temperature: float = 0.7,
                   max_tokens: int = 4096, tools: list[ToolDefinition] | None = None,
                   **kwargs: Any) -> CompletionResponse:
        parts = [c async for c in self.stream(messages, model=model)]
        return CompletionResponse(content="".join(p.content for p in parts), model=model)

    async def stream(self, messages: list[Message], *, model: str, temperature: float = 0.7,
                     max_tokens: int = 4096, tools: list[ToolDefinition] | None = None,
                     **kwargs: Any) -> AsyncIterator[StreamChunk]:
        payload = self._payload(messages, model, True, temperature=temperature, max_tokens=max_tokens)
        content = ""
        calls: dict[int, dict[str, str]] = {}
        try:
            async with self.http.stream("POST", f"{self.base_url}/chat/completions", json=payload,
                                        timeout=self.timeouts().to_httpx()) as response:
                await raise_for_status(response, provider=self.name, model=model)
                usage = None
                stop = None
                async with aclosing(iter_sse(response, provider=self.name)) as events:
                    async for event in events:
                        if event.data.strip() == "[DONE]":
                            break
                        data = json.loads(event.data)
                        if data.get("usage"):
                            usage = Usage(**data["usage"])
                        for choice in data.get("choices") or []:
                            delta = choice.get("delta") or {}
                            stop = choice.get("finish_reason") or stop
                            deltas = []
                            for tc in delta.get("tool_calls") or []:
                                slot = calls.setdefault(tc["index"], {"id": "", "name": "", "args": ""})
                                fn = tc.get("function") or {}
                                slot["id"] = tc.get("id") or slot["id"]
                                slot["name"] = fn.get("name") or slot["name"]
                                slot["args"] += fn.get("arguments") or ""
                                deltas.append(ToolCallDelta(index=tc["index"], id=tc.get("id"),
                                                            name=fn.get("name"),
                                                            arguments_delta=fn.get("arguments") or ""))
                            text = delta.get("content") or ""
                            content += text
                            if text or delta.get("reasoning_content") or deltas:
                                yield StreamChunk(content=text,
                                                  reasoning=delta.get("reasoning_content") or "",
                                                  tool_call_deltas=deltas or None, model=model)
        except ProviderError:
            raise
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.name, model=model, partial=content or None) from exc
        tool_calls = [ToolCall(id=c["id"], name=c["name"], arguments=c["args"])
                      for _, c in sorted(calls.items())]
        yield StreamChunk(is_final=True, usage=usage, stop_reason=stop, tool_calls=tool_calls or None,
                          model=model)
