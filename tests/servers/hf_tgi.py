"""Hugging Face serverless text-generation simulator (TGI dialect):
``POST /hf-inference/models/{model}`` with ``{"inputs", "parameters", "stream"}``.

Faithful to what a client observes: ``Authorization: Bearer`` (401 ``{"error": "Invalid
credentials in Authorization header"}``), an unknown model 404 ``{"error": "Model X does not
exist"}``, a cold model 503 ``{"error": "Model X is currently loading", "estimated_time": 20.0}``,
TGI's input validation as 422 ``{"error", "error_type": "validation"}`` (``temperature`` must be
strictly positive; the prompt plus ``max_new_tokens`` must fit the context), a whole reply as
``[{"generated_text", "details"}]``, and a stream of ``data: {"index", "token": {"id", "text",
"logprob", "special"}, "generated_text", "details"}`` events ending with the EOS special token,
the whole text and (``details: true``) ``finish_reason``/``generated_tokens``; mid-stream
failures as ``data: {"error", "error_type": "generation"}``.
"""

from __future__ import annotations

import json
from typing import Any

from tests.servers.base import Fault, Script, SimHandler, SimServer
from tests.servers.quiet import quiet_disconnects

PREFIX = "/hf-inference/models/"
CONTEXT = 32768


class TGIHandler(SimHandler):
    routes: dict[tuple[str, str], str] = {}

    def error(self, status: int, message: str, **extra: Any) -> None:
        self.send_json(status, {"error": message, **extra})

    def unknown_route(self, path: str) -> None:
        if self.command != "POST" or not path.startswith(PREFIX):
            self.send_json(404, {"error": "Not Found"})
            return
        key = self.server.api_key
        if key is not None and self.headers.get("authorization") != f"Bearer {key}":
            self.error(401, "Invalid credentials in Authorization header")
            return
        model = path[len(PREFIX) :]
        script = self.next_script()
        if script.fault == Fault.UNAUTHORIZED:
            self.error(401, "Invalid credentials in Authorization header")
        elif script.fault == Fault.UNKNOWN_MODEL or model not in self.server.models:
            self.error(404, f"Model {model} does not exist")
        elif script.fault == Fault.LOADING or self.server.loading:
            self.error(503, f"Model {model} is currently loading", estimated_time=20.0)
        elif script.fault == Fault.RATE_LIMIT:
            self.send_json(
                429,
                {"error": "Rate limit reached. Please log in or use a HF access token"},
                {"Retry-After": script.retry_after},
            )
        elif script.fault == Fault.SERVER_ERROR:
            self.error(
                500,
                "Request failed during generation: Server error: CUDA out of memory",
                error_type="generation",
            )
        elif script.fault == Fault.HTML:
            self.html_error_page(502)
        else:
            self.generate(script)

    def validate(self, body: Any, script: Script) -> str | None:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), str) or not body["inputs"]:
            return "Input validation error: `inputs` must be a non-empty string"
        params = body.get("parameters") or {}
        if not isinstance(params, dict):
            return "Input validation error: `parameters` must be an object"
        temperature = params.get("temperature")
        if temperature is not None and temperature <= 0:
            return "Input validation error: `temperature` must be strictly positive"
        new = int(params.get("max_new_tokens") or 20)
        given = CONTEXT + 1 if script.fault == Fault.CONTEXT_OVERFLOW else len(body["inputs"]) // 4
        if given + new > CONTEXT:
            return (
                f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= {CONTEXT}. "
                f"Given: {given} `inputs` tokens and {new} `max_new_tokens`"
            )
        return None

    def generate(self, script: Script) -> None:
        problem = self.validate(self.body, script)
        if problem:
            self.error(422, problem, error_type="validation")
            return
        params = self.body.get("parameters") or {}
        pieces = script.text_pieces()
        limit = params.get("max_new_tokens")
        reason = "eos_token"
        if limit is not None and len(pieces) > int(limit):
            pieces, reason = pieces[: int(limit)], "length"
        details = {"finish_reason": reason, "generated_tokens": len(pieces), "seed": None}
        text = "".join(pieces)
        if not self.body.get("stream"):
            self.pause(script)
            if script.fault == Fault.MALFORMED:
                self.send_bytes(200, b'[{"generated_text": ', "application/json")
                return
            item: dict[str, Any] = {"generated_text": text}
            if params.get("details"):
                item["details"] = {**details, "prefill": [], "tokens": []}
            self.send_json(200, [item])
            return
        try:
            self.stream(script, pieces, text, details if params.get("details") else None)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def event(self, payload: dict[str, Any]) -> None:
        self.write_chunk(f"data:{json.dumps(payload, ensure_ascii=False)}\n\n".encode())

    def token(self, index: int, text: str, *, special: bool = False) -> dict[str, Any]:
        return {"id": 1000 + index, "text": text, "logprob": -0.25, "special": special}

    def stream(self, script: Script, pieces: list[str], text: str, details: dict[str, Any] | None) -> None:
        self.start_stream("text/event-stream")
        if self.stall_at_start(script):
            return
        for n, piece in enumerate(pieces):
            if n == script.fail_after and self.mid_fault(script):
                return
            self.pause(script)
            payload = {"index": n + 1, "token": self.token(n, piece), "generated_text": None, "details": None}
            data = f"data:{json.dumps(payload, ensure_ascii=False)}\n\n".encode()
            self.write_frame(data, script)
        if script.fail_after >= len(pieces) and self.mid_fault(script):
            return
        last = {
            "index": len(pieces) + 1,
            "token": self.token(len(pieces), "</s>", special=True),
            "generated_text": text,
            "details": details,
        }
        self.event(last)
        self.end_stream()

    def truncated_frame(self) -> bytes:
        return b'data:{"index": 9, "token": {"id": 9, "te'

    def midstream_error(self) -> None:
        self.event(
            {
                "error": "Request failed during generation: Server error: CUDA error",
                "error_type": "generation",
            }
        )

    def malformed_frame(self) -> bytes:
        return b'data:{"token": \n\n'


def make_server(port: int = 0, **options: Any) -> SimServer:
    """A TGI-dialect simulator. ``api_key=`` enforces that bearer token; ``models=`` (a list)
    the models that exist (default: ``model``)."""
    options.setdefault("model", "gpt2")
    models = options.pop("models", None)
    server = SimServer(TGIHandler, port, **options)
    if models:
        server.models = list(models)
    return quiet_disconnects(server)
