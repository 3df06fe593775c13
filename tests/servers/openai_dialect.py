"""What llama.cpp, vLLM and LM Studio share: the OpenAI chat-completions dialect.

:class:`OpenAIDialectHandler` serves ``/v1/models`` and ``/v1/chat/completions`` (whole and SSE),
applies every :class:`~tests.servers.base.Fault`, and leaves the per-server details (error
shapes, reasoning field, loading behaviour, extra routes and headers) to small hooks the three
dialect modules fill in from ``shared/reference/servers.md``.

Options every dialect takes (``make_server(**options)``): ``model``, ``models``, ``api_key``,
``vision`` / ``tools`` (False: reject images / tools), ``cached_tokens``, ``truncate_clean``
(TRUNCATED ends the body cleanly instead of dropping the connection), ``html_status`` (status of
the HTML fault page), ``ignore_stream`` (answer stream requests with a whole JSON body, as some
proxies do), ``old_error_lines`` (mid-stream errors as ``error: {...}`` lines).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, ClassVar

from tests.servers.base import Fault, Script, SimHandler, SimServer

_DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,[A-Za-z0-9+/=]+$")


def sse(payload: Any) -> bytes:
    """One SSE event, byte-exact: ``data: {json}\\n\\n``."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


DONE = b"data: [DONE]\n\n"


class OpenAIDialectHandler(SimHandler):
    """Base of the three OpenAI-dialect simulators."""

    reasoning_field: ClassVar[str] = "reasoning_content"
    fingerprint: ClassVar[str | None] = None
    # True: after a mid-stream error event the stream still ends with [DONE] (vLLM).
    done_after_error: ClassVar[bool] = False
    # True: every stream chunk's choice carries "logprobs": null (vLLM, LM Studio; llama.cpp omits it).
    chunk_logprobs: ClassVar[bool] = True
    routes: ClassVar[dict[tuple[str, str], str]] = {
        ("GET", "/v1/models"): "models",
        ("POST", "/v1/chat/completions"): "chat",
    }

    # -- hooks for the dialects -----------------------------------------------------------------

    def error_body(self, status: int, message: str, etype: str, code: str | None = None) -> Any:
        """The dialect's JSON error body."""
        return {"error": {"message": message, "type": etype, "param": None, "code": code or status}}

    def send_error(
        self,
        status: int,
        message: str,
        etype: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_json(status, self.error_body(status, message, etype, code), headers)

    def model_card(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": int(time.time()), "owned_by": "organization_owner"}

    def check_auth(self) -> bool:
        """False (after answering 401) when the server wants a key and did not get it."""
        key = self.server.api_key
        if key and self.headers.get("Authorization") != f"Bearer {key}":
            self.unauthorized()
            return False
        return True

    def unauthorized(self) -> None:
        self.send_error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")

    def unknown_model(self, model: str) -> None:
        self.send_error(
            404, f"The model `{model}` does not exist.", "invalid_request_error", "model_not_found"
        )

    def context_overflow(self, n_prompt: int, n_ctx: int) -> None:
        self.send_error(
            400,
            f"This model's maximum context length is {n_ctx} tokens. However, you requested "
            f"{n_prompt} tokens.",
            "invalid_request_error",
        )

    def server_error(self) -> None:
        self.send_error(500, "Internal server error", "server_error")

    def loading(self) -> None:
        self.send_error(503, "Loading model", "unavailable_error")

    def midstream_error_payload(self) -> Any:
        return {"error": {"message": "generation failed", "type": "server_error", "code": 500}}

    def before_chat(self) -> bool:
        """Dialect gate run before anything else (loading state); False means answered."""
        return True

    def validate_body(self) -> bool:
        """Dialect check of the request body (after auth); False means answered (an error)."""
        return True

    def extra_final_fields(self, script: Script) -> dict[str, Any]:
        """Fields the dialect adds to the whole reply / last stream chunk (llama.cpp ``timings``)."""
        return {}

    def reply_model(self, requested: Any) -> str:
        """The ``model`` a reply names: the requested one by default."""
        return str(requested or self.server.model)

    def images_supported(self) -> bool:
        return bool(self.server.options.get("vision", True))

    def tools_supported(self) -> bool:
        return bool(self.server.options.get("tools", True))

    def no_tools_message(self) -> str:
        return f"{self.server.model} does not support tools"

    def no_images(self) -> None:
        """Answer a request with images to a server without vision."""
        self.send_error(400, "image input is not supported by this model", "invalid_request_error")

    # -- routes ---------------------------------------------------------------------------------

    def models(self) -> None:
        self.send_json(200, {"object": "list", "data": [self.model_card(m) for m in self.server.models]})

    def chat(self) -> None:
        if not self.before_chat() or not self.check_auth() or not self.validate_body():
            return
        body = self.body if isinstance(self.body, dict) else {}
        if not self.check_images(body) or not self.check_tools(body):
            return  # a request the server rejects consumes no script
        script = self.next_script()
        model = self.reply_model(body.get("model"))
        fault = script.fault
        if fault == Fault.UNAUTHORIZED:
            return self.unauthorized()
        if fault == Fault.UNKNOWN_MODEL:
            return self.unknown_model(str(body.get("model") or self.server.model))
        if fault == Fault.RATE_LIMIT:
            return self.send_error(
                429,
                "Rate limit reached, retry later",
                "rate_limit_error",
                "rate_limit_exceeded",
                headers={"Retry-After": script.retry_after},
            )
        if fault == Fault.SERVER_ERROR:
            return self.server_error()
        if fault == Fault.LOADING:
            return self.loading()
        if fault == Fault.HTML:
            return self.html_error_page(int(self.server.options.get("html_status", 502)))
        if fault == Fault.CONTEXT_OVERFLOW:
            return self.context_overflow(script.prompt_tokens + 70000, 4096)
        if body.get("stream") and not self.server.options.get("ignore_stream"):
            return self.stream_reply(script, model, body)
        return self.whole_reply(script, model, fault)

    def check_images(self, body: dict[str, Any]) -> bool:
        """Validate image parts the way servers do; record what arrived."""
        messages = body.get("messages")
        for msg in messages if isinstance(messages, list) else []:
            content = msg.get("content") if isinstance(msg, dict) else None
            if not isinstance(content, list):
                continue
            for part in content:
                if not isinstance(part, dict) or part.get("type") == "text":
                    continue
                url = (part.get("image_url") or {}).get("url", "") if part.get("type") == "image_url" else ""
                if not _DATA_URL.match(url):
                    self.send_error(
                        400, f"Unsupported content part: {json.dumps(part)[:80]}", "invalid_request_error"
                    )
                    return False
                if not self.images_supported():
                    self.no_images()
                    return False
                self.server.options.setdefault("images_received", []).append(url)
        return True

    def check_tools(self, body: dict[str, Any]) -> bool:
        if body.get("tools") and not self.tools_supported():
            self.send_error(400, self.no_tools_message(), "invalid_request_error")
            return False
        return True

    # -- reply building -------------------------------------------------------------------------

    def _base(self, model: str, obj: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": obj,
            "created": int(time.time()),
            "model": model,
        }
        if self.fingerprint:
            out["system_fingerprint"] = self.fingerprint
        return out

    def usage(self, script: Script) -> dict[str, Any]:
        completion = script.completion_count()
        return {
            "prompt_tokens": script.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": script.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": int(self.server.options.get("cached_tokens", 0))},
        }

    def _tool_calls(self, script: Script) -> list[dict[str, Any]]:
        return [
            {
                "id": c.id or f"call_{i}_{uuid.uuid4().hex[:8]}",
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for i, c in enumerate(script.tool_calls)
        ]

    def _content_text(self, script: Script) -> str:
        if script.reasoning and script.inline_think:
            return f"<think>{script.reasoning}</think>\n\n{script.text}"
        return script.text

    def whole_reply(self, script: Script, model: str, fault: str) -> None:
        self.pause(script)
        message: dict[str, Any] = {"role": "assistant", "content": self._content_text(script)}
        if script.reasoning and not script.inline_think:
            message[self.reasoning_field] = script.reasoning
        calls = self._tool_calls(script)
        if calls:
            message["tool_calls"] = calls
        reply = self._base(model, "chat.completion")
        finish = script.finish_reason or ("tool_calls" if calls else "stop")
        reply["choices"] = [{"index": 0, "message": message, "finish_reason": finish}]
        reply["usage"] = self.usage(script)
        reply.update(self.extra_final_fields(script))
        data = json.dumps(reply, ensure_ascii=False).encode()
        if fault == Fault.MALFORMED:
            return self.send_bytes(200, data[: len(data) // 2], "application/json")
        if fault in (Fault.TRUNCATED, Fault.STALL, Fault.UTF8_SPLIT, Fault.MIDSTREAM_ERROR):
            return self._whole_with_fault(fault, data)
        self.send_bytes(200, data, "application/json; charset=utf-8")

    def _whole_with_fault(self, fault: str, data: bytes) -> None:
        if fault == Fault.MIDSTREAM_ERROR:  # no stream to break: a plain 500
            return self.server_error()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in self.extra_headers().items():
            self.send_header(key, value)
        self.end_headers()
        if fault == Fault.STALL:
            return self.stall()
        cut = _split_inside_char(data)
        self.wfile.write(data[:cut])
        self.wfile.flush()
        if fault == Fault.TRUNCATED:
            return self.drop_connection()
        time.sleep(0.03)
        self.wfile.write(data[cut:])
        self.wfile.flush()

    def stream_reply(self, script: Script, model: str, body: dict[str, Any]) -> None:
        fault = script.fault
        self.start_stream("text/event-stream")
        if fault == Fault.STALL:
            return self.stall()

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
            out = self._base(model, "chat.completion.chunk")
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
            if self.chunk_logprobs:
                choice["logprobs"] = None
            out["choices"] = [choice]
            out.update(extra)
            return out

        events: list[bytes] = [sse(chunk({"role": "assistant", "content": None}))]
        if script.reasoning and not script.inline_think:
            events += [sse(chunk({self.reasoning_field: p})) for p in _cut(script.reasoning, 3)]
        text = self._content_text(script)
        pieces = (
            _cut(text, len(script.text_pieces()) + (6 if script.inline_think else 0))
            if script.inline_think
            else script.text_pieces()
        )
        events += [sse(chunk({"content": p})) for p in pieces]
        for i, call in enumerate(self._tool_calls(script)):
            args = call["function"]["arguments"]
            events.append(
                sse(
                    chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": i,
                                    "id": call["id"],
                                    "type": "function",
                                    "function": {"name": call["function"]["name"], "arguments": ""},
                                }
                            ]
                        }
                    )
                )
            )
            events += [
                sse(chunk({"tool_calls": [{"index": i, "function": {"arguments": a}}]}))
                for a in _cut(args, 3)
            ]
        finish = script.finish_reason or ("tool_calls" if script.tool_calls else "stop")
        # The dialect's extra fields (llama.cpp "timings") ride on the last chunk before [DONE]:
        # the finish chunk, or the usage chunk when one follows (as llama-server does).
        extras = self.extra_final_fields(script)
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(sse(chunk({}, finish)))
            final = self._base(model, "chat.completion.chunk")
            final["choices"] = []
            final["usage"] = self.usage(script)
            final.update(extras)
            events.append(sse(final))
        else:
            events.append(sse(chunk({}, finish, **extras)))
        events.append(DONE)
        self._send_events(events, script)

    def _send_events(self, events: list[bytes], script: Script) -> None:
        fault = script.fault
        first_content = 1  # events[0] is the role delta
        broken_at = first_content + script.fail_after
        for i, event in enumerate(events):
            if i == broken_at and fault in (Fault.MALFORMED, Fault.TRUNCATED, Fault.MIDSTREAM_ERROR):
                if fault == Fault.MALFORMED:
                    self.write_chunk(b'data: {"choices":[{"index":0,"delta":{"content":"x"\n\n')
                    self.end_stream()
                elif fault == Fault.TRUNCATED:
                    if self.server.options.get("truncate_clean"):
                        self.end_stream()  # a clean close, but no finish and no [DONE]
                    else:
                        self.drop_connection()
                else:
                    payload = self.midstream_error_payload()
                    if self.server.options.get("old_error_lines"):  # early llama-server builds
                        self.write_chunk(f"error: {json.dumps(payload['error'])}\n\n")
                    else:
                        self.write_chunk(sse(payload))
                    if self.done_after_error:
                        self.write_chunk(DONE)
                    self.end_stream()
                return
            if fault == Fault.UTF8_SPLIT and any(b >= 0xC0 for b in event):
                cut = _split_inside_char(event)
                self.write_chunk(event[:cut])
                time.sleep(0.02)
                self.write_chunk(event[cut:])
            else:
                self.write_chunk(event)
            self.pause(script)
        self.end_stream()


def _cut(text: str, n: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // max(1, n)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _split_inside_char(data: bytes) -> int:
    """An offset that falls inside a multi-byte UTF-8 character (or the middle)."""
    for i, byte in enumerate(data):
        if byte >= 0xC0:  # a lead byte: cut right after it
            return i + 1
    return len(data) // 2


def serve(handler: type[OpenAIDialectHandler], port: int, options: dict[str, Any]) -> SimServer:
    """A configured, not yet started server (``model``, ``models``, ``api_key`` ... options)."""
    model = options.pop("model", "sim-model")
    server = SimServer(handler, port, model=model, **options)
    if options.get("models"):
        server.models = list(options["models"])
    server.loading = bool(options.get("loading", False))
    return server
