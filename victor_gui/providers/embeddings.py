"""Embeddings from the user's own servers: one small client per wire protocol.

* **Ollama** ``POST /api/embed`` ``{"model", "input": [..]}`` -> ``{"embeddings": [[..], ..]}``.
* **OpenAI-compatible** ``POST {base}/embeddings`` (``base`` ends in ``/v1``) ``{"model",
  "input": [..], "encoding_format": "float"}`` -> ``{"data": [{"index", "embedding"}]}``:
  llama-server started with ``--embeddings``, LM Studio, vLLM, OpenAI itself and the
  OpenAI-compatible clouds of :data:`CLOUD_EMBEDDING_MODELS` (a row of data each, like the chat
  providers). A provider in :data:`NO_EMBEDDINGS` has no such route and is refused before a call.
* **Gemini** ``POST /v1beta/models/{model}:batchEmbedContents`` ``{"requests": [{"model",
  "content": {"parts": [{"text"}]}}]}`` -> ``{"embeddings": [{"values": [..]}]}`` (a key is
  needed, as for the chat).

Every call goes through the provider's own client (bounded in bytes and in time, see
:mod:`victor_gui.providers.bounded`), texts go in batches of :attr:`Embedder.batch_size`, and a
reply of the wrong shape (a count that does not match, a vector that is not a list of finite
numbers, vectors of different widths) is an :class:`~victor_gui.errors.InvalidResponseError`
naming the field. Any failure reaches the caller as :class:`~victor_gui.errors.EmbeddingServerError`
whose message names the server and the model and ends with what to do.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx

from victor_gui.errors import (
    ContextLengthExceededError,
    EmbeddingServerError,
    InvalidResponseError,
    MissingAPIKeyError,
    ModelNotFoundError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.bounded import read_bounded
from victor_gui.providers.catalog import display_name, find_spec
from victor_gui.providers.http import parse_json_body, raise_for_status, transport_error
from victor_gui.providers.json_guard import Shape, describe

EmbeddingProtocol = Literal["ollama", "openai", "gemini"]
Vector = list[float]
HeaderSource = Callable[[], "dict[str, str] | Awaitable[dict[str, str]]"]

# The OpenAI-compatible clouds (and Google) that offer an embeddings API, and the model a user
# gets when they pick the provider without naming one: the provider's current general model.
CLOUD_EMBEDDING_MODELS: dict[str, str] = {
    "openai": "text-embedding-3-small",
    "mistral": "mistral-embed",
    "together": "BAAI/bge-base-en-v1.5",
    "fireworks": "nomic-ai/nomic-embed-text-v1.5",
    "zai": "embedding-3",
    "google": "gemini-embedding-001",
}
# Catalog providers known to have no embeddings route: refused with a sentence, never called.
NO_EMBEDDINGS: frozenset[str] = frozenset({
    "anthropic", "xai", "deepseek", "groqcloud", "cerebras", "moonshot", "replicate", "bedrock",
    "vertex", "azure", "openrouter",
})
# Most texts per request. Ollama and llama-server take any count (llama-server runs them through
# its slots), OpenAI allows 2048 inputs, Gemini's batchEmbedContents 100: 32 keeps each request
# small (32 chunks of ~800 characters is ~25 KB), so a slow CPU server answers each well inside
# the read timeout and progress can be shown between batches.
DEFAULT_BATCH = 32
GEMINI_MAX_BATCH = 100
# A text the server refuses as too long is embedded in halves, quarters... down to this depth
# (a 16th of the text) and never in parts shorter than MIN_PART_CHARS.
MAX_SPLIT_DEPTH = 4
MIN_PART_CHARS = 32


@dataclass(frozen=True)
class EmbeddingTarget:
    """Where embeddings come from: the provider's name (as the chat knows it), its protocol,
    the URL (Ollama's root; an OpenAI-compatible ``.../v1``; Gemini's root) and the model."""

    provider: str
    protocol: EmbeddingProtocol
    base_url: str
    model: str

    @property
    def model_id(self) -> str:
        """The key vectors are stored under: one model on one provider (``ollama/nomic-embed-text``).
        Vectors of different models never mix; the same file is embedded once per model. Ollama's
        ``name`` and ``name:latest`` are one model, so one key."""
        model = self.model.removesuffix(":latest") if self.protocol == "ollama" else self.model
        return f"{self.provider}/{model}"

    @property
    def label(self) -> str:
        """How messages name the server: ``Ollama at http://127.0.0.1:11434``."""
        return f"{display_name(self.provider)} at {self.base_url}"


ProgressFn = Callable[[int, int], None]


class Embedder:
    """Turns texts into vectors with one model on one server (see the module docstring)."""

    def __init__(self, target: EmbeddingTarget, client: httpx.AsyncClient, *,
                 headers: HeaderSource | None = None, batch_size: int = DEFAULT_BATCH) -> None:
        self.target = target
        self._client = client
        self._headers = headers
        limit = GEMINI_MAX_BATCH if target.protocol == "gemini" else 2048
        self.batch_size = max(1, min(batch_size, limit))
        self.dimensions: int | None = None  # learnt from the first reply
        self.split_texts = 0  # texts the server refused as too long, embedded in parts

    @property
    def model_id(self) -> str:
        """See :attr:`EmbeddingTarget.model_id`."""
        return self.target.model_id

    async def embed(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> list[Vector]:
        """One vector per text, in order; ``progress(done, total)`` after each batch.

        Raises :class:`EmbeddingServerError` (the server, the model and the fix in its message).
        """
        out: list[Vector] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start:start + self.batch_size])
            try:
                vectors = await self._embed_fitting(batch)
            except ProviderError as exc:
                raise self._explain(exc) from exc
            out.extend(vectors)
            if progress is not None:
                progress(len(out), len(texts))
        return out

    # -- texts longer than the server takes -----------------------------------------------------

    async def _embed_fitting(self, batch: list[str]) -> list[Vector]:
        """:meth:`_embed_batch`, and when the server refuses a text as too long for it (llama-server
        embeds at most its physical batch, 512 tokens by default; OpenAI 8,191), each text alone,
        a refused one in halves whose vectors are averaged by length: mean pooling over the two
        halves, which is what the server would have computed over the whole."""
        try:
            return await self._embed_batch(batch)
        except ProviderError as exc:
            if not _too_long(exc):
                raise
            if len(batch) > 1:
                return [vec for text in batch for vec in await self._embed_fitting([text])]
            return [await self._embed_in_parts(batch[0], exc, depth=0)]

    async def _embed_in_parts(self, text: str, refusal: ProviderError, *, depth: int) -> Vector:
        if depth >= MAX_SPLIT_DEPTH or len(text) < 2 * MIN_PART_CHARS:
            raise refusal
        if depth == 0:
            self.split_texts += 1
        cut = _middle_cut(text)
        halves = [text[:cut], text[cut:]]
        vectors: list[Vector] = []
        for half in halves:
            try:
                vectors.extend(await self._embed_batch([half]))
            except ProviderError as exc:
                if not _too_long(exc):
                    raise
                vectors.append(await self._embed_in_parts(half, exc, depth=depth + 1))
        wa, wb = len(halves[0]), len(halves[1])
        return [(a * wa + b * wb) / (wa + wb) for a, b in zip(vectors[0], vectors[1], strict=True)]

    # -- one request ------------------------------------------------------------------------------

    async def _embed_batch(self, batch: list[str]) -> list[Vector]:
        t = self.target
        body: dict[str, Any]
        if t.protocol == "ollama":
            url, body = f"{t.base_url}/api/embed", {"model": t.model, "input": batch}
            where = "Ollama /api/embed"
        elif t.protocol == "openai":
            url = f"{t.base_url}/embeddings"
            body = {"model": t.model, "input": batch, "encoding_format": "float"}
            where = f"{display_name(t.provider)} /embeddings"
        else:
            name = t.model.removeprefix("models/")
            url = f"{t.base_url}/v1beta/models/{quote(name, safe='-._@')}:batchEmbedContents"
            body = {"requests": [{"model": f"models/{name}", "content": {"parts": [{"text": x}]},
                                  "taskType": "RETRIEVAL_DOCUMENT"} for x in batch]}
            where = "Gemini batchEmbedContents"
        data = await self._post(url, body)
        shape = Shape(where, t.provider, model=t.model)
        obj = shape.obj(data)
        if t.protocol == "ollama":
            raw = shape.items(obj, "embeddings")
            paths = [f"embeddings[{i}]" for i in range(len(raw))]
        elif t.protocol == "openai":
            entries = shape.objects(obj, "data")
            order = []
            for i, entry in enumerate(entries):
                index = entry.get("index", i)
                if not isinstance(index, int) or isinstance(index, bool):
                    raise shape.wrong(f"data[{i}].index", index, "a number")
                order.append((index, entry.get("embedding"), f"data[{i}].embedding"))
            order.sort(key=lambda item: item[0])
            raw = [item[1] for item in order]
            paths = [item[2] for item in order]
        else:
            entries = shape.objects(obj, "embeddings")
            raw = [entry.get("values") for entry in entries]
            paths = [f"embeddings[{i}].values" for i in range(len(raw))]
        if len(raw) != len(batch):
            raise shape.error("the reply", f"has {len(raw)} vectors for {len(batch)} texts")
        return [self._vector(shape, value, path) for value, path in zip(raw, paths, strict=True)]

    def _vector(self, shape: Shape, value: Any, path: str) -> Vector:
        if not isinstance(value, list) or not value:
            raise shape.wrong(path, value, "a non-empty list of numbers")
        out: Vector = []
        for x in value:
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                raise shape.error(path, f"holds {describe(x)}, not a finite number")
            out.append(float(x))
        if self.dimensions is None:
            self.dimensions = len(out)
        elif len(out) != self.dimensions:
            raise shape.error(path, f"has {len(out)} numbers where the model gave {self.dimensions}")
        return out

    async def _post(self, url: str, body: dict[str, Any]) -> Any:
        t = self.target
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._headers is not None:
            extra = self._headers()
            headers.update(await extra if inspect.isawaitable(extra) else extra)
        try:
            async with self._client.stream("POST", url, json=body, headers=headers) as response:
                await raise_for_status(response, provider=t.provider, model=t.model)
                raw = await read_bounded(response)
                return parse_json_body(raw, provider=t.provider, status=response.status_code,
                                       model=t.model, content_type=response.headers.get("content-type", ""))
        except ProviderError:
            raise
        except httpx.HTTPError as exc:
            raise transport_error(exc, t.provider, model=t.model) from exc

    # -- errors in words ----------------------------------------------------------------------------

    def _explain(self, exc: ProviderError) -> EmbeddingServerError:
        t = self.target
        fix = _fix_for(t, exc)
        message = (f"The embedding model {t.model} on {t.label} could not embed the document: "
                   f"{exc.message} {fix}")
        return EmbeddingServerError(message, t.provider, fix=fix, cause=exc, model=t.model,
                                    status_code=exc.status_code, raw_error=exc)


def _too_long(exc: ProviderError) -> bool:
    """Whether the server refused a text for its length (not the request for anything else)."""
    text = exc.message.lower()
    return (isinstance(exc, ContextLengthExceededError) or "too large to process" in text
            or "physical batch size" in text)


def _middle_cut(text: str) -> int:
    """Where to cut ``text`` in two: the whitespace nearest its middle, else the middle."""
    mid = len(text) // 2
    left, right = text.rfind(" ", 0, mid), text.find(" ", mid)
    candidates = [i for i in (left, right) if i > 0]
    return min(candidates, key=lambda i: abs(i - mid)) if candidates else mid


def _fix_for(t: EmbeddingTarget, exc: ProviderError) -> str:
    text = exc.message.lower()
    other = "or choose another embedding model in Settings (attachments.embedding)."
    if isinstance(exc, ProviderConnectionError):
        return f"Start {display_name(t.provider)} at {t.base_url}, {other}"
    if isinstance(exc, MissingAPIKeyError | ProviderAuthError):
        return f"Check the API key of {display_name(t.provider)}, {other}"
    if "does not support embeddings" in text or "--embeddings" in text or exc.status_code == 501:
        return f"Start llama-server with --embeddings (and --pooling mean), {other}"
    if "pooling" in text:
        return f"Start llama-server with --pooling mean (or cls, last), {other}"
    if "too large to process" in text or "batch size" in text:
        return ("A chunk is longer than the server's batch: start llama-server with a larger "
                f"--ubatch-size (-ub 2048), {other}")
    if isinstance(exc, ModelNotFoundError) or exc.status_code == 404 or "not found" in text:
        if t.protocol == "ollama":
            return f"Pull it first (ollama pull {t.model}), {other}"
        return f"Load {t.model} on the server, {other}"
    if "does not support" in text or "not an embedding model" in text:
        return f"{t.model} is not an embedding model: pick one whose name says embed, {other}"
    if isinstance(exc, ProviderTimeoutError):
        return f"The server did not answer in time; check that it is not busy, {other}"
    if isinstance(exc, InvalidResponseError):
        return f"The server's reply was not an embeddings reply; check its version, {other}"
    return f"Check the server's log, {other}"


def _protocol_of(provider: BaseProvider) -> EmbeddingProtocol:
    """The embeddings protocol of a chat provider (refused when it has none)."""
    # Imported here: the protocol modules are loaded on first use (see the registry).
    from victor_gui.providers.protocols.gemini import GeminiProvider
    from victor_gui.providers.protocols.ollama import OllamaProvider
    from victor_gui.providers.protocols.openai_compat import OpenAICompatProvider
    from victor_gui.providers.protocols.vertex import VertexProvider

    spec = find_spec(provider.name)
    if spec is not None and spec.name in NO_EMBEDDINGS:
        raise ProviderUnavailableError(
            f"{spec.display_name} offers no embeddings API; choose another embedding model in "
            "Settings (attachments.embedding)", provider.name)
    if isinstance(provider, OllamaProvider):
        return "ollama"
    if isinstance(provider, GeminiProvider) and not isinstance(provider, VertexProvider):
        return "gemini"
    if isinstance(provider, OpenAICompatProvider) and type(provider).__name__ != "AzureOpenAIProvider":
        return "openai"
    raise ProviderUnavailableError(
        f"{display_name(provider.name)} has no embeddings client here; choose another embedding "
        "model in Settings (attachments.embedding)", provider.name)


def embedder_for(provider: BaseProvider, model: str, *, batch_size: int = DEFAULT_BATCH) -> Embedder:
    """An :class:`Embedder` on the same server, client and credentials as a chat provider.

    Raises :class:`~victor_gui.errors.ProviderUnavailableError` for a provider without an
    embeddings API (:data:`NO_EMBEDDINGS`)."""
    protocol = _protocol_of(provider)
    base = (provider.base_url or "").rstrip("/")
    if protocol == "gemini":
        base = base or "https://generativelanguage.googleapis.com"
    target = EmbeddingTarget(provider.name, protocol, base, model)
    header_fn = getattr(provider, "_headers", None)
    headers: HeaderSource | None = None
    if callable(header_fn):
        def headers() -> dict[str, str] | Awaitable[dict[str, str]]:
            if protocol == "openai":
                require = getattr(provider, "_require_key", None)
                if callable(require):
                    require()  # the key from the keyring or environment, as the chat finds it
            value: dict[str, str] | Awaitable[dict[str, str]] = header_fn()
            return value
    return Embedder(target, provider.http, headers=headers, batch_size=batch_size)


def looks_like_embedding_model(name: str) -> bool:
    """Whether a listed model's name says it embeds (``nomic-embed-text``, ``bge-m3``,
    ``text-embedding-3-small``, ``all-minilm``, ``e5-large``, ``gte-base``)."""
    low = name.lower()
    return "embed" in low or any(tag in low for tag in ("bge-", "bge:", "minilm", "e5-", "gte-"))


__all__ = [
    "CLOUD_EMBEDDING_MODELS",
    "NO_EMBEDDINGS",
    "Embedder",
    "EmbeddingProtocol",
    "EmbeddingTarget",
    "Vector",
    "embedder_for",
    "looks_like_embedding_model",
]
