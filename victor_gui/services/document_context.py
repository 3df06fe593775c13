"""What the attached documents add to one request: whole when they fit, else retrieved passages.

For each question (:func:`build`):

1. The documents' whole text is counted (:mod:`victor_gui.services.token_count`: llama-server's
   own tokenizer, else the documented estimate with its margin) with the question, and compared
   with the model's **real** window (:func:`loaded_window`: what the server has loaded, not the
   trained maximum) less ``reply_reserve`` tokens kept for the reply.
2. It fits: the whole text goes in (``mode="whole"``, no sources: the model saw everything).
3. It does not: the documents are cut into chunks, embedded once with the user's embedding
   model (:mod:`victor_gui.services.retrieval`), and the best ``k`` chunks for the question go
   in, as many as fit, with the sources (file, page or section, the passage) for the line under
   the reply (``mode="retrieve"``).

``mode`` forces either. Forcing ``whole`` past the window sends it anyway and says so in
``notes`` (the server may cut or refuse it). Forcing ``retrieve`` retrieves even when it fits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from victor_gui.config.settings import AttachmentSettings
from victor_gui.errors import ProviderError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import local_specs
from victor_gui.providers.embeddings import Embedder
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.services.attachment_types import (
    AttachmentRef,
    Chunk,
    ConvertedDocument,
    DocumentContext,
    DocumentMode,
    RetrievedPassage,
)
from victor_gui.services.context_trim import prompt_budget
from victor_gui.services.context_window import loaded_window
from victor_gui.services.doc_chunk import chunk_document
from victor_gui.services.embedding_choice import embedder_source
from victor_gui.services.retrieval import DEFAULT_K, chunking_key, ensure_embedded, retrieve
from victor_gui.services.token_count import CHARS_PER_TOKEN, count_tokens, estimate_tokens
from victor_gui.storage.store import ConversationStore
from victor_gui.storage.vectors import VectorStore

DEFAULT_CHUNK_CHARS = 800
DEFAULT_OVERLAP_CHARS = 100
# Past this many times the window (by the estimate) the server's tokenizer is not asked: the text
# cannot fit anyway, and /tokenize would return a list of millions of ids.
_ASK_SERVER_UP_TO = 2.0

ProgressFn = Callable[[int, int], None]


def _tokens_of(chars: int) -> int:
    """A chunk size given in characters, in the chunker's tokens (the same estimate)."""
    return max(1, round(chars / CHARS_PER_TOKEN))


# An embedder, or how to get one: called only when retrieval is needed (a document that fits
# never wakes an embedding server, and a missing one is not an error then).
EmbedderSource = Embedder | Callable[[], Awaitable[Embedder]]


def _wrap(name: str, text: str) -> str:
    return f'<document name="{name}">\n{text}\n</document>'


def whole_text(docs: Sequence[ConvertedDocument]) -> str:
    """The documents as they go in whole: each in a ``<document name="...">`` block."""
    return "\n\n".join(_wrap(d.name, d.text) for d in docs)


def passages_text(passages: Sequence[RetrievedPassage]) -> str:
    """Retrieved passages as they go in, numbered so the model can cite ``[1]``."""
    lines = ["Passages from the attached documents, the most relevant to the question first:"]
    for i, p in enumerate(passages, start=1):
        where = f"{p.name}, {p.locator}" if p.locator else p.name
        lines.append(f"\n[{i}] {where}\n{p.text}")
    return "\n".join(lines)


def user_text(question: str, context: DocumentContext) -> str:
    """The user's message as sent: the documents' text (whole or passages) before the question."""
    return f"{context.text}\n\n{question}" if context.text else question


def sources_line(passages: Sequence[RetrievedPassage], *, quote_chars: int = 120) -> str:
    """The line under a reply that used retrieved passages: file, page or section, the quote."""
    bits = []
    for i, p in enumerate(passages, start=1):
        quote = " ".join(p.text.split())
        quote = quote if len(quote) <= quote_chars else quote[: quote_chars - 1] + "…"
        where = f"{p.name}, {p.locator}" if p.locator else p.name
        bits.append(f"[{i}] {where}: \u201c{quote}\u201d")
    return "Sources: " + " · ".join(bits) if bits else ""


def _effective_mode(mode: DocumentMode, refs: Sequence[AttachmentRef]) -> DocumentMode:
    if mode != "auto":
        return mode
    forced = {r.mode for r in refs if r.mode != "auto"}
    return forced.pop() if len(forced) == 1 else "auto"


async def build(docs: Sequence[ConvertedDocument], refs: Sequence[AttachmentRef], question: str,
                provider: BaseProvider, model: str, window: int | None, *, reply_reserve: int,
                mode: DocumentMode = "auto", embedder: EmbedderSource | None = None,
                vectors: VectorStore | None = None, k: int = DEFAULT_K,
                chunk_chars: int = DEFAULT_CHUNK_CHARS, overlap: int = DEFAULT_OVERLAP_CHARS,
                progress: ProgressFn | None = None) -> DocumentContext:
    """The context the documents add to the request asking ``question`` (module docstring).

    ``window``: the model's context in tokens, or None to ask the server (:func:`loaded_window`).
    ``embedder`` (or an async function giving one) and ``vectors`` are needed only when
    retrieving. Raises
    :class:`~victor_gui.errors.EmbeddingServerError` when the embedding server fails, and
    ``ValueError`` when retrieval is needed and no embedder was given.
    """
    if not docs:
        return DocumentContext("", "none")
    notes: list[str] = []
    if window is None:
        window, source = await loaded_window(provider, model)
        notes.append(f"The model's window: {window:,} tokens ({source}).")
    # The history trim's budget (context_trim): the reply keeps at most half the window, or a
    # llama-server's default 4,096-token window with max_tokens 4,096 would take no document.
    budget = prompt_budget(window, reply_reserve)
    reply_reserve = window - budget
    chosen = _effective_mode(mode, refs)
    q_tokens = estimate_tokens(question)
    # Estimated section by section: a 200 MB text is never joined on the event loop just to
    # learn that it does not fit.
    estimate = sum(estimate_tokens(s.text) for d in docs for s in d.sections)
    text: str | None = None
    if estimate <= budget * _ASK_SERVER_UP_TO:
        text = whole_text(docs)  # at most about two windows of text
        counted = await count_tokens(provider, model, text)
        tokens, how = counted.tokens, ("server" if counted.exact else "estimate")
    else:
        tokens, how = estimate, "estimate"
    fits = tokens + q_tokens <= budget
    if chosen == "whole" or (chosen == "auto" and fits):
        if not fits:
            notes.append(f"Sent whole as asked: {tokens:,} tokens ({how}) with the question do not fit "
                         f"the {window:,}-token window less {reply_reserve:,} for the reply; the "
                         "server may cut the start or refuse it.")
        if text is None:
            text = await asyncio.to_thread(whole_text, docs)
        return DocumentContext(text, "whole", (), tuple(notes))
    if embedder is None or vectors is None:
        raise ValueError("retrieval needs an embedder and a vector store")
    if not isinstance(embedder, Embedder):
        embedder = await embedder()
    # In a worker: cutting a long document is seconds of string work.
    doc_chunks: dict[str, list[Chunk]] = await asyncio.to_thread(
        lambda: {d.sha256: chunk_document(d, max_tokens=_tokens_of(chunk_chars), overlap=_tokens_of(overlap))
                 for d in docs})
    report = await ensure_embedded(doc_chunks, embedder, vectors,
                                   chunking=chunking_key(chunk_chars, overlap), progress=progress)
    names = {d.sha256: d.name for d in docs}
    passages = await retrieve(question, list(doc_chunks), k, embedder=embedder, vectors=vectors,
                              names=names)
    # As many of the best passages as fit with the question and the reply.
    while passages and estimate_tokens(passages_text(passages)) + q_tokens > budget:
        passages = passages[:-1]
    n_chunks = sum(len(c) for c in doc_chunks.values())
    why = "as asked" if chosen == "retrieve" and fits else (
        f"{tokens:,} tokens ({how}) do not fit the {window:,}-token window less {reply_reserve:,} "
        "for the reply")
    notes.append(f"Retrieved {len(passages)} of {n_chunks} passages with {embedder.model_id} ({why}); "
                 f"{len(report.embedded)} document(s) embedded now, {len(report.reused)} reused.")
    if embedder.split_texts:
        notes.append(f"{embedder.split_texts} passage(s) were longer than the embedding server takes "
                     "at once and were embedded in parts; a smaller chunk size "
                     "(attachments.chunk_chars) or a larger llama-server --ubatch-size avoids it.")
    return DocumentContext(passages_text(passages) if passages else "", "retrieve", tuple(passages),
                           tuple(notes))


DEFAULT_REPLY_RESERVE = 1024


def local_candidates(chat: BaseProvider) -> list[BaseProvider]:
    """The local servers (catalog order) at their usual addresses, on the chat's HTTP client:
    where the default embedding model is looked for when the caller has no configured list."""
    out: list[BaseProvider] = []
    for spec in local_specs():
        if spec.name == chat.name:
            out.append(chat)
            continue
        try:
            out.append(ProviderRegistry.create(spec.name, http_client=chat.http))
        except ProviderError:
            continue
    return out


async def build_for_session(docs: Sequence[ConvertedDocument], question: str, *, mode: DocumentMode,
                            provider: BaseProvider, model: str, max_tokens: int | None,
                            store: ConversationStore, attachments: AttachmentSettings | None = None,
                            providers: Sequence[BaseProvider] = (), refs: Sequence[AttachmentRef] = (),
                            progress: ProgressFn | None = None) -> DocumentContext:
    """:func:`build` as a chat session calls it: the window asked of the server, ``max_tokens``
    kept for the reply (1024 when unset), vectors in the session's store, the embedding model
    of ``attachments.embedding`` or else the local default found among ``providers`` (the
    configured ones; by default the local servers at their usual addresses), looked for only
    when retrieval is needed."""
    settings = attachments or AttachmentSettings()
    candidates = list(providers) or local_candidates(provider)
    return await build(docs, refs, question, provider, model, None,
                       reply_reserve=max_tokens or DEFAULT_REPLY_RESERVE, mode=mode,
                       embedder=embedder_source(settings, candidates, provider), vectors=store.vectors,
                       k=settings.retrieve_k, chunk_chars=settings.chunk_chars, progress=progress)


__all__ = ["build", "build_for_session", "loaded_window", "local_candidates", "passages_text", "sources_line",
           "user_text", "whole_text"]
