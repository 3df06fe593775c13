"""Anthropic Messages API simulator (``POST /v1/messages``, ``GET /v1/models``).

Faithful to the public reference in what a client can observe: ``x-api-key`` and
``anthropic-version`` checks, the ``{"type":"error","error":{"type","message"}}`` body with its
status per type (529 for ``overloaded_error``), ``request-id`` headers, the SSE framing
(``event:`` + ``data:`` lines, blank-line separated) and event order
(``message_start``, ``ping``, ``content_block_start/delta/stop``, ``message_delta``,
``message_stop``), and the request validation that matters for tool history: roles, ``tool_use``
id pattern, every ``tool_use`` answered by a ``tool_result`` in the next user turn.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from tests.servers.base import Fault, Script, SimHandler, SimServer
from tests.servers.quiet import quiet_disconnects

_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
IMAGE_MAX_BASE64 = 5 * 1024 * 1024  # per image, counted on the base64 text (docs.claude.com vision)
STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def error_body(etype: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": etype, "message": message},
        "request_id": "req_" + uuid.uuid4().hex[:24],
    }


class AnthropicHandler(SimHandler):
    routes = {("POST", "/v1/messages"): "messages", ("GET", "/v1/models"): "models"}

    def extra_headers(self) -> dict[str, str]:
        return {"request-id": "req_" + uuid.uuid4().hex[:24], "anthropic-organization-id": "sim-org"}

    def unknown_route(self, path: str) -> None:
        self.error(404, "not_found_error", "Not Found")

    def error(self, status: int, etype: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, error_body(etype, message), headers)

    # -- auth and validation ---------------------------------------------------------------------

    def check_auth(self) -> bool:
        key = self.headers.get("x-api-key")
        if self.server.api_key is not None:
            if not key:
                self.error(401, "authentication_error", "x-api-key header is required")
                return False
            if key != self.server.api_key:
                self.error(401, "authentication_error", "invalid x-api-key")
                return False
        if not self.headers.get("anthropic-version"):
            self.error(400, "invalid_request_error", "anthropic-version: header is required")
            return False
        return True

    def validate(self, body: Any) -> str | None:
        """The first validation failure, worded like the API's, or None."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                return f"{field}: Field required"
        messages = body["messages"]
        if not messages:
            return "messages: at least one message is required"
        if messages[0].get("role") != "user":
            return 'messages: first message must use the "user" role'
        pending: set[str] = set()
        for i, msg in enumerate(messages):
            role = msg.get("role")
            if role not in ("user", "assistant"):
                return f"messages.{i}.role: Input should be 'user' or 'assistant'"
            if i and messages[i - 1].get("role") == role:
                return 'messages: roles must alternate between "user" and "assistant"'
            content = msg.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            if not blocks:
                return f"messages.{i}: all messages must have non-empty content"
            results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            if pending and not pending <= results:
                missing = ", ".join(sorted(pending - results))
                return (
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
                    f"after: {missing}. Each `tool_use` block must have a corresponding `tool_result` "
                    "block in the next message."
                )
            if results - pending:
                bad = sorted(results - pending)[0]
                return (
                    f"messages.{i}.content.0: unexpected `tool_use_id` found in `tool_result` blocks: {bad}. "
                    "Each `tool_result` block must have a corresponding `tool_use` block in the "
                    "previous message."
                )
            pending = set()
            for j, block in enumerate(blocks):
                if block.get("type") == "text" and not block.get("text"):
                    return f"messages.{i}.content.{j}.text: text content blocks must be non-empty"
                if block.get("type") == "tool_use":
                    if not _ID.match(str(block.get("id", ""))):
                        return (
                            f"messages.{i}.content.{j}.tool_use.id: "
                            "String should match pattern '^[a-zA-Z0-9_-]+$'"
                        )
                    pending.add(block["id"])
                if block.get("type") == "image" and (block.get("source") or {}).get("type") != "base64":
                    return f"messages.{i}.content.{j}.image.source: unsupported source type"
                source = (block.get("source") or {}) if block.get("type") == "image" else {}
                size = len(str(source.get("data", "")))
                if size > IMAGE_MAX_BASE64:  # the API counts the base64 text against its 5 MB per image
                    return (f"messages.{i}.content.{j}.image.source.base64: image exceeds 5 MB maximum: "
                            f"{size} bytes > {IMAGE_MAX_BASE64} bytes")
        if pending:
            return "messages: the final assistant `tool_use` has no `tool_result`"
        if body.get("thinking"):
            # In a tool loop with thinking on, the last assistant turn must open with its thinking.
            for i in range(len(messages) - 1, -1, -1):
                msg = messages[i]
                if msg["role"] != "assistant" or isinstance(msg["content"], str):
                    continue
                kinds = [b.get("type") for b in msg["content"]]
                if "tool_use" in kinds and kinds[0] not in ("thinking", "redacted_thinking"):
                    return (
                        f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
                        f"found `{kinds[0]}`. When `thinking` is enabled, a final `assistant` message must "
                        "start with a thinking block (preceeding the lastmost set of `tool_use` and "
                        "`tool_result` blocks)."
                    )
                if kinds[0] == "thinking" and not msg["content"][0].get("signature"):
                    return f"messages.{i}.content.0.thinking.signature: Field required"
                break
        return None

    # -- routes ----------------------------------------------------------------------------------

    def models(self) -> None:
        if not self.check_auth():
            return
        data = [
            {"type": "model", "id": m, "display_name": m.title(), "created_at": "2025-05-14T00:00:00Z"}
            for m in self.server.models
        ]
        self.send_json(
            200,
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            },
        )

    def messages(self) -> None:
        if not self.check_auth():
            return
        problem = self.validate(self.body)
        if problem:
            self.error(400, "invalid_request_error", problem)
            return
        script = self.next_script()
        if self.http_fault(script):
            return
        if self.body.get("model") not in self.server.models:
            self.error(404, "not_found_error", f"model: {self.body.get('model')}")
            return
        if self.body.get("stream"):
            try:
                self.stream(script)
            except (BrokenPipeError, ConnectionResetError):
                # The client went away mid-stream (Stop): tests read this to prove the close reached us.
                self.server.disconnects.append(self.path)  # type: ignore[attr-defined]
                self.close_connection = True
        else:
            self.whole(script)

    def http_fault(self, script: Script) -> bool:
        fault = script.fault
        if fault == Fault.UNAUTHORIZED:
            self.error(401, "authentication_error", "invalid x-api-key")
        elif fault == Fault.UNKNOWN_MODEL:
            self.error(404, "not_found_error", f"model: {self.body.get('model')}")
        elif fault == Fault.RATE_LIMIT:
            self.error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
                {"retry-after": script.retry_after, "anthropic-ratelimit-requests-remaining": "0"},
            )
        elif fault == Fault.SERVER_ERROR:
            self.error(500, "api_error", "Internal server error")
        elif fault == Fault.LOADING:
            self.error(529, "overloaded_error", "Overloaded")
        elif fault == Fault.HTML:
            self.html_error_page(502)
        elif fault == Fault.CONTEXT_OVERFLOW:
            self.error(400, "invalid_request_error", "prompt is too long: 215734 tokens > 200000 maximum")
        elif fault == Fault.STALL and not self.body.get("stream"):
            self.stall()
        else:
            return False
        return True

    def usage(self, script: Script, output: int | None = None) -> dict[str, Any]:
        return {
            "input_tokens": script.prompt_tokens,
            "output_tokens": script.completion_count() if output is None else output,
            "cache_creation_input_tokens": self.server.options.get("cache_creation", 0),
            "cache_read_input_tokens": self.server.options.get("cache_read", 0),
        }

    def content(self, script: Script) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if script.reasoning:
            blocks.append(
                {"type": "thinking", "thinking": script.reasoning, "signature": "EqQBCgIYAhIM" + "x" * 24}
            )
        if script.text:
            blocks.append({"type": "text", "text": script.text})
        for call in script.tool_calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.id or "toolu_" + uuid.uuid4().hex[:24],
                    "name": call.name,
                    "input": call.arguments,
                }
            )
        return blocks

    def whole(self, script: Script) -> None:
        self.pause(script)
        if script.fault == Fault.MALFORMED:
            self.send_bytes(200, b'{"id": "msg_1", "type": "message", "content": [', "application/json")
            return
        message = {
            "id": "msg_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": self.body["model"],
            "content": self.content(script),
            "stop_reason": "tool_use" if script.tool_calls else "end_turn",
            "stop_sequence": None,
            "usage": self.usage(script),
        }
        if script.fault == Fault.TRUNCATED:
            self.send_truncated(200, json.dumps(message).encode(), "application/json")
            return
        self.send_json(200, message)

    # -- streaming -------------------------------------------------------------------------------

    def event(self, name: str, data: dict[str, Any]) -> None:
        self.write_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n")

    def stream(self, script: Script) -> None:
        self.start_stream("text/event-stream; charset=utf-8")
        msg_id = "msg_" + uuid.uuid4().hex[:24]
        self.event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.body["model"],
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": self.usage(script, output=1),
                },
            },
        )
        if self.stall_at_start(script):
            return
        self.event("ping", {"type": "ping"})
        index = 0
        sent = 0
        if script.reasoning:
            self.event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": ""},
                },
            )
            self.event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "thinking_delta", "thinking": script.reasoning},
                },
            )
            self.event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"},
                },
            )
            self.event("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        pieces = script.text_pieces()
        if pieces:
            self.event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            for piece in pieces:
                if sent == script.fail_after and self.mid_fault(script):
                    return
                self.pause(script)
                self.text_delta(index, piece, script)
                sent += 1
            self.event("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        if script.fail_after >= len(pieces) and self.mid_fault(script):
            return  # a fault due after more pieces than there are fires before the tool calls
        for call in script.tool_calls:
            call_id = call.id or "toolu_" + uuid.uuid4().hex[:24]
            self.event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "tool_use", "id": call_id, "name": call.name, "input": {}},
                },
            )
            raw = json.dumps(call.arguments)
            cut = max(1, len(raw) // 2)
            for part in ("", raw[:cut], raw[cut:]):
                self.event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": part},
                    },
                )
            self.event("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        self.event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": "tool_use" if script.tool_calls else "end_turn",
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": script.completion_count()},
            },
        )
        self.event("message_stop", {"type": "message_stop"})
        self.end_stream()

    def text_delta(self, index: int, piece: str, script: Script) -> None:
        frame = (
            "event: content_block_delta\ndata: "
            + json.dumps(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": piece},
                },
                ensure_ascii=False,
            )
            + "\n\n"
        ).encode("utf-8")
        self.write_frame(frame, script)

    def midstream_error(self) -> None:
        self.event("error", error_body("overloaded_error", "Overloaded"))

    def malformed_frame(self) -> str:
        return 'event: content_block_delta\ndata: {"type": "content_block_delta", "index": \n\n'


def make_server(port: int = 0, **options: Any) -> SimServer:
    """An Anthropic simulator; ``api_key=`` enforces a key, ``cache_read=``/``cache_creation=``
    set the prompt-cache usage it reports, ``model=`` the model it knows."""
    if "model" not in options:
        options["model"] = "claude-sim-4"
    server = SimServer(AnthropicHandler, port, **options)
    server.disconnects = []  # type: ignore[attr-defined]
    return quiet_disconnects(server)
