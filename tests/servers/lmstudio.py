"""Simulator of LM Studio's server (servers.md §2): HTTP 200 with
``{"error":"Unexpected endpoint or method. (METHOD /path)"}`` for unknown routes,
``X-Powered-By: Express``, ``/api/v0/models`` with ``state`` and ``max_context_length``,
``reasoning`` (or inline ``<think>``), JIT loading (a request for an unloaded model waits
``jit_load_s`` and then answers), OpenAI-shaped errors.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from tests.servers.base import SimServer
from tests.servers.embeddings import OpenAIEmbeddingsMixin
from tests.servers.lmstudio_v1 import RestV1Mixin
from tests.servers.openai_dialect import OpenAIDialectHandler, serve


class LMStudioHandler(OpenAIEmbeddingsMixin, RestV1Mixin, OpenAIDialectHandler):
    reasoning_field = "reasoning"
    done_after_error = False
    routes: ClassVar[dict[tuple[str, str], str]] = {
        ("GET", "/v1/models"): "models",
        ("POST", "/v1/chat/completions"): "chat",
        ("POST", "/v1/embeddings"): "embeddings",
        ("GET", "/api/v0/models"): "v0_models",
    }

    def extra_headers(self) -> dict[str, str]:
        return {"X-Powered-By": "Express"}

    def unknown_route(self, path: str) -> None:
        if self.v1_route(path):  # REST v1 model management (rest_v1=True, LM Studio 0.4+)
            return
        self.send_json(200, {"error": f"Unexpected endpoint or method. ({self.command} {path})"})

    def unauthorized(self) -> None:
        self.send_json(
            401,
            {
                "error": {
                    "type": "invalid_request",
                    "code": "invalid_api_key",
                    "message": "An LM Studio API token is required to make requests to this server.",
                }
            },
        )

    def unknown_model(self, model: str) -> None:
        self.send_json(
            404,
            {
                "error": {
                    "message": f'Model "{model}" not found. Please specify a valid model.\n\n'
                    f"Your models:\n{self.server.model}",
                    "type": "invalid_request_error",
                    "param": "model",
                    "code": "model_not_found",
                }
            },
        )

    def context_overflow(self, n_prompt: int, n_ctx: int) -> None:
        self.send_json(
            400,
            {
                "error": f"The number of tokens to keep from the initial prompt is greater than the "
                f"context length (n_keep: {n_prompt}>= n_ctx: {n_ctx}). Try to load the model "
                "with a larger context length, or provide a shorter input."
            },
        )

    def server_error(self) -> None:
        self.send_json(500, {"error": {"message": "Model crashed", "type": "internal_error"}})

    def loading(self) -> None:
        # JIT: the request blocks while the model loads, then is answered normally.
        time.sleep(float(self.server.options.get("jit_load_s", 0.2)))
        self.server.options["loaded"] = True
        script = self.server.default_script
        body = self.body if isinstance(self.body, dict) else {}
        model = str(body.get("model") or self.server.model)
        if body.get("stream"):
            return self.stream_reply(script, model, body)
        return self.whole_reply(script, model, script.fault)

    def midstream_error_payload(self) -> Any:
        return {
            "error": {
                "message": "The model has crashed without additional information. (Exit code: 1)",
                "type": "internal_error",
                "code": "internal_error",
            }
        }

    def model_card(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "owned_by": "organization_owner"}

    def v0_models(self) -> None:
        if not self.check_auth():
            return
        data = []
        loaded_models = {item["model"] for item in self.loaded_instances().values()}
        for model in self.server.models:
            loaded = model in loaded_models
            entry = {
                "id": model,
                "object": "model",
                "type": "vlm" if "vl" in model else "llm",
                "publisher": "lmstudio-community",
                "arch": "qwen2",
                "compatibility_type": "gguf",
                "quantization": "Q4_K_M",
                "state": "loaded" if loaded else "not-loaded",
                "max_context_length": 131072,
            }
            if loaded:
                entry["loaded_context_length"] = next(
                    i["context_length"] for i in self.loaded_instances().values() if i["model"] == model)
                entry["capabilities"] = ["tool_use"]
            data.append(entry)
        self.send_json(200, {"object": "list", "data": data})


def make_server(port: int = 0, **options: Any) -> SimServer:
    """An LM Studio simulator (options: model, models, api_key, vision, tools, jit_load_s,
    cached_tokens, truncate_clean, rest_v1, download_seconds)."""
    return serve(LMStudioHandler, port, options)
