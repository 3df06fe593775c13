"""Retrieval against a real llama-server started with ``--embeddings --pooling mean`` on the
generated tiny model (4k context).

The tiny model's vectors carry no meaning (random weights), so the planted fact is found by the
hybrid score (vector rank fused with BM25, services.vector_search): the question shares rare
words with the planted chunk only. What the real server proves: its ``/v1/embeddings`` shape,
its ``/tokenize`` count and ``/props`` window decide "retrieve", every chunk of a document far
past its context is embedded (each chunk under its 512-token physical batch), the vectors
round-trip through SQLite, and the sources name the planted page. The same server then takes a
small document whole (its ``prompt_tokens`` covers the document's tokens; the request body
itself is checked against the simulator in tests/services/test_document_context.py), and a
passage longer than its 512-token batch is embedded in halves.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import ModelFactory, ServerFactory
from victor_gui.errors import EmbeddingServerError
from victor_gui.providers.embeddings import embedder_for
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message
from victor_gui.services.attachment_types import (
    AttachmentKind,
    AttachmentRef,
    ConvertedDocument,
    DocumentSection,
)
from victor_gui.services.document_context import build, sources_line, user_text
from victor_gui.storage.opening import open_store

pytestmark = pytest.mark.llamacpp

FACT = "Reactor coolant valve seven opens at pressure threshold quartz-nineteen."
QUESTION = "At which pressure threshold does the coolant valve seven open?"
FILLER = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
          "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
          "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. ")


def document(pages: int, fact_page: int) -> ConvertedDocument:
    sections = tuple(DocumentSection((FACT + " " if p == fact_page else "") + FILLER, f"page {p}")
                     for p in range(1, pages + 1))
    text = "\n\n".join(s.text for s in sections)
    return ConvertedDocument("manual.pdf", hashlib.sha256(text.encode()).hexdigest(), "application/pdf",
                             sections, pages=pages)


def ref(doc: ConvertedDocument) -> AttachmentRef:
    return AttachmentRef(doc.sha256, doc.name, doc.media_type, len(doc.text), AttachmentKind.DOCUMENT)


@pytest.mark.timeout(150)  # an unoptimised (-O0) llama-server on a shared 2-core machine
async def test_real_embeddings_retrieve_the_planted_fact_and_small_docs_go_whole(
        start_llama: ServerFactory, tiny_model: ModelFactory, tmp_path: Path) -> None:
    server = start_llama(tiny_model(), extra_args=["--embeddings", "--pooling", "mean"])
    provider = ProviderRegistry.create("llamacpp", base_url=server.base_url + "/v1")
    store, _ = await open_store(tmp_path)
    try:
        embedder = embedder_for(provider, "tiny")
        big = document(pages=24, fact_page=17)
        async with httpx.AsyncClient() as raw:
            tokens = len((await raw.post(f"{server.base_url}/tokenize",
                                         json={"content": big.text})).json()["tokens"])
        assert tokens > 4096  # the document is far past the server's context

        ctx = await build([big], [ref(big)], QUESTION, provider, "tiny", None, reply_reserve=512,
                          embedder=embedder, vectors=store.vectors, k=3, chunk_chars=500)
        assert ctx.mode == "retrieve"
        assert any("4,096 tokens (llama-server /props)" in n for n in ctx.notes)
        assert ctx.sources[0].locator == "page 17" and FACT in ctx.sources[0].text
        assert sources_line(ctx.sources).startswith("Sources: [1] manual.pdf, page 17: \u201cReactor coolant")
        [stored] = await store.vectors.matrices([big.sha256], embedder.model_id)
        assert stored.rows >= 10 and stored.dim == embedder.dimensions == 128  # the tiny model's n_embd
        assert len(stored.data) == stored.rows * 128 * 4

        small = document(pages=2, fact_page=1)
        whole = await build([small], [ref(small)], QUESTION, provider, "tiny", None, reply_reserve=512,
                            embedder=embedder, vectors=store.vectors)
        assert whole.mode == "whole" and small.text in whole.text
        reply = await provider.chat([Message(role="user", content=user_text(QUESTION, whole))],
                                    model="tiny", max_tokens=2)
        async with httpx.AsyncClient() as raw:
            small_tokens = len((await raw.post(f"{server.base_url}/tokenize",
                                               json={"content": small.text})).json()["tokens"])
        assert reply.usage is not None and reply.usage.prompt_tokens > small_tokens

        # A passage past the server's 512-token physical batch: refused whole (500 "too large to
        # process"), embedded in halves whose vectors are averaged.
        [vec] = await embedder.embed([FILLER * 4])  # ~920 characters, ~750 tokens
        assert len(vec) == 128 and embedder.split_texts == 1
    finally:
        await store.close()
        await provider.close()


async def test_real_server_without_embeddings_says_start_it_with_the_flag(
        llama_server: object, tmp_path: Path) -> None:
    base = llama_server.base_url
    provider = ProviderRegistry.create("llamacpp", base_url=base + "/v1")
    try:
        with pytest.raises(EmbeddingServerError) as info:
            await embedder_for(provider, "tiny").embed(["hello"])
        assert info.value.status_code == 501
        assert "Start llama-server with --embeddings" in info.value.fix
        assert f"llama.cpp at {base}/v1" in info.value.message
    finally:
        await provider.close()
