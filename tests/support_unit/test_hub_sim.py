"""The Hub simulator is what ``huggingface_hub`` expects: its own client searches, reads file
metadata (sizes, LFS sha256), downloads (following the LFS redirect, checking the sha256) and
meets the gated-repo error, all against ``tests/servers/hub.py`` on 127.0.0.1."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers.hub import HubFile, HubRepo, HubServer
from tests.support.wine_gaps import NO_SYMLINKS, wine_gap

huggingface_hub = pytest.importorskip("huggingface_hub")

PAYLOAD = bytes(range(256)) * 400  # 100 KiB


@pytest.fixture
def hub() -> Iterator[HubServer]:
    repos = [
        HubRepo("bartowski/Qwen3-8B-GGUF", [HubFile("Qwen3-8B-Q4_K_M.gguf", PAYLOAD),
                                            HubFile("README.md", b"# card", lfs=False)],
                downloads=900, likes=10),
        HubRepo("unsloth/Qwen3-8B-GGUF", [HubFile("Qwen3-8B-Q8_0.gguf", PAYLOAD[:5000])],
                downloads=1200, likes=3),
        HubRepo("meta/Gated-GGUF", [HubFile("gated.gguf", b"secret" * 10)], gated="manual"),
    ]
    with HubServer(repos) as server:
        yield server


def test_search_sort_and_author_through_the_official_client(hub: HubServer) -> None:
    api = huggingface_hub.HfApi(endpoint=hub.url, token=False)
    found = [m.id for m in api.list_models(search="qwen3", filter="gguf", sort="downloads", limit=10)]
    assert found == ["unsloth/Qwen3-8B-GGUF", "bartowski/Qwen3-8B-GGUF"]
    assert [m.id for m in api.list_models(author="bartowski")] == ["bartowski/Qwen3-8B-GGUF"]
    liked = list(api.list_models(search="qwen3", sort="likes", limit=1))
    assert liked[0].id == "bartowski/Qwen3-8B-GGUF" and liked[0].likes == 10


def test_file_metadata_carries_size_and_lfs_sha256(hub: HubServer) -> None:
    api = huggingface_hub.HfApi(endpoint=hub.url, token=False)
    info = api.model_info("bartowski/Qwen3-8B-GGUF", files_metadata=True)
    by_name = {s.rfilename: s for s in info.siblings or []}
    gguf = by_name["Qwen3-8B-Q4_K_M.gguf"]
    assert gguf.size == len(PAYLOAD)
    assert gguf.lfs is not None and gguf.lfs.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert by_name["README.md"].lfs is None
    tree = {f.path: f for f in api.list_repo_tree("bartowski/Qwen3-8B-GGUF")}
    assert tree["Qwen3-8B-Q4_K_M.gguf"].lfs.sha256 == hashlib.sha256(PAYLOAD).hexdigest()  # type: ignore[union-attr]


# huggingface_hub's cache links snapshots/<rev>/<file> to blobs/<sha256> where it may make links.
@wine_gap(NO_SYMLINKS)
def test_official_download_follows_the_lfs_redirect(hub: HubServer, tmp_path: Path) -> None:
    path = huggingface_hub.hf_hub_download("bartowski/Qwen3-8B-GGUF", "Qwen3-8B-Q4_K_M.gguf",
                                           endpoint=hub.url, cache_dir=tmp_path, token=False)
    assert Path(path).read_bytes() == PAYLOAD
    assert hub.bytes_sent["Qwen3-8B-Q4_K_M.gguf"] == len(PAYLOAD)


@wine_gap(NO_SYMLINKS)
def test_gated_repo_needs_the_token(hub: HubServer, tmp_path: Path) -> None:
    with pytest.raises(huggingface_hub.errors.GatedRepoError):
        huggingface_hub.hf_hub_download("meta/Gated-GGUF", "gated.gguf", endpoint=hub.url,
                                        cache_dir=tmp_path / "a", token=False)
    path = huggingface_hub.hf_hub_download("meta/Gated-GGUF", "gated.gguf", endpoint=hub.url,
                                           cache_dir=tmp_path / "b", token=hub.token)
    assert Path(path).read_bytes() == b"secret" * 10


def test_ranges_drops_and_corruption(hub: HubServer) -> None:
    url = f"{hub.url}/bartowski/Qwen3-8B-GGUF/resolve/main/Qwen3-8B-Q4_K_M.gguf"
    with httpx.Client(follow_redirects=True) as client:
        part = client.get(url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == PAYLOAD[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(PAYLOAD)}"
        assert client.get(url, headers={"Range": f"bytes={len(PAYLOAD)}-"}).status_code == 416
        hub.drop_next(1000)
        with pytest.raises(httpx.HTTPError):
            client.get(url)
        hub.corrupt.add("Qwen3-8B-Q4_K_M.gguf")
        body = client.get(url).content
        assert len(body) == len(PAYLOAD) and body != PAYLOAD
