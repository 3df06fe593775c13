"""count_tokens: exact from a real llama-server's /tokenize, else the documented estimate, never
raising and bounded in time (a simulator without /tokenize, a refused port, a silent server)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.providers import hostile_http as hh
from tests.providers.openai_sims import make_provider, running
from tests.servers.base import free_port
from tests.support.llama_build import binary_for_tests
from tests.support.llama_server import LlamaServer, start_llama_server
from tests.support.tiny_gguf import make_tiny_gguf
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.services.token_count import (
    CHARS_PER_TOKEN,
    TokenCount,
    count_tokens,
    counts_exactly,
    estimate_tokens,
)

TEXT = "The invoice for March lists twelve items; the total is 4,310.50 EUR.\n" * 20


def test_estimate_is_ascii_over_3_5_plus_one_per_other_character() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("a" * 35) == 10 == round(35 / CHARS_PER_TOKEN)
    assert estimate_tokens("日本語のテキスト") == 8
    assert estimate_tokens("abcdefg" + "é") == 3  # 7 / 3.5 + 1


async def test_other_providers_get_the_estimate_without_a_request() -> None:
    with running("vllm") as server:
        provider = make_provider("vllm", server)
        try:
            assert not counts_exactly(provider)
            assert await count_tokens(provider, "sim-model", TEXT) == TokenCount(estimate_tokens(TEXT), False)
        finally:
            await provider.close()
        assert server.requests == []  # no request at all: the estimate needs none


async def test_llamacpp_without_tokenize_or_down_falls_back_to_the_estimate() -> None:
    expected = TokenCount(estimate_tokens(TEXT), exact=False)
    with running("llamacpp") as server:  # the simulator has no /tokenize: 404
        provider = make_provider("llamacpp", server)
        try:
            assert counts_exactly(provider)
            assert await count_tokens(provider, "sim-model", TEXT) == expected
        finally:
            await provider.close()
    refused = ProviderRegistry.create("llamacpp", base_url=f"http://127.0.0.1:{free_port()}/v1")
    try:
        assert await count_tokens(refused, "m", TEXT) == expected
    finally:
        await refused.close()


async def test_a_silent_server_costs_at_most_the_wait() -> None:
    async with hh.serve(hh.silent_after_headers("application/json")) as server:
        provider = ProviderRegistry.create("llamacpp", base_url=server.url + "/v1")
        try:
            start = time.monotonic()
            counted = await count_tokens(provider, "m", TEXT, wait_s=2)
            took = time.monotonic() - start
        finally:
            await provider.close()
    assert counted == TokenCount(estimate_tokens(TEXT), exact=False)
    assert server.paths == ["/tokenize"] and took < 10


# -- the real llama-server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    binary = binary_for_tests()
    model: Path = make_tiny_gguf(tmp_path_factory.mktemp("tokenize-model") / "tiny.gguf")
    server = start_llama_server(model, binary=binary, ctx=2048)
    yield server
    server.stop()


@pytest.mark.llamacpp
async def test_real_llama_server_counts_exactly(llama: LlamaServer) -> None:
    provider = ProviderRegistry.create("llamacpp", base_url=llama.base_url + "/v1")
    try:
        counted = await count_tokens(provider, "tiny", TEXT)
        twice = await count_tokens(provider, "tiny", TEXT + TEXT)
    finally:
        await provider.close()
    async with httpx.AsyncClient() as client:
        reply = await client.post(llama.base_url + "/tokenize", json={"content": TEXT})
    assert counted == TokenCount(len(reply.json()["tokens"]), exact=True)
    assert twice.exact and twice.tokens == 2 * counted.tokens  # the text is whole lines
    assert counted.tokens != estimate_tokens(TEXT)  # the model's byte-level vocabulary, not the rule
