"""Which embedding model retrieval uses: the setting, else the first local server that lists an
embedding model (Ollama's nomic-embed-text preferred), else the chat's own llama-server, else a
sentence saying what to install. Real HTTP against the simulators; the setting through a real
settings file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.servers import llamacpp, lmstudio, ollama
from tests.servers.base import SimServer
from victor_gui.config.settings import AttachmentSettings, EmbeddingChoice
from victor_gui.errors import EmbeddingServerError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.services.embedding_choice import choose_embedder, embedder_source, setting_of
from victor_gui.services.settings_service import SettingsService


@pytest.fixture
def oll() -> Iterator[SimServer]:
    with ollama.make_server(models=["llama3.2", "all-minilm", "nomic-embed-text"]) as srv:
        yield srv


@pytest.fixture
def lms() -> Iterator[SimServer]:
    with lmstudio.make_server(models=["qwen3-8b", "text-embedding-nomic-embed-text-v1.5"]) as srv:
        yield srv


@pytest.fixture
async def closing() -> AsyncIterator[list[BaseProvider]]:
    made: list[BaseProvider] = []
    yield made
    for p in made:
        await p.close()


def make(closing: list[BaseProvider], name: str, url: str) -> BaseProvider:
    provider = ProviderRegistry.create(name, base_url=url)
    closing.append(provider)
    return provider


async def test_ollama_nomic_is_the_local_default(oll: SimServer, lms: SimServer,
                                                 closing: list[BaseProvider]) -> None:
    providers = [make(closing, "ollama", oll.url), make(closing, "lmstudio", lms.url + "/v1")]
    pick = await choose_embedder(None, providers)
    assert (pick.embedder.model_id, pick.why) == ("ollama/nomic-embed-text", "local default")


async def test_lm_studio_when_ollama_has_none(lms: SimServer, closing: list[BaseProvider]) -> None:
    with ollama.make_server(models=["llama3.2"]) as bare:
        providers = [make(closing, "ollama", bare.url), make(closing, "lmstudio", lms.url + "/v1")]
        pick = await choose_embedder(None, providers)
    assert pick.embedder.model_id == "lmstudio/text-embedding-nomic-embed-text-v1.5"


async def test_chat_llama_server_is_the_last_local_resort(closing: list[BaseProvider]) -> None:
    with llamacpp.make_server(model="qwen2.5-7b") as srv:
        chat = make(closing, "llamacpp", srv.url + "/v1")
        pick = await choose_embedder(None, [make(closing, "ollama", "http://127.0.0.1:9")], chat)
    assert (pick.embedder.model_id, pick.why) == ("llamacpp/qwen2.5-7b", "chat's llama-server")


async def test_nothing_found_says_what_to_install(closing: list[BaseProvider]) -> None:
    with pytest.raises(EmbeddingServerError, match="ollama pull nomic-embed-text"):
        await choose_embedder(None, [make(closing, "ollama", "http://127.0.0.1:9")])


async def test_the_setting_wins_and_round_trips_the_settings_file(
        tmp_path: Path, oll: SimServer, lms: SimServer, closing: list[BaseProvider]) -> None:
    service = SettingsService(tmp_path / "settings.yaml")
    await service.load()
    assert setting_of(service.settings.attachments) is None  # the default: pick a local one
    await service.update(attachments=AttachmentSettings(
        embedding=EmbeddingChoice(provider="lmstudio", model="text-embedding-nomic-embed-text-v1.5")))
    assert "provider: lmstudio" in (tmp_path / "settings.yaml").read_text()
    reread = SettingsService(tmp_path / "settings.yaml")
    settings = (await reread.load()).attachments
    providers = [make(closing, "ollama", oll.url), make(closing, "lmstudio", lms.url + "/v1")]
    embedder = await embedder_source(settings, providers)()
    assert embedder.model_id == "lmstudio/text-embedding-nomic-embed-text-v1.5"
    assert len((await embedder.embed(["a"]))[0]) > 0
    with pytest.raises(EmbeddingServerError, match="is not configured"):
        await choose_embedder(("mistral", "mistral-embed"), providers)
