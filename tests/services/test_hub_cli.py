"""``victor-gui hub search`` and ``hub show`` as real subprocesses against the Hub simulator
(``HF_ENDPOINT``), and in-process with the token in a (memory) keyring for a gated repository."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest

from tests.config.memory_keyring import MemoryKeyring, use_backend
from tests.local_servers.test_cli import run_cli
from tests.servers.base import free_port
from tests.servers.hub import HubServer
from tests.support.hub_repos import GATED, LLAMA, QWEN
from victor_gui.__main__ import main
from victor_gui.config.secrets import KeyringStore
from victor_gui.providers.keys import set_secret_store

pytest.importorskip("huggingface_hub")
MiB = 1 << 20
VERDICTS = {"full", "partial", "cpu", "no_fit"}


def test_search_prints_repositories_by_downloads_likes_or_date(hub: HubServer) -> None:
    env = {"HF_ENDPOINT": hub.url}
    done = run_cli("hub", "search", "qwen3", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "DOWNLOADS", "LIKES", "UPDATED"]
    assert [line.split()[0] for line in lines[1:]] == ["unsloth/Qwen3-8B-GGUF", QWEN]
    assert "120,000" in lines[1]
    liked = run_cli("hub", "search", "--sort", "likes", "--json", env=env)
    assert [r["id"] for r in json.loads(liked.stdout)] == [LLAMA, QWEN, "unsloth/Qwen3-8B-GGUF", GATED]
    mine = json.loads(run_cli("hub", "search", "--author", "meta-llama", "--json", env=env).stdout)
    assert [(r["id"], r["gated"]) for r in mine] == [(GATED, True)]


def test_show_lists_quants_with_size_and_a_verdict_from_headers(hub: HubServer) -> None:
    done = run_cli("hub", "show", QWEN, "--ctx", "16384", "--json", env={"HF_ENDPOINT": hub.url})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["n_ctx"] == 16384 and out["gated"] is False
    assert [q["quant"] for q in out["quants"]] == ["Q4_K_M", "Q8_0", "F16"]
    assert all(q["verdict"] in VERDICTS and q["error"] is None for q in out["quants"])
    assert out["quants"][0]["size"] == hub.repos[QWEN].files[0].size
    assert [v["name"] for v in out["vision"]] == ["mmproj-Qwen3-8B-f16.gguf"]
    assert all(0 < hub.bytes_sent[q["files"][0]] <= MiB for q in out["quants"])  # headers only
    table = run_cli("hub", "show", LLAMA, env={"HF_ENDPOINT": hub.url})
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("Q4_K_M"))
    assert "39.60 GiB" in row and "(3 parts)" in row


def test_errors_exit_non_zero_with_the_sentence(hub: HubServer) -> None:
    gated = run_cli("hub", "show", GATED, env={"HF_ENDPOINT": hub.url})
    assert gated.returncode == 3
    assert "Settings → API keys" in gated.stderr and f"{hub.url}/{GATED}" in gated.stderr
    missing = run_cli("hub", "show", "nobody/nothing", "--json", env={"HF_ENDPOINT": hub.url})
    assert missing.returncode == 5 and json.loads(missing.stdout)["reason"] == "model_not_found"
    offline = run_cli("hub", "search", "qwen", env={"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"})
    assert offline.returncode == 4 and "not reachable" in offline.stderr


def test_show_uses_the_token_saved_in_the_keyring(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    for var in ("HF_TOKEN", "HF_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    backend = MemoryKeyring()
    try:
        with use_backend(backend):
            KeyringStore().set_key("huggingface", hub.token)
            out = io.StringIO()
            with redirect_stdout(out):
                code = main(["hub", "show", GATED, "--json"])
    finally:
        set_secret_store(None)
    assert code == 0
    (quant,) = json.loads(out.getvalue())["quants"]
    assert quant["verdict"] in VERDICTS and quant["error"] is None
    assert hub.token not in out.getvalue()
