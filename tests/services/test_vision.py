"""services.vision against the llama.cpp, Ollama and LM Studio simulators (real HTTP on
127.0.0.1): the server's word first, the capability table next, bounded in time, never raising;
the alternatives a refusal offers, and its sentence."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.providers.ollama_support import PLAIN
from tests.providers.ollama_support import make_provider as ollama_provider
from tests.providers.openai_sims import make_provider, running
from tests.servers.ollama import make_server as ollama_server
from tests.support.wine_gaps import UNDER_WINE
from victor_gui.errors import ModelTakesNoImagesError
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.services.provider_choices import ProviderChoice, ProviderPool
from victor_gui.services.vision import (
    ImageCandidate,
    check_images,
    configured_image_candidates,
    models_that_take_images,
    refusal_for,
    refuse_images,
)

LLAVA = {"name": "llava:7b", "capabilities": ("completion", "vision")}
EMBED = {"name": "nomic-embed-text", "capabilities": ("embedding",)}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


async def test_llamacpp_props_modalities_decide() -> None:
    """sim-model is in no table: only /props can say; with and without a projector."""
    for projector in (True, False):
        with running("llamacpp", model="sim-model", vision=projector) as server:
            async with make_provider("llamacpp", server) as provider:
                assert await check_images(provider, "sim-model") is projector
            [props] = [r for r in server.requests if r.path.startswith("/props")]
            assert props.method == "GET" and props.path == "/props?model=sim-model"
            assert server.chat_requests() == []


async def test_llamacpp_server_beats_the_table() -> None:
    """The table says qwen2.5-vl takes images; a llama-server without --mmproj does not."""
    with running("llamacpp", model="qwen2.5-vl-7b", vision=False) as server:
        async with make_provider("llamacpp", server) as provider:
            assert await check_images(provider, "qwen2.5-vl-7b") is False


async def test_server_down_falls_back_to_the_table_or_unknown() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    provider = ProviderRegistry.create("llamacpp", base_url=url, max_retries=0)
    async with provider:
        assert await check_images(provider, "qwen2.5-vl-7b") is True  # table: qwen2.5-vl*
        assert await check_images(provider, "qwen2.5-7b-instruct") is False  # table: qwen2.5*
        assert await check_images(provider, "sim-model") is None  # no table entry: cannot tell


async def test_a_silent_server_is_bounded(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}/v1"
    provider = ProviderRegistry.create("llamacpp", base_url=url, max_retries=0)
    async with provider:
        started = time.monotonic()
        assert await check_images(provider, "sim-model", timeout_s=0.5) is None
        assert time.monotonic() - started < 2.0


async def test_ollama_show_capabilities() -> None:
    with ollama_server(models=[PLAIN, LLAVA]) as server:
        async with ollama_provider(server.url) as provider:
            assert await check_images(provider, "llava:7b") is True
            assert await check_images(provider, "plain") is False
            assert await check_images(provider, "sim-model") is True  # the simulator's default: all
            # Not on this server: /api/show answers 404; the table knows llava, not "mystery".
            assert await check_images(provider, "llava:13b") is True
            assert await check_images(provider, "mystery") is None
        shows = [r.body["model"] for r in server.requests if r.path == "/api/show"]
        assert shows[:3] == ["llava:7b", "plain", "sim-model"]


@pytest.mark.parametrize("rest_v1", [True, False])
async def test_lmstudio_v1_capabilities_or_v0_type(rest_v1: bool) -> None:
    models = ["qwen2.5-vl-7b-instruct", "mystery-7b"]
    with running("lmstudio", model=models[0], models=models, rest_v1=rest_v1) as server:
        async with make_provider("lmstudio", server) as provider:
            assert await check_images(provider, "qwen2.5-vl-7b-instruct") is True
            assert await check_images(provider, "mystery-7b") is False  # type llm / vision false
        paths = [r.path for r in server.requests]
        assert "/api/v1/models" in paths
        assert ("/api/v0/models" in paths) is not rest_v1  # v1 answered, so v0 was not asked


async def test_forced_setting_and_cloud_defaults() -> None:
    with running("llamacpp", model="sim-model", vision=False) as server:
        async with make_provider("llamacpp", server, vision=True) as provider:
            assert await check_images(provider, "sim-model") is True
        assert server.requests == []  # the user's setting: nothing asked
    anthropic = ProviderRegistry.create("anthropic", api_key="sk-ant-not-used-000000",
                                        base_url="http://127.0.0.1:9")
    async with anthropic:
        assert await check_images(anthropic, "claude-sonnet-4-5") is True  # table, no request


async def test_alternatives_across_servers_bounded(silent_port: int) -> None:
    with (
        running("llamacpp", model="sim-model", vision=True) as vision_llama,
        running("llamacpp", model="sim-model", vision=False) as text_llama,
        ollama_server(models=[PLAIN, LLAVA]) as ollama,
    ):
        seeing = make_provider("llamacpp", vision_llama)
        blind = make_provider("llamacpp", text_llama)
        url = f"http://127.0.0.1:{silent_port}/v1"
        silent = ProviderRegistry.create("llamacpp", base_url=url, max_retries=0)
        olla = ollama_provider(ollama.url)
        candidates = [
            ImageCandidate("Ollama/plain", olla, "plain"),
            ImageCandidate("llama.cpp A/sim-model", seeing, "sim-model"),
            ImageCandidate("llama.cpp B/sim-model", blind, "sim-model"),
            ImageCandidate("silent/sim-model", silent, "sim-model"),
            ImageCandidate("Ollama/llava:7b", olla, "llava:7b", listed=("completion", "vision")),
            ImageCandidate("Ollama/llava:7b", olla, "llava:7b"),  # the same label once
        ]
        # Under a loaded Wine one answering server's probe took more than 1.5 s: the bounds stretch.
        stretch = 3.0 if UNDER_WINE else 1.0
        started = time.monotonic()
        found = await models_that_take_images(candidates, limit_s=4.0 * stretch, per_model_s=1.5 * stretch)
        assert time.monotonic() - started < 4.5 * stretch  # the silent server costs its 1.5 s, not more
        assert found == ["llama.cpp A/sim-model", "Ollama/llava:7b"]
        assert [r.body["model"] for r in ollama.requests if r.path == "/api/show"] == ["plain"]
        for provider in (seeing, blind, silent, olla):
            await provider.close()


async def test_configured_candidates_from_the_choices_then_the_refusal() -> None:
    """From the picker's choices to the sentence: list each server's models, keep the ones that
    take images, leave out the model just refused."""
    with (
        running("llamacpp", model="sim-model", vision=True) as llama,
        ollama_server(models=[PLAIN, LLAVA, EMBED]) as ollama,
    ):
        choices = [
            ProviderChoice("ollama", "Ollama", True, False, None, ollama.url),
            ProviderChoice("llamacpp", "llama.cpp", True, False, None, llama.url + "/v1"),
            ProviderChoice("anthropic", "Anthropic", False, True, None, "http://127.0.0.1:9"),  # no key
        ]
        pool = ProviderPool()
        try:
            candidates = await configured_image_candidates(pool, choices, exclude=("ollama", "plain"))
            labels = [c.label for c in candidates]
            assert labels == ["Ollama/sim-model:latest", "Ollama/llava:7b", "llama.cpp/sim-model"]
            assert not any(label.startswith("Anthropic/") for label in labels)
            found = await models_that_take_images(candidates)
        finally:
            await pool.close()
    assert found == ["Ollama/sim-model:latest", "Ollama/llava:7b", "llama.cpp/sim-model"]
    error = refuse_images("Ollama", "plain", found)
    assert isinstance(error, ModelTakesNoImagesError)
    assert error.alternatives == tuple(found)
    assert str(error) == (
        "plain on Ollama does not take images, so the message was not sent; models that do: "
        "Ollama/sim-model:latest, Ollama/llava:7b, llama.cpp/sim-model. Pick one, or remove the image."
    )


def test_refusal_without_alternatives_and_with_many() -> None:
    none = refuse_images("llama.cpp", "qwen2.5-7b", [])
    assert none.alternatives == ()
    assert "qwen2.5-7b on llama.cpp does not take images" in str(none)
    assert "none of the configured models does" in str(none) and "--mmproj" in str(none)
    many = refuse_images("Ollama", "plain", [f"Ollama/m{i}" for i in range(9)] + ["Ollama/m0"])
    assert len(many.alternatives) == 9
    assert "Ollama/m5 and 3 more." in str(many)


async def test_refusal_for_the_send_path() -> None:
    """One call before sending: None for a model that takes images, else the refusal with the
    configured alternatives (the refused model itself left out)."""
    with (
        running("llamacpp", model="sim-model", vision=False) as blind,
        ollama_server(models=[PLAIN, LLAVA]) as ollama,
    ):
        choices = [ProviderChoice("ollama", "Ollama", True, False, None, ollama.url),
                   ProviderChoice("llamacpp", "llama.cpp", True, False, None, blind.url + "/v1")]
        pool = ProviderPool()
        try:
            seeing = pool.get(choices[0])
            assert await refusal_for(seeing, "llava:7b", provider_label="Ollama", pool=pool,
                                     choices=choices, choice_name="ollama") is None
            error = await refusal_for(pool.get(choices[1]), "sim-model", provider_label="llama.cpp",
                                      pool=pool, choices=choices, choice_name="llamacpp")
        finally:
            await pool.close()
        assert blind.chat_requests() == [] and ollama.chat_requests() == []
    assert isinstance(error, ModelTakesNoImagesError)
    assert error.alternatives == ("Ollama/sim-model:latest", "Ollama/llava:7b")
    assert str(error).startswith("sim-model on llama.cpp does not take images, so the message was not sent")
