"""AWS Bedrock through the Converse API (``POST /model/{modelId}/converse`` and
``/converse-stream``), over httpx, signed with botocore's SigV4.

The stream is AWS's binary event-stream, decoded from the async byte stream by
:mod:`.eventstream` (Victor iterated botocore's blocking EventStream on the event loop). Auth: an
explicit ``api_key`` or ``AWS_BEARER_TOKEN_BEDROCK`` (a Bedrock API key, sent as a bearer token,
no botocore needed); otherwise SigV4 with ``aws_access_key_id``/``aws_secret_access_key``/
``aws_session_token`` or botocore's standard credential chain (:mod:`.bedrock_auth`, the optional
``bedrock`` extra). Region: ``region``, ``AWS_REGION``, the AWS config (``AWS_DEFAULT_REGION``,
the profile), else ``us-east-1``.

Claude's extended thinking is asked for with ``thinking={"type": "enabled", "budget_tokens": N}``
(or ``thinking=N``), sent as ``additionalModelRequestFields.thinking``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any
from urllib.parse import quote

import httpx

from victor_gui.core.redact import register_secret
from victor_gui.errors import ModelNotFoundError, ProviderError
from victor_gui.providers.call_memory import CallMemory
from victor_gui.providers.protocols.bedrock_auth import AwsAuth
from victor_gui.providers.protocols.bedrock_wire import BedrockStreamDecoder, build_payload, parse_converse
from victor_gui.providers.protocols.cloud_base import Clock, CloudProvider
from victor_gui.providers.types import (
    CompletionResponse,
    Message,
    ModelInfo,
    StreamChunk,
    ToolCall,
    ToolDefinition,
)


class BedrockProvider(CloudProvider):
    """Models on AWS Bedrock (Claude, Llama, Mistral, Nova, Titan, Cohere) via Converse.

    Extra keywords: ``region``, ``profile_name``, ``aws_access_key_id``, ``aws_secret_access_key``,
    ``aws_session_token``, ``control_url`` (the ``bedrock`` control-plane endpoint for listing).

    With thinking on, Bedrock rejects (400 ``ValidationException``) a tool loop whose last
    assistant turn does not open with the signed reasoning that preceded its ``toolUse``. The
    neutral history keeps only the reasoning text, so, as for Anthropic, the signed
    ``reasoningContent`` blocks of recent tool-calling replies are remembered here (bounded),
    keyed by their first tool-use id, and replayed; they are also on the final chunk's (or the
    response's) ``metadata["thinking_blocks"]``.
    """

    _THINKING_MEMORY = 256

    def __init__(
        self,
        *args: Any,
        region: str | None = None,
        profile_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        control_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.auth = AwsAuth(
            self.name,
            region=region,
            profile_name=profile_name,  # None: botocore reads AWS_PROFILE
            access_key=aws_access_key_id,
            secret_key=aws_secret_access_key,
            session_token=aws_session_token,
        )
        self.control_url = control_url
        self._thinking: CallMemory[list[dict[str, Any]]] = CallMemory(self._THINKING_MEMORY)

    def _body(self, messages: list[Message], temperature: float | None, max_tokens: int | None,
              tools: list[ToolDefinition] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return build_payload(messages, temperature=temperature, max_tokens=max_tokens, tools=tools,
                             kwargs=kwargs, thinking_for=self._thinking.get)

    def remember_thinking(self, calls: list[ToolCall], blocks: list[dict[str, Any]]) -> None:
        """Give back the signed thinking of a stored tool-calling turn (kept with the message),
        so a tool loop with thinking goes on after a restart as it would have in memory."""
        self._thinking.remember_turn(calls, blocks)

    def supports_reasoning(self, model: str | None = None) -> bool:
        return "claude" in (model or "") or "deepseek" in (model or "")

    # -- where and how -----------------------------------------------------------------------------

    async def runtime_url(self) -> str:
        """The runtime endpoint: ``base_url`` when given, else the region's (resolved off the loop)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"https://bedrock-runtime.{await self.auth.region()}.amazonaws.com"

    async def model_url(self, model: str, action: str) -> str:
        # Model ids and ARNs carry ':' and '/', which belong inside one path segment.
        return f"{await self.runtime_url()}/model/{quote(model, safe='')}/{action}"

    def _bearer(self) -> str | None:
        token = self.api_key or os.environ.get("AWS_BEARER_TOKEN_BEDROCK")
        register_secret(token)
        return token or None

    async def _headers(self, *, stream: bool = False) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "application/vnd.amazon.eventstream" if stream else "application/json",
        }
        bearer = self._bearer()
        if bearer:
            headers["authorization"] = f"Bearer {bearer}"
        else:
            await self.auth.require()  # no botocore or no credentials: fail before any I/O
        return headers

    async def prepare(self, request: httpx.Request) -> None:
        if "authorization" not in request.headers:
            await self.auth.sign(request)

    # -- errors --------------------------------------------------------------------------------

    def classify_error(
        self, status: int, body: str, headers: httpx.Headers, model: str | None
    ) -> ProviderError:
        kind = (headers.get("x-amzn-errortype") or "").split(":", 1)[0]
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested past the decoder's limit
            data = None
        message = str(data.get("message") or data.get("Message") or "") if isinstance(data, dict) else ""
        if kind in ("ValidationException", "ResourceNotFoundException") and (
            "model identifier is invalid" in message.lower() or kind == "ResourceNotFoundException"
        ):
            return ModelNotFoundError(
                f"HTTP {status}: {message} ({kind})", self.name, status_code=status, model=model
            )
        if kind and isinstance(data, dict):
            # Name the exception type so the shared classifier (and a person) can see it.
            body = json.dumps({"error": {"message": message, "type": kind}})
        return super().classify_error(status, body, headers, model)

    # -- the calls ---------------------------------------------------------------------------------

    async def chat(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float | None = 0.7,
        max_tokens: int = 4096,
        tools: list[ToolDefinition] | None = None,
        **kwargs: Any,
    ) -> CompletionResponse:
        """Converse: send the conversation and return the whole reply."""
        headers = await self._headers()
        body = self._body(messages, temperature, max_tokens, tools, kwargs)

        def parse(data: Any, clock: Clock) -> CompletionResponse:
            return parse_converse(data, clock, provider=self.name, model=model)

        result: CompletionResponse = await self._retrying_json(
            "POST",
            await self.model_url(model, "converse"),
            headers=headers,
            body=body,
            model=model,
            parse=parse,
        )
        self._thinking.remember_turn(result.tool_calls, result.metadata.get("thinking_blocks"))
        return result

    async def stream(
        self,
        messages: list[Message],
        *,
        model: str,
        temperature: float | None = 0.7,
        max_tokens: int = 4096,
        tools: list[ToolDefinition] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[StreamChunk]:
        """ConverseStream: text, reasoning and tool-use deltas, then the final chunk with usage."""
        headers = await self._headers(stream=True)
        body = self._body(messages, temperature, max_tokens, tools, kwargs)
        chunks = self._retrying_stream(
            await self.model_url(model, "converse-stream"),
            headers=headers,
            body=body,
            model=model,
            decoder=lambda clock: BedrockStreamDecoder(clock, provider=self.name, model=model),
        )
        async with aclosing(chunks):
            async for chunk in chunks:
                if chunk.is_final:
                    self._thinking.remember_turn(chunk.tool_calls, chunk.metadata.get("thinking_blocks"))
                yield chunk

    async def list_models(self) -> list[ModelInfo]:
        """Text models from the control plane's ``GET /foundation-models``."""
        base = self.control_url or (await self.runtime_url()).replace("bedrock-runtime.", "bedrock.", 1)
        headers = await self._headers()
        data = await self._retrying_json(
            "GET", f"{base.rstrip('/')}/foundation-models?byOutputModality=TEXT", headers=headers
        )
        return [
            ModelInfo(
                id=row["modelId"],
                provider=self.name,
                family=row.get("providerName"),
                capabilities=["chat", "streaming"] if row.get("responseStreamingSupported") else ["chat"],
                display_name=row.get("modelName"),
                raw=row,
            )
            for row in data.get("modelSummaries") or []
        ]


__all__ = ["BedrockProvider"]
