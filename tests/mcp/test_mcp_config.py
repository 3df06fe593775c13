"""mcp.json: reading it (bounded, bad entries named without losing the good ones), importing
another client's file, and secrets kept in the keyring, never in the file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.config.memory_keyring import MemoryKeyring, use_backend
from victor_gui.config.secrets import KeyringStore
from victor_gui.errors import ConfigError
from victor_gui.services.mcp_config import (
    HttpServerConfig,
    StdioServerConfig,
    import_mcp_json,
    load_mcp_config,
    resolve_secrets,
)

TOKEN = "sk-test-0123456789abcdefghijklmnop"


@pytest.fixture
def keyring_store() -> Iterator[tuple[KeyringStore, MemoryKeyring]]:
    backend = MemoryKeyring()
    with use_backend(backend):
        yield KeyringStore(), backend


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_reads_stdio_and_http_servers_and_names_bad_entries(tmp_path: Path) -> None:
    path = write(tmp_path / "mcp.json", {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "server-files", "/tmp"], "env": {"DEBUG": "1"},
                  "cwd": "/tmp"},
        "web": {"url": "https://example.com/mcp", "headers": {"X-Team": "a"},
                "secret_headers": ["Authorization"]},
        "broken": {"args": ["x"]},
        "both": {"command": "x", "url": "http://x"},
        "badargs": {"command": "x", "args": "not a list"},
    }})
    config = load_mcp_config(path)
    assert list(config.servers) == ["files", "web"]
    files = config.servers["files"]
    assert isinstance(files, StdioServerConfig)
    assert (files.command, files.args, dict(files.env), files.cwd) == (
        "npx", ("-y", "server-files", "/tmp"), {"DEBUG": "1"}, "/tmp")
    web = config.servers["web"]
    assert isinstance(web, HttpServerConfig) and web.secret_headers == ("Authorization",)
    assert set(config.problems) == {"broken", "both", "badargs"}
    assert "server 'broken': it has neither 'command'" in str(config.problems["broken"])
    badargs = str(config.problems["badargs"])
    assert str(path) in badargs and "'args' must be a list" in badargs


def test_missing_file_is_empty_and_bad_files_raise(tmp_path: Path) -> None:
    assert load_mcp_config(tmp_path / "none.json").servers == {}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_mcp_config(bad)
    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * (2 << 20))
    with pytest.raises(ConfigError, match="larger than"):
        load_mcp_config(huge)
    wrong = write(tmp_path / "wrong.json", {"mcpServers": ["a"]})
    with pytest.raises(ConfigError, match="'mcpServers' must be an object"):
        load_mcp_config(wrong)


def test_import_claude_desktop_file_moves_secrets_to_keyring(
        tmp_path: Path, keyring_store: tuple[KeyringStore, MemoryKeyring]) -> None:
    store, backend = keyring_store
    claude = write(tmp_path / "claude_desktop_config.json", {
        "globalShortcut": "Ctrl+Space",  # Claude Desktop keeps its own settings beside the servers
        "mcpServers": {
            "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                       "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": TOKEN, "LOG": "info"}},
            "remote": {"url": "https://mcp.example.com/mcp",
                       "headers": {"Authorization": f"Bearer {TOKEN}", "X-Client": "victor"}},
            "time": {"command": "uvx", "args": ["mcp-server-time"]},
            "junk": 42,
        }})
    target = tmp_path / "app" / "mcp.json"
    write_target = target.parent
    write_target.mkdir()
    write(target, {"mcpServers": {"time": {"command": "python", "args": ["-m", "mcp_server_time"]}}})
    result = import_mcp_json(claude, target, secrets=store)
    assert result.added == ("github", "remote") and result.kept == ("time",)
    assert "junk" in result.skipped
    text = target.read_text(encoding="utf-8")
    assert TOKEN not in text and "globalShortcut" not in text
    saved = json.loads(text)["mcpServers"]
    assert saved["time"]["command"] == "python"  # existing names kept
    assert saved["remote"]["headers"] == {"X-Client": "victor"}
    assert saved["remote"]["secret_headers"] == ["Authorization"]
    assert saved["github"]["env"] == {"LOG": "info"}
    assert saved["github"]["secret_env"] == ["GITHUB_PERSONAL_ACCESS_TOKEN"]
    assert backend.entries[("victor_gui", "mcp:remote:Authorization")] == f"Bearer {TOKEN}"
    assert backend.entries[("victor_gui", "mcp:github:env:GITHUB_PERSONAL_ACCESS_TOKEN")] == TOKEN
    # What the host uses: the keyring values filled back in.
    config = load_mcp_config(target)
    headers, missing = resolve_secrets(config.servers["remote"], store)
    assert headers == {"X-Client": "victor", "Authorization": f"Bearer {TOKEN}"} and not missing
    env, missing = resolve_secrets(config.servers["github"], store)
    assert env["GITHUB_PERSONAL_ACCESS_TOKEN"] == TOKEN and not missing


def test_import_replace_and_no_keyring(tmp_path: Path) -> None:
    source = write(tmp_path / "cursor.json", {"mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time"]},
        "remote": {"url": "https://x.example/mcp", "headers": {"X-Api-Key": TOKEN}}}})
    target = write(tmp_path / "mcp.json", {"mcpServers": {"time": {"command": "old"}}})
    result = import_mcp_json(source, target, secrets=None, replace=True)
    assert result.replaced == ("time",) and not result.added
    assert "no keyring" in result.skipped["remote"]
    assert json.loads(target.read_text(encoding="utf-8"))["mcpServers"]["time"]["command"] == "uvx"
    with pytest.raises(ConfigError, match="does not exist"):
        import_mcp_json(tmp_path / "missing.json", target, secrets=None)
