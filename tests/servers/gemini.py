"""Gemini API simulator: Google AI (``/v1beta/models/{model}:generateContent``,
``:streamGenerateContent?alt=sse``, ``GET /v1beta/models``) and the same methods under Vertex AI
paths (``/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:...``).

Faithful to what a client observes: the key in ``x-goog-api-key`` (or ``?key=``), a bad key as
400 ``INVALID_ARGUMENT`` with an ``API_KEY_INVALID`` ErrorInfo (Google AI does not answer 401),
no key as 403 ``PERMISSION_DENIED``; on Vertex a bad bearer token as 401 ``UNAUTHENTICATED``.
Errors are ``{"error": {"code", "message", "status", "details"}}``; 429 carries a RetryInfo
``retryDelay`` and no Retry-After header. ``alt=sse`` frames are ``data:`` lines only, ended by
``\\r\\n\\r\\n``. Validation covers roles, empty parts, unknown schema fields in function
declarations, and functionResponse parts matching the preceding functionCall turn.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers.base import Fault, Script, SimHandler, SimServer
from tests.servers.embeddings import gemini_batch_embed
from tests.servers.quiet import quiet_disconnects

_GOOGLE = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>\w+)$")
_VERTEX = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/google/models/"
    r"(?P<model>[^/:]+):(?P<method>\w+)$"
)
# What Gemini's functionDeclarations accept, written out here on its own from the API reference
# (not imported from the client's copy): the simulator must judge the client's payloads.
_SCHEMA_KEYS = {
    "type",
    "format",
    "description",
    "nullable",
    "enum",
    "items",
    "properties",
    "required",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "anyOf",
    "minLength",
    "maxLength",
    "pattern",
    "title",
    "propertyOrdering",
    "minProperties",
    "maxProperties",
}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def error_body(code: int, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "status": STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        err["details"] = details
    return {"error": err}


class GeminiHandler(SimHandler):
    routes: dict[tuple[str, str], str] = {}

    def error(self, code: int, message: str, details: list[dict[str, Any]] | None = None) -> None:
        self.send_json(code, error_body(code, message, details))

    def unknown_route(self, path: str) -> None:
        self.query = parse_qs(urlsplit(self.path).query)
        if self.command == "GET" and path == "/v1beta/models":
            if self.check_auth(vertex=False):
                self.list_models()
            return
        match = _GOOGLE.match(path) or _VERTEX.match(path)
        if self.command != "POST" or match is None:
            self.error(404, f"Method not found: {path}")
            return
        vertex = "project" in match.groupdict()
        self.vertex = vertex
        self.vertex_resource = f"projects/{match['project']}/locations/{match['location']}" if vertex else ""
        if not self.check_auth(vertex=vertex):
            return
        method = match["method"]
        if method == "batchEmbedContents" and not vertex:
            gemini_batch_embed(self, match["model"])
            return
        if method not in ("generateContent", "streamGenerateContent"):
            self.error(404, f"Method not found: {method}")
            return
        self.generate(match["model"], stream=method == "streamGenerateContent")

    # -- auth and validation -----------------------------------------------------------------------

    def check_auth(self, *, vertex: bool) -> bool:
        key = self.headers.get("x-goog-api-key") or (self.query.get("key") or [None])[0]
        token = self.server.options.get("bearer_token")
        if vertex and token is not None and not key:
            auth = self.headers.get("authorization") or ""
            if auth != f"Bearer {token}":
                self.unauthenticated()
                return False
            return True
        if self.server.api_key is None:
            return True
        if not key:
            self.error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
            return False
        if key != self.server.api_key:
            self.bad_key()
            return False
        return True

    def bad_key(self) -> None:
        self.error(
            400,
            "API key not valid. Please pass a valid API key.",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        )

    def validate(self, body: Any) -> str | None:
        if not isinstance(body, dict) or not body.get("contents"):
            return "* GenerateContentRequest.contents: contents is not specified"
        for key in body:
            if key not in (
                "contents",
                "systemInstruction",
                "tools",
                "toolConfig",
                "generationConfig",
                "safetySettings",
                "cachedContent",
                "labels",
            ):
                return f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
        for t, tool in enumerate(body.get("tools") or []):
            for d, decl in enumerate(tool.get("functionDeclarations") or []):
                problem = self.check_schema(
                    decl.get("parameters"), f"tools[{t}].function_declarations[{d}].parameters"
                )
                if problem:
                    return problem
        calls: list[str] = []
        for i, content in enumerate(body["contents"]):
            if content.get("role") not in ("user", "model"):
                return f"Please use a valid role: user, model. (contents[{i}])"
            parts = content.get("parts") or []
            if not parts:
                return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            responses = [p["functionResponse"].get("name") for p in parts if "functionResponse" in p]
            if calls or responses:
                if responses != calls:
                    return (
                        "Please ensure that the number of function response parts is equal to the number of "
                        "function call parts of the function call turn."
                    )
            if content["role"] == "model":
                calls = [p["functionCall"].get("name") for p in parts if "functionCall" in p]
                signed = any("thoughtSignature" in p for p in parts if "functionCall" in p)
                if calls and self.server.options.get("signatures") and not signed:
                    return (
                        "Function call is missing a thought_signature in functionCall parts. This is "
                        "required for tools to work correctly, and missing thought_signature may lead to "
                        "degraded model performance. Additional data, function call "
                        f"`default_api:{calls[0]}` , position {i + 1}."
                    )
            else:
                calls = []
        return None

    def check_schema(self, schema: Any, where: str) -> str | None:
        if not isinstance(schema, dict):
            return None
        for key, value in schema.items():
            if key not in _SCHEMA_KEYS:
                return (
                    f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
                )
            if key == "properties":
                if not value and schema.get("type") in ("object", "OBJECT"):
                    return f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type"
                for name, sub in value.items():
                    problem = self.check_schema(sub, f"{where}.properties[{name}].value")
                    if problem:
                        return problem
            if key == "items":
                problem = self.check_schema(value, f"{where}.items")
                if problem:
                    return problem
        return None

    # -- routes ------------------------------------------------------------------------------------

    def list_models(self) -> None:
        models = [
            {
                "name": f"models/{m}",
                "version": "001",
                "displayName": m,
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
                "thinking": True,
            }
            for m in self.server.models
        ]
        models.append({"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]})
        self.send_json(200, {"models": models})

    def generate(self, model: str, *, stream: bool) -> None:
        problem = self.validate(self.body)
        if problem:
            self.error(400, problem)
            return
        script = self.next_script()
        if self.http_fault(script, model):
            return
        if model not in self.server.models:
            self.model_not_found(model)
            return
        if stream:
            try:
                self.stream(script, model)
            except (BrokenPipeError, ConnectionResetError):
                # The client went away mid-stream (Stop): tests read this to prove the close reached us.
                self.server.disconnects.append(self.path)  # type: ignore[attr-defined]
                self.close_connection = True
        else:
            self.whole(script, model)

    def model_not_found(self, model: str) -> None:
        if self.vertex:
            self.error(
                404,
                f"Publisher Model `{self.vertex_resource}/publishers/google/models/{model}` was not found "
                "or your project does not have access to it. Please ensure you are using a valid model "
                "version.",
            )
        else:
            self.error(
                404,
                f"models/{model} is not found for API version v1beta, or is not supported for "
                "generateContent. Call ListModels to see the list of available models and their "
                "supported methods.",
            )

    def unauthenticated(self) -> None:
        self.error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                    "domain": "googleapis.com",
                }
            ],
        )

    def http_fault(self, script: Script, model: str) -> bool:
        fault = script.fault
        if fault == Fault.UNAUTHORIZED:
            # Google AI answers a bad key with 400 API_KEY_INVALID; Vertex a bad token with 401.
            if self.vertex:
                self.unauthenticated()
            else:
                self.bad_key()
        elif fault == Fault.UNKNOWN_MODEL:
            self.model_not_found(model)
        elif fault == Fault.RATE_LIMIT:
            self.error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{script.retry_after}s",
                    }
                ],
            )
        elif fault == Fault.SERVER_ERROR:
            self.error(
                500,
                "An internal error has occurred. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting",
            )
        elif fault == Fault.LOADING:
            self.error(503, "The model is overloaded. Please try again later.")
        elif fault == Fault.HTML:
            self.html_error_page(502)
        elif fault == Fault.CONTEXT_OVERFLOW:
            self.error(
                400, "The input token count (1212000) exceeds the maximum number of tokens allowed (1048576)."
            )
        elif fault == Fault.STALL and "streamGenerateContent" not in self.path:
            self.stall()
        else:
            return False
        return True

    def usage(self, script: Script) -> dict[str, Any]:
        cached = int(self.server.options.get("cached", 0))
        thoughts = len(script.reasoning.split()) if script.reasoning else 0
        meta = {
            "promptTokenCount": script.prompt_tokens,
            "candidatesTokenCount": script.completion_count(),
            "totalTokenCount": script.prompt_tokens + script.completion_count() + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": script.prompt_tokens}],
        }
        if cached:
            meta["cachedContentTokenCount"] = cached
        if thoughts:
            meta["thoughtsTokenCount"] = thoughts
        return meta

    def candidate(self, parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            cand["finishReason"] = finish
            if finish == "SAFETY":
                cand["safetyRatings"] = [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
                ]
        return cand

    def call_parts(self, script: Script) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [
            {"functionCall": {"name": c.name, "args": c.arguments}} for c in script.tool_calls
        ]
        if parts and self.server.options.get("signatures"):
            # Gemini 3 signs the first function call of a turn.
            parts[0]["thoughtSignature"] = "CiQB0e2Kb" + uuid.uuid4().hex
        return parts

    def whole(self, script: Script, model: str) -> None:
        self.pause(script)
        if script.fault == Fault.MALFORMED:
            self.send_bytes(200, b'{"candidates": [{"content": ', "application/json")
            return
        parts: list[dict[str, Any]] = []
        if script.reasoning:
            parts.append({"text": script.reasoning, "thought": True})
        if script.text:
            parts.append({"text": script.text})
        parts += self.call_parts(script)
        finish = self.server.options.get("finish_reason", "STOP")
        reply = {
            "candidates": [self.candidate(parts, finish)],
            "usageMetadata": self.usage(script),
            "modelVersion": model,
            "responseId": uuid.uuid4().hex[:22],
        }
        if script.fault == Fault.TRUNCATED:
            self.send_truncated(200, json.dumps(reply).encode(), "application/json; charset=UTF-8")
            return
        self.send_json(200, reply)

    # -- streaming ---------------------------------------------------------------------------------

    def data(self, payload: dict[str, Any], script: Script | None = None) -> None:
        frame = ("data: " + json.dumps(payload, ensure_ascii=False) + "\r\n\r\n").encode("utf-8")
        self.write_frame(frame, script)

    def stream(self, script: Script, model: str) -> None:
        self.start_stream("text/event-stream")
        if self.stall_at_start(script):
            return
        rid = uuid.uuid4().hex[:22]
        if script.reasoning:
            self.data(
                {
                    "candidates": [self.candidate([{"text": script.reasoning, "thought": True}], None)],
                    "modelVersion": model,
                    "responseId": rid,
                }
            )
        pieces = script.text_pieces()
        for n, piece in enumerate(pieces):
            if n == script.fail_after and self.mid_fault(script):
                return
            self.pause(script)
            self.data(
                {
                    "candidates": [self.candidate([{"text": piece}], None)],
                    "modelVersion": model,
                    "responseId": rid,
                },
                script,
            )
        if script.fail_after >= len(pieces) and self.mid_fault(script):
            return
        finish = self.server.options.get("finish_reason", "STOP")
        last_parts = self.call_parts(script) or [{"text": ""}]
        self.data(
            {
                "candidates": [self.candidate(last_parts, finish)],
                "usageMetadata": self.usage(script),
                "modelVersion": model,
                "responseId": rid,
            }
        )
        self.end_stream()

    def midstream_error(self) -> None:
        self.data(error_body(503, "The model is overloaded. Please try again later."))

    def malformed_frame(self) -> str:
        return 'data: {"candidates": [{"content": {"parts": [{"text": \r\n\r\n'


def make_server(port: int = 0, **options: Any) -> SimServer:
    """A Gemini simulator. ``api_key=`` enforces a Google AI key; ``bearer_token=`` the Vertex
    OAuth token; ``cached=`` the cachedContentTokenCount; ``finish_reason=`` (e.g. ``SAFETY``)
    how every reply ends."""
    if "model" not in options:
        options["model"] = "gemini-sim-flash"
    server = SimServer(GeminiHandler, port, **options)
    server.disconnects = []  # type: ignore[attr-defined]
    return quiet_disconnects(server)
