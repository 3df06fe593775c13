"""Simulator of llama.cpp ``llama-server`` (servers.md §4): ``Server: llama.cpp`` on every reply,
typed ``{"error":{"code","message","type"}}`` bodies, 503 ``Loading model`` on every route while
``server.loading``, ``reasoning_content``, ``timings`` in milliseconds, ``meta`` in
``/v1/models``, a mid-stream error event followed by *no* ``[DONE]``.

Connection handling is the real server's (cpp-httplib): ``Keep-Alive`` on success replies, yet
the connection is closed after every stream; ``Connection: close`` on every error reply, yet
the connection stays open for the next request. Bodies of ``/props``, ``/slots`` and
``/v1/models`` live in :mod:`tests.servers.llamacpp_bodies`.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from tests.servers import llamacpp_bodies as bodies
from tests.servers.base import Script, SimServer
from tests.servers.embeddings import OpenAIEmbeddingsMixin
from tests.servers.llamacpp_router import RouterMixin
from tests.servers.openai_dialect import OpenAIDialectHandler, serve

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "server_error",
    501: "not_supported_error",
    503: "unavailable_error",
}
BUILD = "b6500-1a2b3c4d"


class LlamaCppHandler(OpenAIEmbeddingsMixin, RouterMixin, OpenAIDialectHandler):
    server_version = "llama.cpp"
    sys_version = ""
    reasoning_field = "reasoning_content"
    fingerprint = BUILD
    done_after_error = False
    chunk_logprobs = False
    routes: ClassVar[dict[tuple[str, str], str]] = {
        ("GET", "/v1/models"): "models",
        ("GET", "/models"): "models",
        ("POST", "/v1/chat/completions"): "chat",
        ("POST", "/chat/completions"): "chat",
        ("POST", "/v1/embeddings"): "embeddings",
        ("POST", "/embeddings"): "embeddings",
        ("GET", "/health"): "health",
        ("GET", "/v1/health"): "health",
        ("GET", "/props"): "props",
        ("POST", "/props"): "set_props",
        ("GET", "/slots"): "slots",
        ("GET", "/metrics"): "metrics",
        ("GET", "/"): "index",
        # Ollama-shaped stubs for Copilot-style clients (2025+ builds); /api/tags is /models.
        ("GET", "/api/tags"): "models",
        ("POST", "/api/show"): "api_show",
        # Router mode only (router=True); single-model mode answers 404 File Not Found.
        ("POST", "/models/load"): "models_load",
        ("POST", "/models/unload"): "models_unload",
    }

    def version_string(self) -> str:
        return "llama.cpp"

    def _dispatch(self) -> None:
        # While the model loads, every route answers 503 (the web UI gets loading.html).
        if self.server.loading:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path.split("?", 1)[0] in ("/", "/index.html"):
                return self.send_text(
                    503, "<html><body>Loading model</body></html>", content_type="text/html"
                )
            return self.send_json(
                503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
            )
        super()._dispatch()

    do_GET = _dispatch
    do_POST = _dispatch

    # -- connection handling (see the module docstring) ---------------------------------------------

    def send_bytes(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None,
                   ) -> None:
        extra = {"Connection": "close"} if status >= 400 else {"Keep-Alive": "timeout=5, max=100"}
        planned = self.close_connection  # what the request asked for (HTTP/1.0, Connection: close)
        super().send_bytes(status, data, content_type, {**(headers or {}), **extra})
        # send_header("Connection", "close") made the stdlib plan a close; llama-server does not.
        self.close_connection = planned

    def start_stream(self, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("X-Accel-Buffering", "no")
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Keep-Alive", "timeout=5, max=100")
        self.end_headers()

    def end_stream(self) -> None:
        super().end_stream()
        self.close_connection = True  # llama-server closes after a stream despite its Keep-Alive

    def validate_body(self) -> bool:
        problem = bodies.chat_body_error(self.raw_body)
        if problem is None:
            return True
        status, message = problem
        self.send_error(status, message, _TYPES[status])
        return False

    def error_body(self, status: int, message: str, etype: str, code: str | None = None) -> Any:
        return {"error": {"code": status, "message": message, "type": _TYPES.get(status, etype)}}

    def unknown_route(self, path: str) -> None:
        self.send_json(404, self.error_body(404, "File Not Found", "not_found_error"))

    def unauthorized(self) -> None:
        self.send_error(401, "Invalid API Key", "authentication_error")

    def unknown_model(self, model: str) -> None:  # router mode: an unknown model is an error
        self.send_error(404, f"model '{model}' not found", "not_found_error")

    def context_overflow(self, n_prompt: int, n_ctx: int) -> None:
        self.send_json(
            400,
            {
                "error": {
                    "code": 400,
                    "type": "exceed_context_size_error",
                    "message": f"request ({n_prompt} tokens) exceeds the available context "
                    f"size ({n_ctx} tokens), try increasing it",
                    "n_prompt_tokens": n_prompt,
                    "n_ctx": n_ctx,
                }
            },
        )

    def midstream_error_payload(self) -> Any:
        return {"error": {"code": 500, "message": "failed to decode the batch", "type": "server_error"}}

    def reply_model(self, requested: Any) -> str:
        # One model loaded: whatever the request named, the reply names the server's own model.
        if len(self.server.models) == 1:
            return self.server.model
        return super().reply_model(requested)

    def no_tools_message(self) -> str:
        return "tools param requires --jinja flag"

    def no_images(self) -> None:
        # Not a 400: llama-server reports a missing projector as a server error.
        self.send_error(500, "image input is not supported - hint: if this is unexpected, you may need "
                        "to provide the mmproj", "server_error")

    def extra_final_fields(self, script: Script) -> dict[str, Any]:
        n = script.completion_count()
        return {
            "timings": {
                "cache_n": 0,
                "prompt_n": script.prompt_tokens,
                "prompt_ms": 40.0,
                "prompt_per_token_ms": 40.0 / script.prompt_tokens,
                "prompt_per_second": script.prompt_tokens * 1000.0 / 40.0,
                "predicted_n": n,
                "predicted_ms": n * 20.0,
                "predicted_per_token_ms": 20.0,
                "predicted_per_second": 50.0,
            }
        }

    def model_card(self, model: str) -> dict[str, Any]:
        return bodies.model_card(model, n_ctx=self._n_ctx())

    def models(self) -> None:
        if self.router:
            return self.router_models()
        # 2025+ builds add an Ollama-style "models" list beside "data" (for Copilot-style clients).
        vision = self.images_supported()
        self.send_json(200, {
            "models": [bodies.ollama_entry(m, vision=vision) for m in self.server.models],
            "object": "list",
            "data": [self.model_card(m) for m in self.server.models],
        })

    def _n_ctx(self) -> int:
        return int(self.server.options.get("n_ctx", 4096))

    def api_show(self) -> None:
        # A stub shaped like Ollama's /api/show (it does not make this server Ollama).
        self.send_json(200, {"template": "", "details": {"format": "gguf"}, "model_info": {},
                             "capabilities": ["completion"], "modelfile": "", "parameters": ""})

    # -- llama.cpp's own routes ----------------------------------------------------------------

    def health(self) -> None:
        self.send_json(200, {"status": "ok"})

    def index(self) -> None:
        self.send_text(200, "<!doctype html><html><body>llama.cpp</body></html>", content_type="text/html")

    def props(self) -> None:
        if not self.check_auth():
            return
        options = self.server.options
        # A random marker per server start, as llama-server makes one.
        marker = options.setdefault("media_marker", f"<__media_{secrets.token_urlsafe(24)}__>")
        self.send_json(200, bodies.props(
            self.server.model, n_ctx=self._n_ctx(), vision=self.images_supported(),
            tools=self.tools_supported(), metrics=bool(options.get("metrics", False)), build=BUILD,
            media_marker=marker, old_shapes=bool(options.get("old_shapes", False)),
        ))

    def set_props(self) -> None:  # needs --props, which the simulator does not offer
        self.send_error(501, "This server does not support changing global properties. Start it with "
                        "`--props`", "not_supported_error")

    def slots(self) -> None:
        if not self.check_auth():
            return
        old = bool(self.server.options.get("old_shapes", False))
        self.send_json(200, bodies.slots(self._n_ctx(), old_shapes=old))

    def metrics(self) -> None:
        if not self.server.options.get("metrics", False):
            return self.send_error(
                501,
                "This server does not support metrics endpoint. Start it with `--metrics`",
                "not_supported_error",
            )
        text = bodies.metrics_text(
            {"prompt_tokens_total": 12, "tokens_predicted_total": 7, "n_decode_total": 8, "n_tokens_max": 19}
        )
        self.send_text(
            200,
            text,
            content_type="text/plain; version=0.0.4",
            headers={"Process-Start-Time-Unix": "1700000000"},
        )


def make_server(port: int = 0, **options: Any) -> SimServer:
    """A llama-server simulator (options: model, models, api_key, loading, vision, tools, metrics,
    n_ctx, cached_tokens, truncate_clean, old_error_lines, old_shapes, router, router_load_s)."""
    return serve(LlamaCppHandler, port, options)


__all__ = ["LlamaCppHandler", "make_server"]
