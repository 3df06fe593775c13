"""Embedding attached documents' chunks once, and finding the best ones for a question.

:func:`ensure_embedded` stores each document's chunks with the embedding model's vectors
(:mod:`victor_gui.storage.vectors`), skipping a document already embedded by that model with the
same chunking: the same file attached to ten chats is embedded once per model. :func:`retrieve`
embeds the question with the same model and ranks the candidate documents' chunks by the fused
vector + BM25 score of :mod:`victor_gui.services.vector_search` (hybrid: a small or
mismatched embedding model still finds the chunk that names what the question names).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from victor_gui.errors import EmbeddingServerError
from victor_gui.providers.embeddings import Embedder
from victor_gui.services.attachment_types import Chunk, RetrievedPassage
from victor_gui.services.vector_search import bm25_scores, cosine_scores, fuse, matrix_from_blobs
from victor_gui.storage.vectors import VectorStore

DEFAULT_K = 4
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class EmbedReport:
    """What :func:`ensure_embedded` did: documents embedded now, documents found stored."""

    embedded: tuple[str, ...]
    reused: tuple[str, ...]
    chunks: int  # chunks sent to the embedding server now


def chunking_key(max_chars: int, overlap: int) -> str:
    """How a set of chunks was cut (stored beside it: another cut embeds again)."""
    return f"chars:{max_chars}/{overlap}"


async def ensure_embedded(doc_chunks: Mapping[str, Sequence[Chunk]], embedder: Embedder,
                          vectors: VectorStore, *, chunking: str,
                          progress: ProgressFn | None = None) -> EmbedReport:
    """Make sure every document's chunks (``sha256 -> chunks``) have ``embedder``'s vectors
    stored; ``progress(done, total)`` counts the chunks embedded now. Raises
    :class:`~victor_gui.errors.EmbeddingServerError` (nothing of that document is stored)."""
    todo: list[tuple[str, Sequence[Chunk]]] = []
    reused: list[str] = []
    for sha, chunks in doc_chunks.items():
        if not chunks:
            continue
        if await vectors.is_embedded(sha, embedder.model_id, chunking):
            reused.append(sha)
        else:
            todo.append((sha, chunks))
    total = sum(len(chunks) for _, chunks in todo)
    done = 0
    for sha, chunks in todo:
        base = done

        def step(n: int, _total: int, base: int = base) -> None:
            if progress is not None:
                progress(base + n, total)

        vecs = await embedder.embed([c.text for c in chunks], progress=step)
        await vectors.put(sha, embedder.model_id, chunking,
                          [(c.index, c.locator, c.text, v) for c, v in zip(chunks, vecs, strict=True)])
        done += len(chunks)
    return EmbedReport(tuple(sha for sha, _ in todo), tuple(reused), total)


async def retrieve(question: str, sha256s: Sequence[str], k: int, *, embedder: Embedder,
                   vectors: VectorStore, names: Mapping[str, str] | None = None) -> list[RetrievedPassage]:
    """The ``k`` chunks of the documents ``sha256s`` that best answer ``question``, best first
    (``names``: the file name shown per document). Documents never embedded by this model give
    nothing: call :func:`ensure_embedded` first."""
    stored = await vectors.load(sha256s, embedder.model_id)
    if not stored or k <= 0:
        return []
    qvec = (await embedder.embed([question]))[0]
    matrix = matrix_from_blobs([c.vector for c in stored])
    dims = len(matrix[0]) if len(matrix) else 0
    if dims != len(qvec):
        raise EmbeddingServerError(
            f"The embedding model {embedder.target.model} on {embedder.target.label} gave the "
            f"question {len(qvec)} numbers but the stored chunks have {dims}; the model changed "
            "under the same name. Remove the attachment and attach it again to embed it anew.",
            embedder.target.provider, fix="Attach the document again.", model=embedder.target.model)
    vec = cosine_scores(qvec, matrix)
    lex = bm25_scores(question, [c.text for c in stored])
    names = names or {}
    return [RetrievedPassage(names.get(stored[i].sha256, ""), stored[i].sha256, stored[i].locator,
                             stored[i].text, round(score, 6))
            for i, score in fuse(vec, lex, k)]


__all__ = ["DEFAULT_K", "EmbedReport", "chunking_key", "ensure_embedded", "retrieve"]
