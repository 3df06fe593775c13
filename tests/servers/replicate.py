"""Replicate API simulator: predictions for official models
(``POST /v1/models/{owner}/{name}/predictions``) and versions (``POST /v1/predictions``),
``GET /v1/predictions/{id}``, ``POST /v1/predictions/{id}/cancel``, the prediction's SSE stream,
and ``GET /v1/collections/language-models``.

Faithful to what a client observes: ``Authorization: Bearer`` (401 ``Unauthenticated``),
RFC 7807 error bodies (``{"title", "detail", "status"}``), ``Prefer: wait`` answered with a
finished prediction, otherwise ``starting`` → ``processing`` → ``succeeded`` over polls, output as
a list of token strings, ``metrics`` with token counts, a failed prediction carrying ``error``,
and the stream's ``output`` / ``error`` / ``done`` events (``done`` data ``{}`` or
``{"reason": "canceled"}``).
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from typing import Any

from tests.servers.base import Fault, Script, SimHandler, SimServer
from tests.servers.quiet import quiet_disconnects

_OFFICIAL = re.compile(r"^/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)/predictions$")
_ONE = re.compile(r"^/v1/predictions/(?P<id>[^/]+)(?P<rest>/cancel|/stream)?$")


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"title": title, "detail": detail, "status": status}


class ReplicateHandler(SimHandler):
    routes: dict[tuple[str, str], str] = {}

    def unknown_route(self, path: str) -> None:
        if not self.check_auth():
            return
        if self.command == "GET" and path == "/v1/collections/language-models":
            self.send_json(
                200,
                {
                    "name": "Language models",
                    "slug": "language-models",
                    "models": [
                        {
                            "owner": m.split("/")[0],
                            "name": m.split("/")[1],
                            "description": f"{m} (simulated)",
                            "run_count": 1,
                        }
                        for m in self.server.models
                    ],
                },
            )
            return
        official = _OFFICIAL.match(path)
        if self.command == "POST" and (official or path == "/v1/predictions"):
            model = f"{official['owner']}/{official['name']}" if official else None
            self.create(model)
            return
        one = _ONE.match(path)
        pred = self.server.predictions.get(one["id"]) if one else None  # type: ignore[attr-defined]
        if one is None or pred is None:
            self.send_json(404, problem(404, "Not found", "The requested resource could not be found."))
            return
        if one["rest"] == "/cancel" and self.command == "POST":
            pred["status"] = "canceled"
            self.server.cancels.append(pred["id"])  # type: ignore[attr-defined]
            self.send_json(200, self.public(pred))
        elif one["rest"] == "/stream" and self.command == "GET":
            try:
                self.stream(pred)
            except (BrokenPipeError, ConnectionResetError):
                self.server.disconnects.append(self.path)  # type: ignore[attr-defined]
                self.close_connection = True
        elif one["rest"] is None and self.command == "GET":
            self.poll(pred)
        else:
            self.send_json(405, problem(405, "Method not allowed", "Method not allowed"))

    def check_auth(self) -> bool:
        token = self.server.api_key
        if token is not None and self.headers.get("authorization") not in (
            f"Bearer {token}",
            f"Token {token}",
        ):
            self.send_json(
                401, problem(401, "Unauthenticated", "You did not pass a valid authentication token")
            )
            return False
        return True

    # -- predictions -----------------------------------------------------------------------------

    def public(self, pred: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in pred.items() if not k.startswith("_")}

    def create(self, model: str | None) -> None:
        body = self.body if isinstance(self.body, dict) else {}
        if model is None:
            version = str(body.get("version") or "")
            model = next(
                (m for m in self.server.models if self.server.options.get("versions", {}).get(m) == version),
                None,
            )
        if not isinstance(body.get("input"), dict) or "prompt" not in body["input"]:
            self.send_json(422, problem(422, "Input validation failed", "- input: prompt is required"))
            return
        script = self.next_script()
        fault = script.fault
        if fault == Fault.UNAUTHORIZED:
            self.send_json(
                401, problem(401, "Unauthenticated", "You did not pass a valid authentication token")
            )
            return
        if fault == Fault.UNKNOWN_MODEL or model not in self.server.models:
            self.send_json(404, problem(404, "Not found", "The requested resource could not be found."))
            return
        if fault == Fault.RATE_LIMIT:
            self.send_json(
                429,
                problem(
                    429,
                    "Request was throttled.",
                    f"Request was throttled. Expected available in {script.retry_after} second.",
                ),
                {"Retry-After": script.retry_after},
            )
            return
        if fault == Fault.SERVER_ERROR:
            self.send_json(500, problem(500, "Internal Server Error", "Internal server error"))
            return
        if fault == Fault.LOADING:
            self.send_json(503, problem(503, "Service Unavailable", "Replicate is temporarily unavailable"))
            return
        if fault == Fault.HTML:
            self.html_error_page(502)
            return
        pid = uuid.uuid4().hex[:26]
        base = self.server.url + "/v1/predictions/" + pid
        pred: dict[str, Any] = {
            "id": pid,
            "model": model,
            "version": "v" + uuid.uuid4().hex[:12],
            "input": body["input"],
            "logs": "",
            "output": None,
            "error": None,
            "status": "starting",
            "data_removed": False,
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
            "urls": {
                "get": base,
                "cancel": base + "/cancel",
                "stream": base + "/stream",
                "web": f"https://replicate.com/p/{pid}",
            },
            "_script": script,
            "_polls": 0,
        }
        if fault == Fault.CONTEXT_OVERFLOW:
            pred["_fail"] = "prompt length (9000 tokens) exceeds the maximum context length (8192 tokens)"
        self.server.predictions[pid] = pred  # type: ignore[attr-defined]
        if fault == Fault.STALL and not body.get("stream"):
            self.stall()
            return
        if "wait" in (self.headers.get("prefer") or "") and not self.server.options.get("slow"):
            self.complete(pred)
        if fault == Fault.MALFORMED and not body.get("stream"):
            self.send_bytes(201, b'{"id": "' + pid.encode() + b'", "status": ', "application/json")
            return
        data = json.dumps(self.public(pred)).encode()
        if fault == Fault.TRUNCATED and not body.get("stream"):
            self.send_truncated(201, data, "application/json")
            return
        self.send_bytes(201, data, "application/json")

    def complete(self, pred: dict[str, Any]) -> None:
        script: Script = pred["_script"]
        if pred.get("_fail"):
            pred.update(status="failed", error=pred["_fail"])
            return
        pred.update(
            status="succeeded",
            output=script.text_pieces(),
            completed_at="2025-01-01T00:00:01Z",
            metrics={
                "input_token_count": script.prompt_tokens,
                "output_token_count": script.completion_count(),
                "predict_time": 0.4,
                "time_to_first_token": 0.1,
                "tokens_per_second": 42.0,
            },
        )

    def poll(self, pred: dict[str, Any]) -> None:
        pred["_polls"] += 1
        if pred["status"] not in ("succeeded", "failed", "canceled"):
            if pred["_polls"] >= 2:
                self.complete(pred)
            else:
                pred["status"] = "processing"
        self.send_json(200, self.public(pred))

    # -- stream ----------------------------------------------------------------------------------

    def sse_frame(self, event: str, data: str) -> bytes:
        lines = "".join(f"data: {line}\n" for line in data.split("\n"))
        return f"event: {event}\nid: {uuid.uuid4().hex[:8]}\n{lines}\n".encode()

    def sse(self, event: str, data: str, script: Script | None = None) -> None:
        self.write_frame(self.sse_frame(event, data), script)

    def stream(self, pred: dict[str, Any]) -> None:
        script: Script = pred["_script"]
        self.start_stream("text/event-stream")
        if pred.get("_fail"):
            pred.update(status="failed", error=pred["_fail"])
            self.sse("error", json.dumps({"detail": pred["_fail"]}))
            self.sse("done", "{}")
            self.end_stream()
            return
        if self.stall_at_start(script):
            return
        pred["status"] = "processing"
        pieces = script.text_pieces()
        for n, piece in enumerate(pieces):
            if pred["status"] == "canceled":
                self.sse("done", json.dumps({"reason": "canceled"}))
                self.end_stream()
                return
            if n == script.fail_after and self.mid_fault(script):
                return
            self.pause(script)
            self.sse("output", piece, script)
        if script.fail_after >= len(pieces) and self.mid_fault(script):
            return
        self.complete(pred)
        self.sse("done", "{}")
        self.end_stream()

    def midstream_error(self) -> None:
        self.sse("error", json.dumps({"detail": "CUDA error: an illegal memory access was encountered"}))
        self.sse("done", "{}")

    def malformed_frame(self) -> bytes:
        return self.sse_frame("done", '{"reason": ')


def make_server(port: int = 0, **options: Any) -> SimServer:
    """A Replicate simulator. ``api_key=`` enforces the token; ``model=`` an ``owner/name``;
    ``versions={model: version}`` for version ids; ``slow=True`` ignores ``Prefer: wait`` so
    clients must poll."""
    if "model" not in options:
        options["model"] = "meta/sim-llama-instruct"
    server = SimServer(ReplicateHandler, port, **options)
    server.predictions = {}  # type: ignore[attr-defined]
    server.cancels = []  # type: ignore[attr-defined]
    server.disconnects = []  # type: ignore[attr-defined]
    return quiet_disconnects(server)
