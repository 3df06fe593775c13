"""Settings: defaults, round trip, migration from v1, and bad files that never stop the app."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from victor_gui.config.settings import CONFIG_VERSION, Endpoint, Settings, load_settings, save_settings
from victor_gui.core.redact import register_secret
from victor_gui.errors import ConfigError


async def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    result = await load_settings(tmp_path / "settings.yaml")
    assert result.error is None and result.settings == Settings()


async def test_save_then_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "settings.yaml"
    s = Settings(
        theme="dark",
        default_provider="ollama",
        default_model="qwen3:8b",
        proxy="http://proxy:3128",
        endpoints=[Endpoint(name="box", kind="vllm", url="http://10.0.0.2:8000/")],
    )
    s.chat_defaults.temperature = 0.2
    await save_settings(s, path)
    loaded = await load_settings(path)
    assert loaded.error is None and loaded.settings == s
    assert loaded.settings.endpoints[0].url == "http://10.0.0.2:8000"
    assert [p.name for p in path.parent.iterdir()] == ["settings.yaml"]  # no temp files left


async def test_migration_from_v1(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    original = (
        "dark_mode: true\nollama_url: http://127.0.0.1:11434\ntemperature: 0.4\ndefault_model: llama3.2\n"
    )
    path.write_text(original)
    result = await load_settings(path)
    assert result.error is None and result.migrated_from == 1
    s = result.settings
    assert (s.theme, s.default_model, s.chat_defaults.temperature) == ("dark", "llama3.2", 0.4)
    assert s.endpoints == [Endpoint(name="Ollama", kind="ollama", url="http://127.0.0.1:11434")]
    assert (tmp_path / "settings.yaml.v1.bak").read_text() == original
    again = await load_settings(path)  # written back at the current version
    assert again.migrated_from is None and again.settings == s
    assert f"config_version: {CONFIG_VERSION}" in path.read_text()


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("theme: dark\nendpoints: [\n  {name: a\n", 4, "not valid YAML"),
        ("theme: dark\n\tproxy: x\n", 2, "not valid YAML"),
        ("config_version: 99\n", 1, "newer"),
        ("- just\n- a list\n", 1, "mapping"),
    ],
)
async def test_unusable_file_reports_line_uses_defaults_keeps_bytes(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = tmp_path / "settings.yaml"
    path.write_bytes(text.encode())
    result = await load_settings(path)
    assert result.settings == Settings() and result.lossy
    assert isinstance(result.error, ConfigError)
    assert result.error.path == str(path) and result.error.line == line, result.error
    assert fragment in str(result.error) and str(path) in str(result.error)
    assert path.read_bytes() == text.encode()


@pytest.mark.parametrize(
    ("text", "line", "fragment", "kept"),
    [
        ("theme: purple\nproxy: http://p:1\n", 1, "theme", {"proxy": "http://p:1"}),
        ("theme: dark\nchat_defaults:\n  max_tokens: 10\n  temperature: 9\n", 4,
         "chat_defaults.temperature", {"theme": "dark", "chat_defaults": {"max_tokens": 10}}),
        ("theme: dark\nendpoints:\n  - name: a\n    kind: ollama\n    url: ftp://x\n", 5,
         "endpoints.0.url", {"theme": "dark"}),
        ("theme: dark\nthem: light\n", 2, "them", {"theme": "dark"}),
        (f"theme: dark\ndata_dir: {sys.prefix}/chats\n", 2, "install folder", {"theme": "dark"}),
    ],
)
async def test_bad_part_is_left_out_by_line_and_the_rest_kept(
    tmp_path: Path, text: str, line: int, fragment: str, kept: dict[str, object]
) -> None:
    path = tmp_path / "settings.yaml"
    path.write_bytes(text.encode())
    result = await load_settings(path)
    assert result.error is None and result.lossy and len(result.dropped) == 1
    problem = result.dropped[0]
    assert problem.path == str(path) and problem.line == line, problem
    assert fragment in str(problem) and "left out" in str(problem)
    assert result.settings == Settings.model_validate(kept)
    assert path.read_bytes() == text.encode()


async def test_settings_refuse_to_hold_a_secret(tmp_path: Path) -> None:
    register_secret("sk-canary-settings-0000")
    path = tmp_path / "settings.yaml"
    with pytest.raises(ConfigError, match="secret"):
        await save_settings(Settings(proxy="http://u:sk-canary-settings-0000@proxy:1"), path)
    assert not path.exists()
