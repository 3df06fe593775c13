"""``victor-gui models list|download`` as a real subprocess (HOME and XDG folders in tmp_path)
against the Hub simulator through ``HF_ENDPOINT``."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.hub import HubFile, HubRepo, HubServer
from tests.services.chat_cli_support import Home

REPO = "bartowski/Tiny-GGUF"
PAYLOAD = os.urandom(300_000)


@pytest.fixture
def hub() -> Iterator[HubServer]:
    repos = [HubRepo(REPO, [HubFile("Tiny-Q4_K_M.gguf", PAYLOAD),
                            HubFile("Bad-Q8_0.gguf", PAYLOAD[:50_000])]),
             HubRepo("meta/Gated-GGUF", [HubFile("gated.gguf", b"g" * 1000)], gated="manual")]
    with HubServer(repos) as server:
        yield server


def env(hub: HubServer) -> dict[str, str]:
    """The simulator as the Hub, and no other app's cache from the developer's environment."""
    return {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": "", "HF_HOME": "", "LLAMA_CACHE": "",
            "XDG_CACHE_HOME": ""}


def test_download_then_list(home: Home, hub: HubServer, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    home.write_settings({"model_folders": {"folders": [str(folder)]}})
    hub.drop_next(100_000)  # a dropped connection on the way: resumed by range
    run = home.run("models", "download", f"hf:{REPO}/Tiny-Q4_K_M.gguf", env=env(hub))
    assert run.returncode == 0, run.stderr
    dest = folder / "bartowski" / "Tiny-GGUF" / "Tiny-Q4_K_M.gguf"
    assert dest.read_bytes() == PAYLOAD and run.stdout.strip() == str(dest)
    assert "sha256 verified" in run.stderr and "downloading" in run.stderr  # progress on stderr
    assert hub.bytes_sent["Tiny-Q4_K_M.gguf"] == len(PAYLOAD)
    # Again: already here, nothing fetched.
    again = home.run("models", "download", f"hf:{REPO}/Tiny-Q4_K_M.gguf", env=env(hub))
    assert again.returncode == 0 and f"Already have it at {dest}" in again.stderr
    assert hub.bytes_sent["Tiny-Q4_K_M.gguf"] == len(PAYLOAD)
    listed = home.run("models", "list", "--json", env=env(hub))
    assert listed.returncode == 0, listed.stderr
    [model] = json.loads(listed.stdout)["models"]
    assert model == {"path": str(dest), "size": len(PAYLOAD), "library": "Folder", "repo_id": REPO,
                     "file": "Tiny-Q4_K_M.gguf", "sha256": None}
    plain = home.run("models", "list", env=env(hub))
    assert f"{REPO}/Tiny-Q4_K_M.gguf" in plain.stdout


def test_failures_exit_non_zero(home: Home, hub: HubServer, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    hub.corrupt.add("Bad-Q8_0.gguf")
    bad = home.run("models", "download", f"hf:{REPO}/Bad-Q8_0.gguf", "--folder", str(folder), "--json",
                   env=env(hub))
    assert bad.returncode == 1 and "did not match the Hub's checksum" in bad.stderr
    result = json.loads(bad.stdout)
    assert result["status"] == "error" and result["jobs"][0]["reason"] == "checksum"
    assert not (folder / "bartowski" / "Tiny-GGUF" / "Bad-Q8_0.gguf").exists()
    assert not (folder / "bartowski" / "Tiny-GGUF" / "Bad-Q8_0.gguf.part").exists()
    gated = home.run("models", "download", "hf:meta/Gated-GGUF/gated.gguf", "--folder", str(folder),
                     env=env(hub))
    assert gated.returncode == 3 and "Settings → API keys" in gated.stderr
    opened = home.run("models", "download", "hf:meta/Gated-GGUF/gated.gguf", "--folder", str(folder),
                      env={**env(hub), "HF_TOKEN": hub.token})
    assert opened.returncode == 0, opened.stderr
    digest = hashlib.sha256((folder / "meta" / "Gated-GGUF" / "gated.gguf").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(b"g" * 1000).hexdigest()
    missing = home.run("models", "download", f"hf:{REPO}/Nope.gguf", env=env(hub))
    assert missing.returncode == 5 and "Nope.gguf is not in" in missing.stderr
    usage = home.run("models", "download", "bartowski/Tiny-GGUF", env=env(hub))
    assert usage.returncode == 2
