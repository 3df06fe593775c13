"""Embedding attached documents' chunks once, and finding the best ones for a question.

:func:`ensure_embedded` stores each document's chunks with the embedding model's vectors
(:mod:`victor_gui.storage.vectors`), skipping a document already embedded by that model with the
same chunking: the same file attached to ten chats is embedded once per model. :func:`retrieve`
embeds the question with the same model and ranks the candidate documents' chunks by the fused
vector + BM25 (FTS5) score of :mod:`victor_gui.services.vector_search` (hybrid: a small or
mismatched embedding model still finds the chunk that names what the question names).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from victor_gui.errors import EmbeddingServerError
from victor_gui.providers.embeddings import Embedder
from victor_gui.services.attachment_types import Chunk, RetrievedPassage
from victor_gui.services.vector_search import POOL, fuse, rank_vectors, words
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
                          [(c.locator, c.text, v) for c, v in zip(chunks, vecs, strict=True)])
        done += len(chunks)
    return EmbedReport(tuple(sha for sha, _ in todo), tuple(reused), total)


async def retrieve(question: str, sha256s: Sequence[str], k: int, *, embedder: Embedder,
                   vectors: VectorStore, names: Mapping[str, str] | None = None) -> list[RetrievedPassage]:
    """The ``k`` chunks of the documents ``sha256s`` that best answer ``question``, best first
    (``names``: the file name shown per document). Documents never embedded by this model give
    nothing: call :func:`ensure_embedded` first."""
    model = embedder.model_id
    docs = await vectors.matrices(sha256s, model)
    if not docs or k <= 0:
        return []
    qvec = (await embedder.embed([question]))[0]
    stale = [d for d in docs if d.dim != len(qvec)]
    if stale:
        raise EmbeddingServerError(
            f"The embedding model {embedder.target.model} on {embedder.target.label} gave the "
            f"question {len(qvec)} numbers but the stored chunks have {stale[0].dim}; the model "
            "changed under the same name. Remove the attachment and attach it again to embed it anew.",
            embedder.target.provider, fix="Attach the document again.", model=embedder.target.model)
    pool = max(POOL, k)
    by_words = await vectors.lexical(words(question), sha256s, model, pool)
    word_keys = [(sha, idx) for sha, idx, _ in by_words]
    by_vector = await asyncio.to_thread(rank_vectors, qvec, docs, pool, word_keys)
    fused = fuse(by_vector, {key: rank for rank, key in enumerate(word_keys, start=1)}, k=k)
    score = dict(fused)
    names = names or {}
    chosen = await vectors.chunks([key for key, _ in fused], model)
    return [RetrievedPassage(names.get(c.sha256, ""), c.sha256, c.locator, c.text,
                             round(score[(c.sha256, c.index)], 6)) for c in chosen]

__all__ = ["DEFAULT_K", "EmbedReport", "chunking_key", "ensure_embedded", "retrieve"]
