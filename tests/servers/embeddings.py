"""Embeddings routes for the simulators, faithful to the real servers' shapes and errors.

* OpenAI dialect (llama-server, vLLM, LM Studio): ``POST /v1/embeddings`` ->
  ``{"object":"list","data":[{"object":"embedding","index":i,"embedding":[..]}],"model",
  "usage":{"prompt_tokens","total_tokens"}}``. llama-server started without ``--embeddings``
  answers 501 ``not_supported_error`` "This server does not support embeddings. Start it with
  `--embeddings`" (option ``embeddings=False``); started with ``--pooling none`` it answers 400
  "Pooling type 'none' is not OAI compatible..." (option ``pooling="none"``); an input longer
  than its physical batch is 500 "input (N tokens) is too large to process. increase the
  physical batch size (current batch size: 512)" (option ``max_input_chars``).
* Ollama ``POST /api/embed`` ``{"model","input": str | [str]}`` -> ``{"model","embeddings":[[..]],
  "total_duration","load_duration","prompt_eval_count"}``; an unknown model is 404
  ``model "x" not found, try pulling it first``.
* Gemini ``models/{m}:batchEmbedContents`` -> ``{"embeddings":[{"values":[..]}]}``.

The vectors are deterministic bags of hashed words (:func:`lexical_vector`), so a question
shares direction with the chunk that has its words: retrieval through a simulator is testable.
Option ``embed_fault`` (``"shape"``: a vector of strings; ``"count"``: one vector too few) makes
the reply the wrong shape.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

DIM = 64
_WORD = re.compile(r"\w+")


def lexical_vector(text: str, dim: int = DIM) -> list[float]:
    """A unit vector of ``text``'s hashed lower-case words (all zeros but one for empty text)."""
    v = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
        v[h % dim] += 1.0 if h & 0x80000000 else -1.0
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    if not any(v):
        v[0] = 1.0
        norm = 1.0
    return [round(x / norm, 6) for x in v]


def _inputs(body: Any) -> list[str] | None:
    value = body.get("input") if isinstance(body, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return value
    return None


def _faulty(vectors: list[list[float]], fault: str | None) -> list[Any]:
    if fault == "shape":
        return [["x"] * len(v) for v in vectors]
    if fault == "count":
        return vectors[:-1]
    return vectors


class OpenAIEmbeddingsMixin:
    """``POST /v1/embeddings`` for the OpenAI-dialect handlers (route name ``embeddings``)."""

    body: Any
    server: Any

    def embeddings(self) -> None:
        handler: Any = self
        if not handler.check_auth():
            return
        if not handler.server.options.get("embeddings", True):
            handler.send_error(501, "This server does not support embeddings. Start it with `--embeddings`",
                               "not_supported_error")
            return
        if handler.server.options.get("pooling") == "none":  # llama-server --pooling none
            handler.send_error(400, "Pooling type 'none' is not OAI compatible. Please use a different "
                               "pooling type", "invalid_request_error")
            return
        texts = _inputs(self.body)
        if texts is None:
            handler.send_error(400, "\"input\" must be a string or an array of strings",
                               "invalid_request_error")
            return
        limit = handler.server.options.get("max_input_chars")  # llama-server's physical batch
        too_long = [t for t in texts if limit and len(t) > limit]
        if too_long:  # llama-server counts tokens; the simulator counts characters
            handler.send_error(500, f"input ({len(too_long[0])} tokens) is too large to process. increase "
                               f"the physical batch size (current batch size: {limit})", "server_error")
            return
        vectors = _faulty([lexical_vector(t) for t in texts], handler.server.options.get("embed_fault"))
        tokens = sum(len(t.split()) + 1 for t in texts)
        model = self.body.get("model") or handler.server.model
        handler.send_json(200, {
            "model": model, "object": "list",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "data": [{"embedding": v, "index": i, "object": "embedding"} for i, v in enumerate(vectors)],
        })


class OllamaEmbedMixin:
    """``POST /api/embed`` for the Ollama simulator (route name ``embed``)."""

    body: Any
    server: Any

    def embed(self) -> None:
        handler: Any = self
        body = self.body if isinstance(self.body, dict) else {}
        name = body.get("model")
        if not name or handler.server.find(name) is None:
            handler.send_error_json(404, f"model \"{name}\" not found, try pulling it first")
            return
        texts = _inputs(body)
        if texts is None:
            handler.send_error_json(400, "invalid input type")
            return
        vectors = _faulty([lexical_vector(t) for t in texts], handler.server.options.get("embed_fault"))
        handler.send_go(200, {
            "model": name, "embeddings": vectors, "total_duration": 14143917,
            "load_duration": 1019500, "prompt_eval_count": sum(len(t.split()) + 1 for t in texts),
        })


def gemini_batch_embed(handler: Any, model: str) -> None:
    """Answer ``models/{model}:batchEmbedContents`` (Gemini simulator)."""
    body = handler.body if isinstance(handler.body, dict) else {}
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        handler.error(400, "* BatchEmbedContentsRequest.requests: must not be empty")
        return
    texts = []
    for req in requests:
        parts = (req.get("content") or {}).get("parts") if isinstance(req, dict) else None
        texts.append(" ".join(p.get("text", "") for p in parts or [] if isinstance(p, dict)))
    vectors = _faulty([lexical_vector(t) for t in texts], handler.server.options.get("embed_fault"))
    handler.send_json(200, {"embeddings": [{"values": v} for v in vectors]})


__all__ = ["DIM", "OllamaEmbedMixin", "OpenAIEmbeddingsMixin", "gemini_batch_embed", "lexical_vector"]
