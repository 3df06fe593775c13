"""An OpenAI-style SSE server for the streaming benchmark, on :mod:`tests.servers.base`.

Unlike the dialect simulators in ``tests/servers/`` it batches several events per network
write and paces the writes (``events_per_write`` option, ``Script.delay_s`` per write), so a
20,000-token stream can arrive at a steady, chosen rate such as 10,000 tokens/s. It also
answers the prompt named by the ``short_reply_to`` option with a short reply, so a process
that cannot queue scripts (the benchmark runs the server in its own process) can warm up.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tests.servers.base import Fault, Script, SimHandler, SimServer


class SSESimHandler(SimHandler):
    routes = {
        ("GET", "/v1/models"): "models",
        ("POST", "/v1/chat/completions"): "chat",
    }
    server: SSESimServer  # type: ignore[assignment]

    def models(self) -> None:
        self.send_json(200, {"object": "list", "data": [
            {"id": m, "object": "model", "owned_by": "sim"} for m in self.server.models]})

    def _error(self, status: int, message: str, etype: str, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, {"error": {"message": message, "type": etype, "code": None}}, headers)

    def chat(self) -> None:
        script = self.next_script()
        body = self.body if isinstance(self.body, dict) else {}
        messages = body.get("messages") or [{}]
        short = self.server.options.get("short_reply_to")
        if short and messages[-1].get("content") == short:  # for scripting across processes
            script = Script(text="A short reply.")
        model = body.get("model") or self.server.model
        if script.fault == Fault.UNAUTHORIZED:
            self._error(401, "Incorrect API key provided", "invalid_request_error")
            return
        if script.fault == Fault.SERVER_ERROR:
            self._error(500, "Internal server error", "server_error")
            return
        if script.fault == Fault.UNKNOWN_MODEL or model not in self.server.models:
            self._error(404, f"The model `{model}` does not exist", "invalid_request_error")
            return
        if not body.get("stream"):
            self.send_json(200, {"id": "chatcmpl-sim", "object": "chat.completion", "model": model,
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": script.text}}],
                                 "usage": {"prompt_tokens": script.prompt_tokens,
                                           "completion_tokens": script.completion_count()}})
            return
        try:
            self._stream(script, model)
        except (BrokenPipeError, ConnectionResetError):
            self.server.note_disconnect()
            self.close_connection = True

    def _event(self, model: str, delta: dict[str, Any], finish: str | None = None,
               usage: dict[str, int] | None = None) -> bytes:
        payload: dict[str, Any] = {"id": "chatcmpl-sim", "object": "chat.completion.chunk", "model": model,
                                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage is not None:
            payload["usage"] = usage
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    def _stream(self, script: Script, model: str) -> None:
        self.start_stream("text/event-stream")
        sent = 0
        batch = max(1, int(self.server.options.get("events_per_write", 1)))
        buf: list[bytes] = [self._event(model, {"role": "assistant", "content": ""})]
        reasoning = script.reasoning
        if reasoning:
            size = max(1, len(reasoning) // 8)
            for i in range(0, len(reasoning), size):
                buf.append(self._event(model, {"reasoning_content": reasoning[i:i + size]}))
        for piece in script.text_pieces():
            if script.fault in (Fault.TRUNCATED, Fault.STALL) and sent >= script.fail_after:
                self.write_chunk(b"".join(buf))
                if script.fault == Fault.STALL:
                    self.stall()
                else:
                    self.drop_connection()
                return
            buf.append(self._event(model, {"content": piece}))
            sent += 1
            if len(buf) >= batch:
                self.write_chunk(b"".join(buf))
                buf = []
                if script.delay_s:
                    time.sleep(script.delay_s)
                    if self.server.stop_event.is_set():
                        return
        for i, call in enumerate(script.tool_calls):
            buf.append(self._event(model, {"tool_calls": [{
                "index": i, "id": call.id or f"call_{i}", "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}]}))
        finish = "tool_calls" if script.tool_calls else "stop"
        buf.append(self._event(model, {}, finish, {"prompt_tokens": script.prompt_tokens,
                                                   "completion_tokens": script.completion_count(),
                                                   "total_tokens": script.prompt_tokens
                                                   + script.completion_count()}))
        buf.append(b"data: [DONE]\n\n")
        self.write_chunk(b"".join(buf))
        self.end_stream()


class SSESimServer(SimServer):
    """The simulator; ``disconnected`` is set when a client leaves mid-stream."""

    def __init__(self, port: int = 0, **options: Any) -> None:
        super().__init__(SSESimHandler, port, **options)
        self.disconnects = 0
        self.disconnected = threading.Event()

    def note_disconnect(self) -> None:
        self.disconnects += 1
        self.disconnected.set()


def make_server(port: int = 0, **options: Any) -> SSESimServer:
    return SSESimServer(port, **options)
