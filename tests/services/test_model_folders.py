"""The model folders' scan over real files laid out as LM Studio, llama.cpp's cache and Hugging
Face's cache keep them, and the "already have it" match (repo+file+size, or sha256)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support.wine_gaps import NO_SYMLINKS, wine_gap
from victor_gui.config.settings import ModelFolderSettings, Settings
from victor_gui.services.model_folders import (
    HF_CACHE,
    LLAMA_CACHE,
    LMSTUDIO,
    ModelFolders,
    find_present,
    known_libraries,
    llama_cache_name,
)


class _Settings:
    def __init__(self, **model_folders: object) -> None:
        self.settings = Settings(model_folders=ModelFolderSettings.model_validate(model_folders))


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_libraries_follow_the_environment(tmp_path: Path) -> None:
    env = {"LLAMA_CACHE": str(tmp_path / "llama"), "HF_HOME": str(tmp_path / "hf")}
    libs = {lib.name + ":" + lib.layout: lib.path for lib in known_libraries(env, tmp_path)}
    assert libs[f"{LLAMA_CACHE}:flat"] == tmp_path / "llama"
    assert libs[f"{HF_CACHE}:hf-cache"] == tmp_path / "hf" / "hub"
    hub_cache = {"HF_HUB_CACHE": str(tmp_path / "hc"), "HF_HOME": str(tmp_path / "ignored")}
    hf = [lib.path for lib in known_libraries(hub_cache, tmp_path) if lib.name == HF_CACHE]
    assert hf == [tmp_path / "hc"]
    default = [lib.path for lib in known_libraries({}, tmp_path) if lib.name == LMSTUDIO]
    assert default == [tmp_path / ".lmstudio" / "models", tmp_path / ".cache" / "lm-studio" / "models"]


async def test_scan_reads_every_layout_and_finds_copies(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"XDG_CACHE_HOME": str(home / ".cache")}
    mine = put(tmp_path / "mine" / "unsloth" / "Qwen3-GGUF" / "Q4" / "Qwen3-Q4_K_M.gguf", b"a" * 100)
    put(tmp_path / "mine" / "notes.txt", b"not a model")
    lms = put(home / ".lmstudio" / "models" / "bartowski" / "Llama-GGUF" / "Llama-Q8_0.gguf", b"b" * 50)
    flat_name = llama_cache_name("ggml-org/Gemma-GGUF", "gemma-Q4_0.gguf")
    flat = put(home / ".cache" / "llama.cpp" / flat_name, b"c" * 70)
    # Hugging Face's cache where no symlink can be made (Windows without Developer Mode):
    # huggingface_hub moves the file itself into the snapshot, and no sha256 names it.
    repo = home / ".cache" / "huggingface" / "hub" / "models--Qwen--Qwen3-0.6B-GGUF"
    copy = put(repo / "snapshots" / "0123" / "Qwen3-0.6B-Q8_0.gguf", b"d" * 30)
    folders = ModelFolders(_Settings(folders=[str(tmp_path / "mine")]), env=env, home=home)
    models = {m.path: m for m in await folders.scan()}
    assert models[mine].repo_id == "unsloth/Qwen3-GGUF" and models[mine].file == "Q4/Qwen3-Q4_K_M.gguf"
    assert models[lms].library == LMSTUDIO and models[lms].repo_id == "bartowski/Llama-GGUF"
    assert models[flat].library == LLAMA_CACHE and models[flat].repo_id is None
    assert models[copy].library == HF_CACHE and models[copy].repo_id == "Qwen/Qwen3-0.6B-GGUF"
    assert models[copy].file == "Qwen3-0.6B-Q8_0.gguf" and models[copy].sha256 is None
    assert models[copy].size == 30
    assert len(models) == 4
    found = list(models.values())
    assert find_present(found, "unsloth/Qwen3-GGUF", "Q4/Qwen3-Q4_K_M.gguf", 100, None) == models[mine]
    # Another size: a different (or unfinished) file, not a copy.
    assert find_present(found, "unsloth/Qwen3-GGUF", "Q4/Qwen3-Q4_K_M.gguf", 99, None) is None
    assert find_present(found, "ggml-org/Gemma-GGUF", "gemma-Q4_0.gguf", 70, None) == models[flat]
    assert find_present(found, "Qwen/Qwen3-0.6B-GGUF", "Qwen3-0.6B-Q8_0.gguf", 30, "e" * 64) == models[copy]
    # Without reuse, only the user's folders are scanned.
    alone = ModelFolders(_Settings(folders=[str(tmp_path / "mine")], reuse_libraries=False),
                         env=env, home=home)
    assert [m.path for m in await alone.scan()] == [mine]


@wine_gap(NO_SYMLINKS)
async def test_a_hugging_face_cache_link_names_its_sha256(tmp_path: Path) -> None:
    """The layout huggingface_hub makes wherever it may make links (Linux, macOS, Windows with
    Developer Mode): ``snapshots/<rev>/<file>`` links to ``blobs/<sha256>``, relative as it
    writes them, so a copy under another name is found by its sha256 without reading it."""
    home = tmp_path / "home"
    blob_data = b"d" * 30
    sha = hashlib.sha256(blob_data).hexdigest()
    repo = home / ".cache" / "huggingface" / "hub" / "models--Qwen--Qwen3-0.6B-GGUF"
    put(repo / "blobs" / sha, blob_data)
    link = repo / "snapshots" / "0123" / "Qwen3-0.6B-Q8_0.gguf"
    link.parent.mkdir(parents=True)
    link.symlink_to(Path("..") / ".." / "blobs" / sha)
    folders = ModelFolders(_Settings(), env={"XDG_CACHE_HOME": str(home / ".cache")}, home=home)
    models = {m.path: m for m in await folders.scan()}
    assert list(models) == [link]
    assert models[link].repo_id == "Qwen/Qwen3-0.6B-GGUF" and models[link].sha256 == sha
    assert models[link].size == 30
    assert find_present(list(models.values()), "else/Where", "renamed.gguf", 30, sha) == models[link]
