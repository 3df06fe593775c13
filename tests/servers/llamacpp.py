"""Simulator of llama.cpp ``llama-server`` (servers.md §4): ``Server: llama.cpp`` on every reply,
typed ``{"error":{"code","message","type"}}`` bodies, 503 ``Loading model`` on every route while
``server.loading``, ``reasoning_content``, ``timings`` in milliseconds, ``meta`` in
``/v1/models``, a mid-stream error event followed by *no* ``[DONE]``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tests.servers.base import Script, SimServer
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


class LlamaCppHandler(RouterMixin, OpenAIDialectHandler):
    server_version = "llama.cpp"
    sys_version = ""
    reasoning_field = "reasoning_content"
    fingerprint = BUILD
    done_after_error = False
    routes: ClassVar[dict[tuple[str, str], str]] = {
        ("GET", "/v1/models"): "models",
        ("GET", "/models"): "models",
        ("POST", "/v1/chat/completions"): "chat",
        ("POST", "/chat/completions"): "chat",
        ("GET", "/health"): "health",
        ("GET", "/v1/health"): "health",
        ("GET", "/props"): "props",
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

    def no_tools_message(self) -> str:
        return "tools param requires --jinja flag"

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
        return {
            "id": model,
            "object": "model",
            "created": 1700000000,
            "owned_by": "llamacpp",
            "meta": {
                "vocab_type": 2,
                "n_vocab": 151936,
                "n_ctx_train": 32768,
                "n_embd": 3584,
                "n_params": 7615616512,
                "size": 4683074048,
            },
        }

    def models(self) -> None:
        if self.router:
            return self.router_models()
        # 2025+ builds add an Ollama-style "models" list beside "data" (for Copilot-style clients).
        cards = [self.model_card(m) for m in self.server.models]
        ollama_style = [
            {
                "name": m,
                "model": m,
                "modified_at": "",
                "size": "",
                "digest": "",
                "type": "model",
                "capabilities": ["completion"],
                "details": {"format": "gguf"},
            }
            for m in self.server.models
        ]
        self.send_json(200, {"models": ollama_style, "object": "list", "data": cards})

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
        n_ctx = int(self.server.options.get("n_ctx", 4096))
        self.send_json(
            200,
            {
                "default_generation_settings": {"id": 0, "n_ctx": n_ctx, "params": {"temperature": 0.8}},
                "total_slots": 1,
                "model_path": f"/models/{self.server.model}.gguf",
                "model_alias": self.server.model,
                "chat_template": "{{ messages }}",
                "modalities": {"vision": bool(self.server.options.get("vision", True)), "audio": False},
                "bos_token": "<s>",
                "eos_token": "</s>",
                "build_info": BUILD,
                "endpoint_slots": True,
                "endpoint_props": False,
                "endpoint_metrics": bool(self.server.options.get("metrics", False)),
            },
        )

    def slots(self) -> None:
        if not self.check_auth():
            return
        n_ctx = int(self.server.options.get("n_ctx", 4096))
        self.send_json(
            200,
            [
                {
                    "id": 0,
                    "id_task": -1,
                    "n_ctx": n_ctx,
                    "speculative": False,
                    "is_processing": False,
                    "params": {},
                    "next_token": {"has_next_token": True, "n_remain": -1, "n_decoded": 0},
                }
            ],
        )

    def metrics(self) -> None:
        if not self.server.options.get("metrics", False):
            return self.send_error(
                501,
                "This server does not support metrics endpoint. Start it with `--metrics`",
                "not_supported_error",
            )
        text = (
            "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
            "# TYPE llamacpp:prompt_tokens_total counter\nllamacpp:prompt_tokens_total 12\n"
            "llamacpp:tokens_predicted_total 7\nllamacpp:n_tokens_max 19\nllamacpp:requests_processing 0\n"
            "llamacpp:requests_deferred 0\n"
        )
        self.send_text(
            200,
            text,
            content_type="text/plain; version=0.0.4",
            headers={"Process-Start-Time-Unix": "1700000000"},
        )


def make_server(port: int = 0, **options: Any) -> SimServer:
    """A llama-server simulator (options: model, models, api_key, loading, vision, tools, metrics,
    n_ctx, cached_tokens, truncate_clean, router, router_load_s)."""
    return serve(LlamaCppHandler, port, options)


__all__ = ["LlamaCppHandler", "make_server"]
