"""``victor-gui chat`` as a subprocess against a REAL llama-server (the ``llamacpp`` tier):
an endpoint configured only in settings.yaml, and a profile whose first target is down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.servers.base import free_port
from tests.services.chat_cli_support import Home
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llamacpp


def test_chat_endpoint_from_settings_only(tmp_path: Path, llama_server: LlamaServer) -> None:
    home = Home(tmp_path)
    endpoint = {"name": "tiny-box", "kind": "llamacpp", "url": llama_server.base_url}
    home.write_settings({"endpoints": [endpoint]})
    result = home.run("chat", "--endpoint", "tiny-box", "--max-tokens", "12", "--temperature", "0",
                      "Say hello.", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()  # the tiny model's words, streamed
    ((conv, messages),) = home.stored()
    user, reply = messages
    assert (user.role, user.content) == ("user", "Say hello.")
    assert (reply.role, reply.status, reply.provider) == ("assistant", "complete", "llamacpp")
    assert result.stdout == reply.content + ("" if reply.content.endswith("\n") else "\n")
    assert reply.endpoint and reply.endpoint.startswith(llama_server.base_url)
    assert reply.completion_tokens and reply.completion_tokens <= 12
    assert reply.cost == 0.0 and conv.title == "Say hello."


def test_chat_profile_falls_back_to_the_real_server(tmp_path: Path, llama_server: LlamaServer) -> None:
    home = Home(tmp_path)
    dead_port = free_port()
    home.write_victor_profiles(
        "profiles:\n"
        "  local-chain:\n"
        "    provider: llamacpp\n"
        "    model: tiny\n"
        f"    base_url: http://127.0.0.1:{dead_port}/v1\n"
        "    max_tokens: 8\n"
        "    fallback:\n"
        "      - provider: llamacpp\n"
        f"        base_url: {llama_server.base_url}/v1\n")
    result = home.run("chat", "--profile", "local-chain", "--json", "Hello", timeout=120)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["text"] and payload["provider"] == "llamacpp"
    assert [(f["error"], f["endpoint"]) for f in payload["fallback"]] == [
        ("connection", f"http://127.0.0.1:{dead_port}/v1"), (None, f"{llama_server.base_url}/v1")]
    ((conv, messages),) = home.stored()
    assert payload["conversation_id"] == conv.id
    user, reply, note = messages
    assert user.content == "Hello" and reply.content == payload["text"]
    assert reply.meta and reply.meta["fallback"]["reason"] == "connection"
    assert note.role == "note" and note.meta and note.meta["kind"] == "failover"
    assert note.content == (f"llama.cpp · tiny at 127.0.0.1:{dead_port} did not answer (connection refused); "
                            f"llama.cpp · {reply.model} at 127.0.0.1:{llama_server.port} answered.")
