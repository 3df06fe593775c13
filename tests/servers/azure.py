"""Azure OpenAI simulator: ``POST /openai/deployments/{deployment}/chat/completions?api-version=``
and ``GET /openai/models``.

Faithful to what a client observes: the ``api-key`` header (or an Entra ``Authorization: Bearer``
token), a required ``api-version`` query parameter, deployments rather than models in the path
(``DeploymentNotFound``), Azure's error bodies (``{"error": {"code": "401", "message": ...}}``),
``Retry-After`` and ``retry-after-ms`` on 429, and the content filter: ``prompt_filter_results``
in the first stream chunk, ``content_filter_results`` per choice, a 400 with
``code: "content_filter"`` and ``innererror.content_filter_result`` for a filtered prompt,
``finish_reason: "content_filter"`` for a filtered reply. Streams are OpenAI SSE (``data:`` lines,
``data: [DONE]``), with a usage chunk when ``stream_options.include_usage`` is set. Tool history is
validated the way OpenAI does (every ``tool_call_id`` answered, no stray tool messages).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers.base import Fault, Script, SimHandler, SimServer
from tests.servers.quiet import quiet_disconnects

_CHAT = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions$")
_CLEAN = {c: {"filtered": False, "severity": "safe"} for c in ("hate", "self_harm", "sexual", "violence")}


class AzureHandler(SimHandler):
    routes: dict[tuple[str, str], str] = {}

    def extra_headers(self) -> dict[str, str]:
        return {"apim-request-id": str(uuid.uuid4()), "x-ms-region": "Sweden Central"}

    def error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        self.send_json(status, {"error": {"code": code, "message": message, **extra}}, headers)

    def unknown_route(self, path: str) -> None:
        query = parse_qs(urlsplit(self.path).query)
        if not self.check_auth():
            return
        if not query.get("api-version"):
            self.error(404, "404", "Resource not found")
            return
        if self.command == "GET" and path == "/openai/models":
            self.send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "capabilities": {"chat_completion": True}}
                        for m in self.server.models
                    ]
                    + [
                        {
                            "id": "text-embedding-3-small",
                            "object": "model",
                            "capabilities": {"chat_completion": False},
                        }
                    ],
                },
            )
            return
        match = _CHAT.match(path)
        if self.command != "POST" or match is None:
            self.error(404, "404", "Resource not found")
            return
        self.chat(match["deployment"])

    def check_auth(self) -> bool:
        key = self.headers.get("api-key")
        token = self.server.options.get("bearer_token")
        if token is not None and self.headers.get("authorization") == f"Bearer {token}":
            return True
        if self.server.api_key is not None and key != self.server.api_key:
            self.error(
                401,
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                "to provide a valid key for an active subscription and use a correct regional API "
                "endpoint for your resource.",
            )
            return False
        return True

    def validate(self, body: Any) -> str | None:
        if not isinstance(body, dict) or not body.get("messages"):
            return "'messages' is a required property"
        pending: list[str] = []
        for msg in body["messages"]:
            role = msg.get("role")
            if role == "tool":
                if msg.get("tool_call_id") not in pending:
                    return (
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                        "message with 'tool_calls'."
                    )
                pending.remove(msg["tool_call_id"])
                continue
            if pending:
                return (
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to "
                    f"each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                    f"{', '.join(pending)}"
                )
            if role not in ("system", "user", "assistant", "developer"):
                return (
                    f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'tool'."
                )
            pending = [c["id"] for c in msg.get("tool_calls") or []]
        if pending:
            return f"The following tool_call_ids did not have response messages: {', '.join(pending)}"
        return None

    def chat(self, deployment: str) -> None:
        problem = self.validate(self.body)
        if problem:
            self.error(400, "invalid_request_error", problem, type="invalid_request_error", param="messages")
            return
        script = self.next_script()
        if self.http_fault(script):
            return
        if deployment not in self.server.models:
            self.error(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you "
                "created the deployment within the last 5 minutes, please wait a "
                "moment and try again.",
            )
            return
        if self.server.options.get("filter_prompt"):
            self.send_json(
                400,
                {
                    "error": {
                        "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
                        "content management policy. Please modify your prompt and retry.",
                        "type": None,
                        "param": "prompt",
                        "code": "content_filter",
                        "status": 400,
                        "innererror": {
                            "code": "ResponsibleAIPolicyViolation",
                            "content_filter_result": {
                                **_CLEAN,
                                "violence": {"filtered": True, "severity": "high"},
                            },
                        },
                    }
                },
            )
            return
        if self.body.get("stream"):
            try:
                self.stream(script, deployment)
            except (BrokenPipeError, ConnectionResetError):
                self.server.disconnects.append(self.path)  # type: ignore[attr-defined]
                self.close_connection = True
        else:
            self.whole(script, deployment)

    def http_fault(self, script: Script) -> bool:
        fault = script.fault
        if fault == Fault.UNAUTHORIZED:
            self.error(401, "401", "Access denied due to invalid subscription key or wrong API endpoint.")
        elif fault == Fault.UNKNOWN_MODEL:
            self.error(404, "DeploymentNotFound", "The API deployment for this resource does not exist.")
        elif fault == Fault.RATE_LIMIT:
            self.error(
                429,
                "429",
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
                f"2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
                f"Please retry after {script.retry_after} seconds.",
                {
                    "retry-after": script.retry_after,
                    "retry-after-ms": str(int(float(script.retry_after) * 1000)),
                },
            )
        elif fault == Fault.SERVER_ERROR:
            self.error(
                500,
                "InternalServerError",
                "The server had an error while processing your request. Sorry about that!",
            )
        elif fault == Fault.LOADING:
            self.error(
                503,
                "ServiceUnavailable",
                "The service is temporarily unable to process your request. Please try again later.",
            )
        elif fault == Fault.HTML:
            self.html_error_page(502)
        elif fault == Fault.CONTEXT_OVERFLOW:
            self.error(
                400,
                "context_length_exceeded",
                "This model's maximum context length is 128000 tokens. "
                "However, your messages resulted in 131072 tokens. Please reduce the length of the messages.",
                type="invalid_request_error",
                param="messages",
            )
        elif fault == Fault.STALL and not self.body.get("stream"):
            self.stall()
        else:
            return False
        return True

    def usage(self, script: Script) -> dict[str, Any]:
        n = script.completion_count()
        return {
            "prompt_tokens": script.prompt_tokens,
            "completion_tokens": n,
            "total_tokens": script.prompt_tokens + n,
            "prompt_tokens_details": {"cached_tokens": int(self.server.options.get("cached", 0))},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    def calls(self, script: Script) -> list[dict[str, Any]]:
        return [
            {
                "id": c.id or "call_" + uuid.uuid4().hex[:24],
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in script.tool_calls
        ]

    def whole(self, script: Script, deployment: str) -> None:
        self.pause(script)
        if script.fault == Fault.MALFORMED:
            self.send_bytes(200, b'{"choices": [{"message": ', "application/json")
            return
        finish = self.server.options.get("finish_reason") or ("tool_calls" if script.tool_calls else "stop")
        message: dict[str, Any] = {"role": "assistant", "content": script.text or None}
        if script.tool_calls:
            message["tool_calls"] = self.calls(script)
        reply = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "gpt-4o-2024-11-20",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _CLEAN}],
            "choices": [
                {"index": 0, "finish_reason": finish, "message": message, "content_filter_results": _CLEAN}
            ],
            "usage": self.usage(script),
        }
        if script.fault == Fault.TRUNCATED:
            self.send_truncated(200, json.dumps(reply).encode(), "application/json")
            return
        self.send_json(200, reply)

    def data(self, payload: Any, script: Script | None = None) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        frame = f"data: {text}\n\n".encode()
        self.write_frame(frame, script)

    def stream(self, script: Script, deployment: str) -> None:
        self.start_stream("text/event-stream; charset=utf-8")
        if self.stall_at_start(script):
            return
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        base = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": "gpt-4o-2024-11-20",
        }
        self.data(
            {
                "choices": [],
                "created": 0,
                "id": "",
                "model": "",
                "object": "",
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _CLEAN}],
            }
        )
        pieces = script.text_pieces()
        for n, piece in enumerate(pieces):
            if n == script.fail_after and self.mid_fault(script):
                return
            self.pause(script)
            self.data(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": None,
                            "delta": {"content": piece},
                            "content_filter_results": _CLEAN,
                        }
                    ],
                },
                script,
            )
        if script.fail_after >= len(pieces) and self.mid_fault(script):
            return
        for i, call in enumerate(self.calls(script)):
            args = call["function"]["arguments"]
            cut = len(args) // 2
            self.data(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": None,
                            "delta": {
                                "tool_calls": [
                                    {
                                        "index": i,
                                        "id": call["id"],
                                        "type": "function",
                                        "function": {"name": call["function"]["name"], "arguments": ""},
                                    }
                                ]
                            },
                        }
                    ],
                }
            )
            for part in (args[:cut], args[cut:]):
                self.data(
                    {
                        **base,
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": None,
                                "delta": {"tool_calls": [{"index": i, "function": {"arguments": part}}]},
                            }
                        ],
                    }
                )
        finish = self.server.options.get("finish_reason") or ("tool_calls" if script.tool_calls else "stop")
        filt = (
            {**_CLEAN, "violence": {"filtered": True, "severity": "high"}}
            if finish == "content_filter"
            else _CLEAN
        )
        self.data(
            {
                **base,
                "choices": [
                    {"index": 0, "finish_reason": finish, "delta": {}, "content_filter_results": filt}
                ],
            }
        )
        if (self.body.get("stream_options") or {}).get("include_usage"):
            self.data({**base, "choices": [], "usage": self.usage(script)})
        self.data("[DONE]")
        self.end_stream()

    def midstream_error(self) -> None:
        self.data(
            {
                "error": {
                    "message": "The server had an error while processing your request.",
                    "type": "server_error",
                    "code": "500",
                }
            }
        )

    def malformed_frame(self) -> str:
        return 'data: {"choices": [{"delta": {"content": \n\n'


def make_server(port: int = 0, **options: Any) -> SimServer:
    """An Azure OpenAI simulator. ``api_key=`` enforces the key; ``model=`` names the deployment;
    ``bearer_token=`` accepts an Entra token; ``filter_prompt=True`` filters every prompt;
    ``finish_reason="content_filter"`` filters every reply; ``cached=`` the cached prompt tokens."""
    if "model" not in options:
        options["model"] = "gpt-4o-deploy"
    server = SimServer(AzureHandler, port, **options)
    server.disconnects = []  # type: ignore[attr-defined]
    return quiet_disconnects(server)
