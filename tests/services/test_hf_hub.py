"""The Hub listing service against the Hub simulator on 127.0.0.1 (through huggingface_hub):
search with sort and author, quants grouped from file names (split parts as one model, mmproj as
the vision add-on), and each failure as a typed error whose sentence the window shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.memory_keyring import MemoryKeyring, use_backend
from tests.servers.base import free_port
from tests.servers.hub import HubHandler, HubRepo, HubServer
from tests.support.hub_repos import GATED, LLAMA, MACHINE, QWEN
from victor_gui.config.secrets import KeyringStore, install_keyring_store
from victor_gui.errors import (
    InvalidResponseError,
    MissingAPIKeyError,
    ModelNotFoundError,
    ProviderAuthError,
    ProviderConnectionError,
)
from victor_gui.services.hf_fit import HubFitter
from victor_gui.services.hf_hub import FilePart, HubClient, group_gguf_files, parse_quant

pytest.importorskip("huggingface_hub")


@pytest.mark.parametrize(("name", "quant"), [
    ("Qwen3-8B-Q4_K_M.gguf", "Q4_K_M"), ("Meta-Llama-3-8B-Instruct.Q8_0.gguf", "Q8_0"),
    ("gemma-3-27b-it-IQ3_XXS.gguf", "IQ3_XXS"), ("Qwen3-8B-BF16.gguf", "BF16"), ("model-f16.gguf", "F16"),
    ("gpt-oss-20b-MXFP4.gguf", "MXFP4"), ("Qwen3-8B-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"),
    ("Q4_K_M/Qwen3-235B-A22B-Q4_K_M-00001-of-00003.gguf", "Q4_K_M"), ("phi-4-q6_k.gguf", "Q6_K"),
    ("BitNet-b1.58-TQ1_0.gguf", "TQ1_0"), ("Qwen3-8B.gguf", ""),
])
def test_the_quant_is_read_from_the_file_name(name: str, quant: str) -> None:
    assert parse_quant(name) == quant


def test_split_parts_are_one_model_and_mmproj_is_the_vision_add_on() -> None:
    files = [FilePart(f"Q8/big-Q8_0-0000{i}-of-00003.gguf", 10, f"sha{i}") for i in (2, 1, 3)]
    files += [FilePart("big-Q4_K_M-00001-of-00002.gguf", 5), FilePart("mmproj-big-f16.gguf", 3),
              FilePart("big-IQ2_XS.gguf", 4), FilePart("README.md", 1)]
    models, vision, notes = group_gguf_files(files)
    assert [(m.name, m.quant, m.size, m.complete) for m in models] == [
        ("big-IQ2_XS.gguf", "IQ2_XS", 4, True), ("big-Q4_K_M.gguf", "Q4_K_M", 5, False),
        ("big-Q8_0.gguf", "Q8_0", 30, True)]
    assert models[2].paths == [f"Q8/big-Q8_0-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert models[2].first.sha256 == "sha1"
    assert [(v.name, v.quant, v.vision) for v in vision] == [("mmproj-big-f16.gguf", "F16", True)]
    assert notes == ["big-Q4_K_M.gguf: only 1 of its 2 parts are listed"]


async def test_search_sorts_and_filters_by_author(hub: HubServer) -> None:
    client = HubClient(hub.url, env={})
    assert [r.id for r in await client.search("qwen3")] == ["unsloth/Qwen3-8B-GGUF", QWEN]
    liked = await client.search("", sort="likes")
    assert [r.id for r in liked] == [LLAMA, QWEN, "unsloth/Qwen3-8B-GGUF", GATED]
    assert liked[0].likes == 400 and liked[0].downloads == 45_000
    assert [r.id for r in await client.search("", sort="updated", limit=2)] == ["unsloth/Qwen3-8B-GGUF", QWEN]
    assert [r.id for r in await client.search("", author="meta-llama")] == [GATED]
    assert (await client.search("", author="meta-llama"))[0].gated is True


async def test_repo_files_group_quants_with_sizes_and_lfs_sha256(hub: HubServer) -> None:
    client = HubClient(hub.url, env={})
    qwen = await client.repo_files(QWEN)
    assert [q.quant for q in qwen.quants] == ["Q4_K_M", "Q8_0", "F16"]
    source = hub.repos[QWEN].file("Qwen3-8B-Q8_0.gguf")
    assert source is not None
    assert qwen.quants[1].size == source.size and qwen.quants[1].first.sha256 == source.digest()
    assert [v.name for v in qwen.vision] == ["mmproj-Qwen3-8B-f16.gguf"] and qwen.vision[0].size == 600 << 20
    llama = await client.repo_files(LLAMA)
    (split,) = llama.quants
    assert len(split.parts) == 3 and split.size == sum(f.size for f in hub.repos[LLAMA].files)
    assert split.name == "Llama-3.3-70B-Instruct-Q4_K_M.gguf" and not llama.gated
    assert (await client.repo_files(GATED)).gated is True


async def test_a_gated_repo_without_a_token_says_where_to_add_it(hub: HubServer) -> None:
    client = HubClient(hub.url, env={})
    repo = await client.repo_files(GATED)
    fitter = HubFitter(client)
    with pytest.raises(MissingAPIKeyError) as caught:
        await fitter.fit_repo(repo, MACHINE, 8192)
    await fitter.aclose()
    assert "Settings → API keys" in caught.value.message
    assert f"{hub.url}/{GATED}" in caught.value.message  # the page where the terms are accepted
    assert caught.value.provider == "huggingface"
    assert not any(hub.bytes_sent.values())  # nothing was fetched


async def test_the_token_comes_from_the_keyring_and_a_wrong_one_is_refused(hub: HubServer) -> None:
    with use_backend(MemoryKeyring()):
        store = install_keyring_store(KeyringStore())
        store.set_key("huggingface", hub.token)
        client = HubClient(hub.url, env={})
        repo = await client.repo_files(GATED)
        fitter = HubFitter(client)
        (fit,) = await fitter.fit_repo(repo, MACHINE, 8192)
        await fitter.aclose()
        assert fit.fit is not None and fit.fit.verdict == "full"
        store.set_key("huggingface", "hf_wrong")
        client = HubClient(hub.url, env={})
        fitter = HubFitter(client)
        with pytest.raises(ProviderAuthError) as caught:
            await fitter.fit_repo(repo, MACHINE, 8192)
        await fitter.aclose()
    assert "refused" in caught.value.message and "hf_wrong" not in caught.value.message


async def test_env_token_is_used_when_the_keyring_has_none(hub: HubServer) -> None:
    client = HubClient(hub.url, env={"HF_TOKEN": hub.token})
    fitter = HubFitter(client)
    (fit,) = await fitter.fit_repo(await client.repo_files(GATED), MACHINE, 8192)
    await fitter.aclose()
    assert fit.error is None and fit.fit is not None


async def test_an_unknown_repo_is_model_not_found(hub: HubServer) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        await HubClient(hub.url, env={}).repo_files("nobody/nothing-GGUF")
    assert "nobody/nothing-GGUF" in caught.value.message


async def test_offline_is_a_connection_error_with_a_sentence() -> None:
    client = HubClient(f"http://127.0.0.1:{free_port()}", env={})
    with pytest.raises(ProviderConnectionError) as caught:
        await client.search("qwen")
    assert "not reachable" in caught.value.message


class WrongShapes(HubHandler):
    """A Hub that answers the search with an object and the model info with a list."""

    def search(self, query: dict[str, list[str]]) -> None:
        self.send_json(200, {"models": "none"})

    def info(self, repo_id: str, query: dict[str, list[str]]) -> None:
        self.send_json(200, [1, 2, 3])


async def test_replies_of_the_wrong_shape_are_invalid_response(tmp_path: Path) -> None:
    server = HubServer([HubRepo("a/b")])
    server.RequestHandlerClass = WrongShapes
    with server:
        client = HubClient(server.url, env={})
        with pytest.raises(InvalidResponseError):
            await client.search("x")
        with pytest.raises(InvalidResponseError):
            await client.repo_files("a/b")
