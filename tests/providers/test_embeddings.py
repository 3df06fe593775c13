"""Embeddings against each server's simulator over real HTTP on 127.0.0.1: the request each
protocol sends, batching, the vectors in order, wrong shapes as typed errors, and a failing
server as an EmbeddingServerError that names the server and the fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import gemini, llamacpp, lmstudio, ollama, vllm
from tests.servers.base import SimServer
from tests.servers.embeddings import DIM, lexical_vector
from victor_gui.errors import EmbeddingServerError, InvalidResponseError, ProviderUnavailableError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.embeddings import embedder_for, looks_like_embedding_model
from victor_gui.providers.registry import ProviderRegistry

TEXTS = ["the quick brown fox", "jumps over the lazy dog", "a third text", "and a fourth"]


def _start(kind: str, **options: object) -> tuple[SimServer, BaseProvider, str]:
    if kind == "ollama":
        srv = ollama.make_server(models=["nomic-embed-text"], **options).start()
        return srv, ProviderRegistry.create("ollama", base_url=srv.url), "nomic-embed-text"
    if kind == "google":
        srv = gemini.make_server(api_key="g-key", **options).start()
        provider = ProviderRegistry.create("google", base_url=srv.url, api_key="g-key")
        return srv, provider, "gemini-embedding-001"
    module = {"llamacpp": llamacpp, "lmstudio": lmstudio, "vllm": vllm}[kind]
    srv = module.make_server(**options).start()
    return srv, ProviderRegistry.create(kind, base_url=srv.url + "/v1"), "sim-model"


@pytest.fixture
def started() -> Iterator[list[SimServer]]:
    servers: list[SimServer] = []
    yield servers
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("kind", ["ollama", "llamacpp", "lmstudio", "vllm", "google"])
async def test_each_protocol_embeds_in_batches_and_in_order(kind: str, started: list[SimServer]) -> None:
    srv, provider, model = _start(kind)
    started.append(srv)
    embedder = embedder_for(provider, model, batch_size=3)
    seen: list[tuple[int, int]] = []
    vectors = await embedder.embed(TEXTS, progress=lambda done, total: seen.append((done, total)))
    await provider.close()
    assert vectors == [pytest.approx(lexical_vector(t), abs=1e-6) for t in TEXTS]
    assert embedder.dimensions == DIM and seen == [(3, 4), (4, 4)]
    posts = [r for r in srv.requests if r.method == "POST"]
    assert len(posts) == 2  # batches of 3 and 1
    first = posts[0].body
    if kind == "ollama":
        assert posts[0].path == "/api/embed" and first == {"model": model, "input": TEXTS[:3]}
    elif kind == "google":
        assert posts[0].path == f"/v1beta/models/{model}:batchEmbedContents"
        assert posts[0].headers["x-goog-api-key"] == "g-key"
        assert [r["content"]["parts"][0]["text"] for r in first["requests"]] == TEXTS[:3]
        assert first["requests"][0]["model"] == f"models/{model}"
    else:
        assert posts[0].path == "/v1/embeddings"
        assert first == {"model": model, "input": TEXTS[:3], "encoding_format": "float"}
    assert embedder.model_id == f"{provider.name}/{model}"


async def test_openai_compat_key_goes_as_bearer(started: list[SimServer]) -> None:
    srv = vllm.make_server(api_key="v-key").start()
    started.append(srv)
    provider = ProviderRegistry.create("vllm", base_url=srv.url + "/v1", api_key="v-key")
    assert len(await embedder_for(provider, "sim-model").embed(["x"])) == 1
    await provider.close()
    assert srv.requests[-1].headers["authorization"] == "Bearer v-key"


@pytest.mark.parametrize(("kind", "fault", "words"), [
    ("ollama", "shape", "embeddings[0] holds a string"),
    ("llamacpp", "count", "has 3 vectors for 4 texts"),
    ("google", "shape", "embeddings[0].values holds a string"),
])
async def test_wrong_shape_is_a_typed_error(kind: str, fault: str, words: str,
                                            started: list[SimServer]) -> None:
    srv, provider, model = _start(kind, embed_fault=fault)
    started.append(srv)
    with pytest.raises(EmbeddingServerError) as info:
        await embedder_for(provider, model).embed(TEXTS)
    await provider.close()
    assert isinstance(info.value.cause, InvalidResponseError)
    assert words in info.value.message


async def test_llama_server_without_embeddings_names_the_flag(started: list[SimServer]) -> None:
    srv, provider, model = _start("llamacpp", embeddings=False)
    started.append(srv)
    with pytest.raises(EmbeddingServerError) as info:
        await embedder_for(provider, model).embed(["x"])
    await provider.close()
    assert f"llama.cpp at {srv.url}/v1" in info.value.message
    assert "Start llama-server with --embeddings" in info.value.fix


async def test_llama_server_with_pooling_none_names_the_pooling_flag(started: list[SimServer]) -> None:
    srv, provider, model = _start("llamacpp", pooling="none")
    started.append(srv)
    with pytest.raises(EmbeddingServerError) as info:
        await embedder_for(provider, model).embed(["x"])
    await provider.close()
    assert info.value.status_code == 400 and "--pooling mean" in info.value.fix
    assert "Pooling type 'none' is not OAI compatible" in info.value.message


async def test_a_text_past_the_servers_batch_is_embedded_in_parts(started: list[SimServer]) -> None:
    srv, provider, model = _start("llamacpp", max_input_chars=300)
    started.append(srv)
    long = " ".join(f"word{i}" for i in range(120))  # 709 characters: split twice
    embedder = embedder_for(provider, model)
    short_vec, long_vec = await embedder.embed(["short text", long])
    assert short_vec == pytest.approx(lexical_vector("short text"), abs=1e-6)
    assert embedder.split_texts == 1
    sent = [t for r in srv.requests if r.method == "POST" for t in r.body["input"]]
    q1, q2, q3, q4 = [t for t in sent[1:] if len(t) <= 300 and t != "short text"]
    assert q1 + q2 + q3 + q4 == long  # cut at spaces, nothing lost

    def mean(a: list[float], wa: int, b: list[float], wb: int) -> list[float]:
        return [(x * wa + y * wb) / (wa + wb) for x, y in zip(a, b, strict=True)]

    half1 = mean(lexical_vector(q1), len(q1), lexical_vector(q2), len(q2))
    half2 = mean(lexical_vector(q3), len(q3), lexical_vector(q4), len(q4))
    assert long_vec == pytest.approx(mean(half1, len(q1 + q2), half2, len(q3 + q4)), abs=1e-5)
    with pytest.raises(EmbeddingServerError) as info:  # parts would be too small: said, not hidden
        await embedder_for(provider, model).embed(["x" * 5200])  # a 16th is still past 300
    await provider.close()
    assert "--ubatch-size" in info.value.fix and "too large to process" in info.value.message


async def test_ollama_model_not_pulled_says_pull_it(started: list[SimServer]) -> None:
    srv, provider, _ = _start("ollama")
    started.append(srv)
    with pytest.raises(EmbeddingServerError) as info:
        await embedder_for(provider, "mxbai-embed-large").embed(["x"])
    await provider.close()
    assert "ollama pull mxbai-embed-large" in info.value.fix
    assert info.value.status_code == 404


async def test_server_down_names_it_and_says_start_it() -> None:
    provider = ProviderRegistry.create("ollama", base_url="http://127.0.0.1:9")  # discard port: refused
    with pytest.raises(EmbeddingServerError) as info:
        await embedder_for(provider, "nomic-embed-text").embed(["x"])
    await provider.close()
    assert info.value.fix.startswith("Start Ollama at http://127.0.0.1:9")


def test_providers_without_embeddings_are_refused_before_a_call() -> None:
    provider = ProviderRegistry.create("anthropic", api_key="k")
    with pytest.raises(ProviderUnavailableError, match="offers no embeddings API"):
        embedder_for(provider, "x")


def test_embedding_model_names() -> None:
    assert all(map(looks_like_embedding_model, ["nomic-embed-text:latest", "bge-m3", "all-minilm",
                                                 "text-embedding-3-small", "mxbai-embed-large"]))
    assert not any(map(looks_like_embedding_model, ["llama3.2", "qwen3:8b", "gemma3"]))
