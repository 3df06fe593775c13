"""Profiles: every example of the provider guide parses; merging; broken files reported by line."""

from __future__ import annotations

from pathlib import Path

from victor_gui.config.profiles import FallbackTarget, Profile, load_profiles, save_app_profiles
from victor_gui.core.redact import redact

# The profile examples of the provider guide (seed 001), verbatim, as one file.
SEED_EXAMPLES = """\
# ~/.victor/profiles.yaml
profiles:
  local:
    provider: ollama
    model: qwen2.5-coder:7b
  lmstudio:
    provider: lmstudio
    base_url: http://127.0.0.1:1234/v1
    model: qwen2.5-coder-7b
  claude:
    provider: anthropic
    model: claude-sonnet-4-20250514
    max_tokens: 8192
  azure:
    provider: azure
    api_key_env: AZURE_OPENAI_API_KEY
    api_base_env: AZURE_OPENAI_ENDPOINT
    api_version: "2024-08-01-preview"
    deployment: gpt-4o
  resilient:
    provider: anthropic
    model: claude-sonnet-4-20250514
    fallback:
      - provider: openai
        model: gpt-4o
      - provider: ollama
        model: qwen2.5-coder:7b
  cost-aware:
    provider: anthropic
    track_costs: true
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


async def test_every_seed_example_parses(tmp_path: Path) -> None:
    victor = write(tmp_path / ".victor" / "profiles.yaml", SEED_EXAMPLES)
    result = await load_profiles(victor, tmp_path / "none.yaml")
    assert result.errors == [] and result.warnings == []
    p = result.profiles
    assert list(p) == ["local", "lmstudio", "claude", "azure", "resilient", "cost-aware"]
    assert (p["local"].provider, p["local"].model) == ("ollama", "qwen2.5-coder:7b")
    assert p["lmstudio"].base_url == "http://127.0.0.1:1234/v1"
    assert p["claude"].max_tokens == 8192
    az = p["azure"]
    assert (az.api_key_env, az.api_base_env, az.api_version, az.deployment) == (
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "2024-08-01-preview",
        "gpt-4o",
    )
    assert p["resilient"].fallback == [
        FallbackTarget(provider="openai", model="gpt-4o"),
        FallbackTarget(provider="ollama", model="qwen2.5-coder:7b"),
    ]
    assert p["cost-aware"].track_costs is True and p["local"].track_costs is False
    assert {x.source for x in p.values()} == {"victor"}


async def test_app_profiles_win_and_source_is_recorded(tmp_path: Path) -> None:
    victor = write(
        tmp_path / "v.yaml", SEED_EXAMPLES + "providers:\n  ollama:\n    base_url: http://box:11434\n"
    )
    app = write(
        tmp_path / "a.yaml",
        "profiles:\n  local:\n    provider: llamacpp\n    temperature: 0.1\n"
        "  mine:\n    provider: vllm\n    model: m\n    timeout: 30\n",
    )
    result = await load_profiles(victor, app)
    assert result.errors == []
    assert (result.profiles["local"].provider, result.profiles["local"].source) == ("llamacpp", "app")
    assert result.profiles["local"].model is None  # replaced as a whole, not key by key
    assert result.profiles["claude"].source == "victor" and result.profiles["mine"].timeout == 30
    assert result.providers["ollama"].base_url == "http://box:11434"


async def test_victor_extras_and_fallback_providers_alias(tmp_path: Path) -> None:
    victor = write(
        tmp_path / "v.yaml",
        "profiles:\n  x:\n    provider: openai\n    tool_selection: cloud\n"
        "    fallback_providers: [groqcloud, {provider: ollama, model: m}]\n",
    )
    result = await load_profiles(victor, tmp_path / "none.yaml")
    x = result.profiles["x"]
    assert x.fallback == [FallbackTarget(provider="groqcloud"), FallbackTarget(provider="ollama", model="m")]
    assert x.model_extra == {"tool_selection": "cloud"}


async def test_broken_yaml_is_reported_and_other_file_loads(tmp_path: Path) -> None:
    victor = write(tmp_path / "v.yaml", "profiles:\n  local:\n    provider: ollama\n   model: [oops\n")
    app = write(tmp_path / "a.yaml", "profiles:\n  mine:\n    provider: vllm\n")
    result = await load_profiles(victor, app)
    assert list(result.profiles) == ["mine"]
    [err] = result.errors
    assert err.path == str(victor) and err.line == 4 and "not valid YAML" in str(err)


async def test_one_bad_profile_is_reported_by_line_others_load(tmp_path: Path) -> None:
    victor = write(
        tmp_path / "v.yaml",
        "profiles:\n  good:\n    provider: ollama\n"
        "  hot:\n    provider: openai\n    temperature: 7\n  nameless:\n    model: x\n",
    )
    result = await load_profiles(victor, tmp_path / "none.yaml")
    assert list(result.profiles) == ["good"]
    assert [(e.line, e.path) for e in result.errors] == [(6, str(victor)), (7, str(victor))]
    assert "profiles.hot.temperature" in str(result.errors[0])
    assert "profiles.nameless.provider" in str(result.errors[1])


async def test_plaintext_api_key_is_never_used_or_shown(tmp_path: Path) -> None:
    secret = "plain-key-value-77731"
    victor = write(
        tmp_path / "v.yaml",
        f"providers:\n  openai:\n    api_key: {secret}\n  groqcloud:\n    api_key: ${{GROQCLOUD_API_KEY}}\n",
    )
    result = await load_profiles(victor, tmp_path / "none.yaml")
    assert "api_key" not in result.providers["openai"].model_dump()
    assert result.providers["groqcloud"].api_key_env == "GROQCLOUD_API_KEY"
    assert len(result.warnings) == 1 and secret not in result.warnings[0]
    assert redact(f"x {secret} y") == "x *** y"


async def test_save_app_profiles_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "profiles.yaml"
    profiles = {
        "r": Profile(
            provider="anthropic",
            model="c",
            fallback=[FallbackTarget(provider="ollama", model="q")],
            track_costs=True,
            temperature=0.3,
        )
    }
    await save_app_profiles(profiles, path=path)
    result = await load_profiles(tmp_path / "none.yaml", path)
    assert result.errors == [] and result.profiles == profiles
    assert "source" not in path.read_text()


async def test_password_in_a_profile_base_url_is_warned_about_and_masked(tmp_path: Path) -> None:
    path = write(tmp_path / "profiles.yaml", "profiles:\n  lan:\n    provider: openai\n"
                 "    base_url: http://dave:pw-ProfileCanary-77@10.0.0.4:8000/v1\n")
    result = await load_profiles(tmp_path / "none.yaml", path)
    assert result.errors == [] and len(result.warnings) == 1
    assert "profiles.lan.base_url" in result.warnings[0] and "pw-ProfileCanary" not in result.warnings[0]
    assert redact("upstream said: bad password pw-ProfileCanary-77") == "upstream said: bad password ***"
