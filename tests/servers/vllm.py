"""Simulator of vLLM's OpenAI server (servers.md §3): FastAPI ``{"detail":"Not Found"}``,
``{"error":{"message","type":"BadRequestError",...,"code"}}`` errors (flat pre-0.10.1 shape with
``legacy_errors=True``), ``reasoning`` (``reasoning_content`` with ``old_reasoning=True``),
``max_model_len`` in the model card, ``/health`` ``/version`` ``/metrics``, mid-stream error
then ``[DONE]``. While loading vLLM refuses connections: tests emulate that by not starting it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tests.servers.base import SimServer
from tests.servers.embeddings import OpenAIEmbeddingsMixin
from tests.servers.openai_dialect import OpenAIDialectHandler, serve

_TYPES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    404: "NotFoundError",
    429: "RateLimitError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


class VLLMHandler(OpenAIEmbeddingsMixin, OpenAIDialectHandler):
    server_version = "uvicorn"
    sys_version = ""
    reasoning_field = "reasoning"
    done_after_error = True
    routes: ClassVar[dict[tuple[str, str], str]] = {
        ("GET", "/v1/models"): "models",
        ("POST", "/v1/chat/completions"): "chat",
        ("POST", "/v1/embeddings"): "embeddings",
        ("GET", "/health"): "health",
        ("GET", "/version"): "version",
        ("GET", "/metrics"): "metrics",
    }

    def version_string(self) -> str:
        return "uvicorn"

    def setup(self) -> None:
        super().setup()
        if self.server.options.get("old_reasoning"):
            self.reasoning_field = "reasoning_content"

    def error_body(self, status: int, message: str, etype: str, code: str | None = None) -> Any:
        vtype = _TYPES.get(status, "BadRequestError")
        if self.server.options.get("legacy_errors"):
            return {"object": "error", "message": message, "type": vtype, "param": None, "code": status}
        return {"error": {"message": message, "type": vtype, "param": None, "code": status}}

    def unauthorized(self) -> None:
        self.send_json(401, {"error": "Unauthorized"})

    def unknown_model(self, model: str) -> None:
        self.send_error(404, f"The model `{model}` does not exist.", "NotFoundError")

    def context_overflow(self, n_prompt: int, n_ctx: int) -> None:
        self.send_error(
            400,
            f"'max_tokens' or 'max_completion_tokens' is too large: 4096. This model's maximum "
            f"context length is {n_ctx} tokens and your request has {n_prompt} input tokens "
            f"({n_prompt} > {n_ctx} - 4096).",
            "BadRequestError",
        )

    def server_error(self) -> None:
        self.send_error(500, "EngineCore encountered an issue.", "InternalServerError")

    def loading(self) -> None:
        # vLLM has no HTTP loading state (it refuses connections until ready). The closest a
        # running simulator can get per request: close the connection without any answer.
        self.close_connection = True
        self.drop_connection()

    def midstream_error_payload(self) -> Any:
        return {
            "error": {
                "message": "The engine died while generating",
                "type": "InternalServerError",
                "param": None,
                "code": 500,
            }
        }

    def no_tools_message(self) -> str:
        return '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'

    def model_card(self, model: str) -> dict[str, Any]:
        return {
            "id": model,
            "object": "model",
            "created": 1700000000,
            "owned_by": "vllm",
            "root": f"/models/{model}",
            "parent": None,
            "max_model_len": int(self.server.options.get("max_model_len", 32768)),
            "permission": [{"id": "modelperm-1", "object": "model_permission", "allow_sampling": True}],
        }

    def models(self) -> None:
        # --api-key guards every path under /v1 (servers.md §3.1), the listing included.
        if self.check_auth():
            super().models()

    def health(self) -> None:
        # 503 with an empty body once the engine has died (EngineDeadError), servers.md §3.2.
        status = 503 if self.server.options.get("engine_dead") else 200
        self.send_bytes(status, b"", "application/json")

    def version(self) -> None:
        self.send_json(200, {"version": "0.11.0"})

    def metrics(self) -> None:
        model = self.server.model
        self.send_text(
            200,
            f'vllm:num_requests_running{{model_name="{model}",engine="0"}} 0.0\n'
            f'vllm:num_requests_waiting{{model_name="{model}",engine="0"}} 0.0\n'
            f'vllm:kv_cache_usage_perc{{model_name="{model}",engine="0"}} 0.01\n',
            content_type="text/plain; version=0.0.4; charset=utf-8",
        )


def make_server(port: int = 0, **options: Any) -> SimServer:
    """A vLLM simulator (options: model, api_key, vision, tools, max_model_len, legacy_errors,
    old_reasoning, cached_tokens, truncate_clean, engine_dead)."""
    return serve(VLLMHandler, port, options)
