"""Whole or retrieved, end to end over real HTTP (the simulators) and a real SQLite store: a
document under the model's window reaches the server whole, one past it is chunked, embedded
once per model, and the passage holding the planted fact comes back with its source."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.servers import llamacpp, ollama
from tests.servers.base import SimServer
from victor_gui.config.settings import AttachmentSettings
from victor_gui.errors import EmbeddingServerError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.embeddings import Embedder, embedder_for
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message
from victor_gui.services.attachment_types import (
    AttachmentKind,
    AttachmentRef,
    ConvertedDocument,
    DocumentSection,
)
from victor_gui.services.document_context import (
    build,
    build_for_session,
    loaded_window,
    local_candidates,
    sources_line,
    user_text,
)
from victor_gui.storage.opening import open_store
from victor_gui.storage.store import ConversationStore

FACT = "The vault access code is ZEBRA-4417, kept by the night warden Oskar Lindqvist."
QUESTION = "What is the vault access code that the night warden keeps?"


def filler(page: int) -> str:
    # Many words, none of them the question's: only the planted page shares words with it.
    return " ".join(f"meadow{page} river{page} lantern{page} orchard{page} pebble{page} sunrise"
                    for _ in range(20))


def document(pages: int, fact_page: int | None) -> ConvertedDocument:
    sections = tuple(DocumentSection(FACT + " " + filler(p) if p == fact_page else filler(p), f"page {p}")
                     for p in range(1, pages + 1))
    text = "\n\n".join(s.text for s in sections)
    sha = hashlib.sha256(text.encode()).hexdigest()
    return ConvertedDocument("handbook.pdf", sha, "application/pdf", sections, pages=pages)


def ref(doc: ConvertedDocument, mode: str = "auto") -> AttachmentRef:
    return AttachmentRef(doc.sha256, doc.name, doc.media_type, len(doc.text), AttachmentKind.DOCUMENT,
                         mode=mode)  # type: ignore[arg-type]


@pytest.fixture
def llama() -> Iterator[SimServer]:
    with llamacpp.make_server(n_ctx=4096) as srv:
        yield srv


@pytest.fixture
def oll() -> Iterator[SimServer]:
    with ollama.make_server(models=["nomic-embed-text", "llama3.2"]) as srv:
        yield srv


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ConversationStore]:
    s, _ = await open_store(tmp_path)
    yield s
    await s.close()


@pytest.fixture
async def chat(llama: SimServer) -> AsyncIterator[BaseProvider]:
    provider = ProviderRegistry.create("llamacpp", base_url=llama.url + "/v1")
    yield provider
    await provider.close()


@pytest.fixture
async def embedder(oll: SimServer) -> AsyncIterator[Embedder]:
    provider = ProviderRegistry.create("ollama", base_url=oll.url)
    yield embedder_for(provider, "nomic-embed-text")
    await provider.close()


def embed_posts(srv: SimServer) -> list[list[str]]:
    return [r.body["input"] for r in srv.requests if r.path.endswith(("/embed", "/embeddings"))]


async def test_window_is_the_servers_loaded_context(chat: BaseProvider) -> None:
    assert await loaded_window(chat, "sim-model") == (4096, "llama-server /props")


async def test_document_under_the_window_reaches_the_server_whole(
        chat: BaseProvider, llama: SimServer, store: ConversationStore, embedder: Embedder,
        oll: SimServer) -> None:
    doc = document(pages=3, fact_page=2)
    ctx = await build([doc], [ref(doc)], QUESTION, chat, "sim-model", None, reply_reserve=1024,
                      embedder=embedder, vectors=store.vectors)
    assert ctx.mode == "whole" and ctx.sources == ()
    await chat.chat([Message(role="user", content=user_text(QUESTION, ctx))], model="sim-model")
    sent = llama.chat_requests()[-1].body["messages"][-1]["content"]
    assert doc.text in sent and FACT in sent and sent.endswith(QUESTION)
    assert embed_posts(oll) == []  # nothing embedded for a document that fits


async def test_document_past_the_window_is_retrieved_with_its_source(
        chat: BaseProvider, store: ConversationStore, embedder: Embedder, oll: SimServer) -> None:
    doc = document(pages=60, fact_page=37)  # ~50k characters: far past 4096 tokens
    ctx = await build([doc], [ref(doc)], QUESTION, chat, "sim-model", None, reply_reserve=1024,
                      embedder=embedder, vectors=store.vectors, k=3, chunk_chars=600)
    assert ctx.mode == "retrieve"
    assert ctx.sources[0].locator == "page 37" and "ZEBRA-4417" in ctx.sources[0].text
    assert ctx.sources[0].name == "handbook.pdf"
    assert "ZEBRA-4417" in ctx.text and doc.text not in ctx.text
    line = sources_line(ctx.sources)
    assert line.startswith("Sources: [1] handbook.pdf, page 37: \u201cThe vault access code")
    assert any("Retrieved 3 of" in n and "ollama/nomic-embed-text" in n for n in ctx.notes)
    chunks_sent = sum(len(batch) for batch in embed_posts(oll)) - 1  # less the question
    assert chunks_sent > 60

    # Asked again: the stored vectors are used, only the new question is embedded.
    before = len(embed_posts(oll))
    again = await build([doc], [ref(doc)], "Who is the night warden?", chat, "sim-model", 4096,
                        reply_reserve=1024, embedder=embedder, vectors=store.vectors, chunk_chars=600)
    assert [b for b in embed_posts(oll)[before:]] == [["Who is the night warden?"]]
    assert again.sources[0].locator == "page 37"
    assert any("0 document(s) embedded now, 1 reused" in n for n in again.notes)


async def test_another_embedding_model_embeds_again_beside_the_first(
        chat: BaseProvider, llama: SimServer, store: ConversationStore, embedder: Embedder) -> None:
    doc = document(pages=30, fact_page=5)
    other = embedder_for(chat, "sim-model")  # llama-server's /v1/embeddings
    for emb in (embedder, other):
        ctx = await build([doc], [ref(doc)], QUESTION, chat, "sim-model", 2048, reply_reserve=512,
                          embedder=emb, vectors=store.vectors, chunk_chars=600)
        assert ctx.sources[0].locator == "page 5"
    assert embed_posts(llama)  # the second model was asked
    both = [await store.vectors.matrices([doc.sha256], m) for m in (embedder.model_id, other.model_id)]
    assert both[0][0].rows == both[1][0].rows > 0
    assert await store.vectors.delete_document(doc.sha256) == 2
    assert await store.vectors.matrices([doc.sha256], embedder.model_id) == []


async def test_forced_modes(chat: BaseProvider, store: ConversationStore, embedder: Embedder) -> None:
    big, small = document(pages=60, fact_page=9), document(pages=2, fact_page=1)
    whole = await build([big], [ref(big, "whole")], QUESTION, chat, "sim-model", 4096,
                        reply_reserve=1024, embedder=embedder, vectors=store.vectors)
    assert whole.mode == "whole" and big.text in whole.text
    assert any("Sent whole as asked" in n and "4,096-token window" in n for n in whole.notes)
    retrieved = await build([small], [ref(small)], QUESTION, chat, "sim-model", 4096, reply_reserve=1024,
                            mode="retrieve", embedder=embedder, vectors=store.vectors)
    assert retrieved.mode == "retrieve" and retrieved.sources[0].locator == "page 1"
    assert any("as asked" in n for n in retrieved.notes)


async def test_embedding_server_down_is_a_clear_error_and_stores_nothing(
        chat: BaseProvider, store: ConversationStore) -> None:
    down = ProviderRegistry.create("ollama", base_url="http://127.0.0.1:9")
    doc = document(pages=60, fact_page=3)
    with pytest.raises(EmbeddingServerError) as info:
        await build([doc], [ref(doc)], QUESTION, chat, "sim-model", 4096, reply_reserve=1024,
                    embedder=embedder_for(down, "nomic-embed-text"), vectors=store.vectors)
    await down.close()
    assert "Ollama at http://127.0.0.1:9" in info.value.message and "Start Ollama" in info.value.fix
    assert await store.vectors.matrices([doc.sha256], "ollama/nomic-embed-text") == []


async def test_session_entry_finds_the_embedding_model_only_when_it_must(
        chat: BaseProvider, store: ConversationStore, oll: SimServer) -> None:
    local = ProviderRegistry.create("ollama", base_url=oll.url)
    small, big = document(pages=2, fact_page=1), document(pages=60, fact_page=44)
    try:
        whole = await build_for_session([small], QUESTION, mode="auto", provider=chat, model="sim-model",
                                         max_tokens=512, store=store, providers=[local])
        assert whole.mode == "whole" and embed_posts(oll) == []  # no embedding server was asked
        settings = AttachmentSettings(retrieve_k=2, chunk_chars=500)
        got = await build_for_session([big], QUESTION, mode="auto", provider=chat, model="sim-model",
                                      max_tokens=512, store=store, providers=[local], attachments=settings)
        assert got.mode == "retrieve" and len(got.sources) == 2 and got.sources[0].locator == "page 44"
        assert any("ollama/nomic-embed-text" in n for n in got.notes)
        assert all(len(c) <= 500 for c in (s.text for s in got.sources))
    finally:
        await local.close()
    names = [p.name for p in local_candidates(chat)]
    assert names == ["ollama", "lmstudio", "vllm", "llamacpp"] and chat in local_candidates(chat)
