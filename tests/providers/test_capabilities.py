"""Capability resolution: the five steps, glob specificity, the bundled file and user overrides."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from victor_gui.errors import ConfigError
from victor_gui.providers import capabilities as caps
from victor_gui.providers.capabilities import (
    ModelCapabilities,
    load_capabilities,
    load_errors,
    matching_patterns,
    model_id_forms,
    parse_capabilities_text,
    reload,
    resolve_capabilities,
)
from victor_gui.providers.catalog import SPECS


@pytest.fixture(autouse=True)
def _bundled_only() -> Iterator[None]:
    # Never read the developer's real override file; restore the plain bundled table after.
    load_capabilities(None)
    yield
    load_capabilities(None)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "model_capabilities.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_file_loads_cleanly_and_covers_every_seed_provider() -> None:
    table = load_capabilities(None)
    assert table.errors == []
    assert table.data["schema_version"] == "0.2.0"
    assert {s.name for s in SPECS} <= set(table.data["provider_defaults"])
    assert len(table.patterns) > 50


def test_bundled_file_has_no_duplicate_keys_under_the_strict_loader() -> None:
    # The strict loader raises on duplicates, so a clean parse proves there are none.
    text = resources.files("victor_gui.resources").joinpath("model_capabilities.yaml").read_text()
    parse_capabilities_text(text, "bundled")


def test_duplicate_keys_are_an_error_with_the_line() -> None:
    text = 'schema_version: "0.2.0"\nprovider_defaults:\n  moonshot:\n    native_tool_calls: true\n' \
           "  deepseek: {}\n  moonshot:\n    native_tool_calls: false\n"
    with pytest.raises(ConfigError) as info:
        parse_capabilities_text(text, "caps.yaml")
    assert info.value.path == "caps.yaml" and info.value.line == 6
    assert "duplicate key 'moonshot'" in str(info.value) and "line 3" in str(info.value)


def test_unknown_model_gets_global_then_provider_defaults() -> None:
    unknown = resolve_capabilities("ollama", "totally-new-model:1b")
    assert unknown.tool_calling is False and unknown.native_tool_calls is False
    assert unknown.timeout_multiplier == 2.0 and unknown.exploration_multiplier == 1.5
    assert unknown.recommended_max_tools == 15 and unknown.context_window is None
    assert unknown.streaming is True and unknown.uses_native_tools is False
    cloud = resolve_capabilities("anthropic", "some-future-model")
    assert cloud.native_tool_calls and cloud.parallel_tool_calls and cloud.recommended_max_tools == 50
    assert cloud.requires_strict_prompting is False


def test_provider_aliases_resolve_to_catalog_names() -> None:
    assert resolve_capabilities("groq", "x").recommended_max_tools == 12
    assert resolve_capabilities("GroqCloud", "x").recommended_max_tools == 12
    assert resolve_capabilities("llama.cpp", "x").timeout_multiplier == 1.5
    assert resolve_capabilities("kimi", "x").recommended_tool_budget == 20


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("anthropic", "claude-sonnet-4-20250514",
         {"tool_calling": True, "vision": True, "thinking_mode": True, "context_window": 200000,
          "recommended_tool_budget": 25, "tool_reliability": "high"}),
        ("openai", "gpt-4o-mini", {"tool_calling": True, "vision": True, "context_window": 128000}),
        ("openai", "o1-mini", {"tool_calling": False, "native_tool_calls": False, "thinking_mode": True,
                               "context_window": 128000}),
        ("openai", "o4-mini", {"tool_calling": False, "reasoning": True, "uses_native_tools": False}),
        ("deepseek", "deepseek-reasoner", {"tool_calling": False, "reasoning": True,
                                           "native_tool_calls": False, "recommended_max_tools": 0}),
        ("deepseek", "deepseek-chat", {"tool_calling": True, "native_tool_calls": True,
                                       "context_window": 128000}),
        ("google", "gemini-1.5-pro-002", {"context_window": 2000000, "vision": True}),
        ("google", "gemini-2.0-flash-exp", {"context_window": 1000000}),
        ("xai", "grok-beta", {"tool_calling": True, "context_window": 131072}),
        ("moonshot", "kimi-k2-thinking", {"thinking_mode": True, "context_window": 256000}),
        ("groqcloud", "llama-3.3-70b-versatile", {"tool_calling": True, "context_window": 131072}),
        ("mistral", "codestral-latest", {"code_generation": True, "context_window": 32768}),
        ("mistral", "mistral-large-latest", {"context_window": 128000}),
        ("ollama", "llava:13b", {"vision": True, "tool_calling": False}),
        ("ollama", "qwen3:8b", {"thinking_mode": True, "native_tool_calls": True,
                                "thinking_disable_prefix": "/no_think"}),
        ("ollama", "gpt-oss:20b", {"thinking_mode": True, "native_tool_calls": True}),
        ("lmstudio", "qwen2.5-coder-7b", {"native_tool_calls": True, "streaming_tool_calls": False,
                                          "timeout_multiplier": 1.5}),
        ("zai", "glm-4.6", {"tool_calling": True, "context_window": 200000}),
        ("ollama", "hermes3:8b", {"tool_calling": True, "native_tool_calls": True}),
    ],
)
def test_model_families(provider: str, model: str, expected: dict[str, object]) -> None:
    result = resolve_capabilities(provider, model)
    assert {k: getattr(result, k) for k in expected} == expected


def test_qwen3_coder_per_provider_and_specific_glob_wins() -> None:
    ollama = resolve_capabilities("ollama", "qwen3-coder:30b")
    assert ollama.native_tool_calls is False  # step 4 of the more specific glob beats qwen3*
    assert ollama.thinking_mode is False and ollama.thinking_disable_prefix is None
    assert ollama.argument_format == "xml" and ollama.context_window == 262144
    assert resolve_capabilities("vllm", "Qwen/Qwen3-Coder-30B-A3B-Instruct").native_tool_calls is True
    tools = resolve_capabilities("ollama", "qwen3-coder-tools:30b")
    assert tools.native_tool_calls and tools.parallel_tool_calls
    assert tools.continuation_patience == 6 and tools.tool_reliability == "high"


def test_hf_style_ids_match_on_last_segment_and_case_insensitively() -> None:
    assert model_id_forms("Qwen/Qwen2.5-Coder-7B-Instruct") == [
        "qwen/qwen2.5-coder-7b-instruct", "qwen2.5-coder-7b-instruct"]
    assert matching_patterns("Qwen/Qwen2.5-Coder-7B-Instruct") == ["qwen2.5*", "qwen2.5-coder*"]
    assert resolve_capabilities("vllm", "Qwen/Qwen2.5-Coder-7B-Instruct").code_generation is True
    assert resolve_capabilities("bedrock", "us.anthropic.claude-3-5-sonnet-20241022-v2:0").vision is True


def test_specificity_order_literal_length_then_wildcards() -> None:
    # llama*3.2*vision* has more wildcards than llama*3.2* but more literal text: it wins.
    assert matching_patterns("llama3.2-vision:11b") == ["llama3*", "llama*3.2*", "llama*3.2*vision*"]
    result = resolve_capabilities("ollama", "llama3.2-vision:11b")
    assert result.vision is True and result.tool_calling is False and result.native_tool_calls is False


def test_five_steps_in_order(tmp_path: Path) -> None:
    path = _write(tmp_path, """
schema_version: "0.2.0"
defaults:
  settings: {continuation_patience: 1, timeout_multiplier: 1.0, recommended_max_tools: 1}
provider_defaults:
  ollama: {continuation_patience: 2, timeout_multiplier: 2.0}
models:
  "step-*":
    training: {tool_calling: true, continuation_patience: 3}
    providers:
      ollama: {continuation_patience: 4, native_tool_calls: true}
    settings: {continuation_patience: 5, custom_knob: "x"}
""")
    load_capabilities(path)
    result = resolve_capabilities("ollama", "step-model")
    assert result.continuation_patience == 5  # settings last
    assert result.timeout_multiplier == 2.0  # provider default kept (user file deep-merged)
    assert result.native_tool_calls is True and result.tool_calling is True
    assert result.model_extra == {"custom_knob": "x"}
    # Without the settings and providers layers, the training value shows through.
    other = resolve_capabilities("openai", "step-model")
    assert other.continuation_patience == 5 and other.native_tool_calls is True  # openai default


def test_user_override_deep_merges_and_wins(tmp_path: Path) -> None:
    path = _write(tmp_path, """
models:
  "qwen3*":
    settings:
      context_window: 32768
  "my-finetune*":
    training: {tool_calling: true}
    providers:
      ollama: {native_tool_calls: true}
provider_defaults:
  ollama: {timeout_multiplier: 3.0}
""")
    table = load_capabilities(path)
    assert table.errors == [] and str(path) in table.sources
    qwen = resolve_capabilities("ollama", "qwen3:14b")
    assert qwen.context_window == 32768  # user value
    assert qwen.thinking_disable_prefix == "/no_think"  # bundled sibling key kept
    assert qwen.timeout_multiplier == 3.0
    assert resolve_capabilities("ollama", "my-finetune:7b").uses_native_tools is True
    # reload() reads the same user file again, and reload(None) drops it.
    path.write_text('models:\n  "qwen3*":\n    settings: {context_window: 1000}\n', encoding="utf-8")
    reload()
    assert resolve_capabilities("ollama", "qwen3:14b").context_window == 1000
    reload(None)
    assert resolve_capabilities("ollama", "qwen3:14b").context_window == 40960


def test_broken_user_yaml_reports_file_and_line_and_falls_back(tmp_path: Path) -> None:
    path = _write(tmp_path, 'schema_version: "0.2.0"\nmodels:\n  "x*":\n    training: {tool_calling: [\n')
    table = load_capabilities(path)
    assert len(table.errors) == 1
    err = table.errors[0]
    assert err.path == str(path) and err.line is not None and err.line >= 4
    assert str(path) in str(err)
    assert load_errors() == table.errors
    assert resolve_capabilities("anthropic", "claude-3-5-haiku-20241022").context_window == 200000


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("models:\n  \"a*\":\n    training:\n      vision: maybe\n", 4, "vision"),
        ("provider_defaults:\n  ollama:\n    timeout_multiplier: fast\n", 3, "timeout_multiplier"),
        ("models:\n  \"a*\":\n    settings:\n      argument_format: yaml\n", 4, "argument_format"),
        ("models: [1, 2]\n", 1, "models must be a mapping"),
        ('schema_version: "1.0"\n', 1, "schema_version"),
        ("- a\n- b\n", 1, "top level"),
    ],
)
def test_wrong_types_are_config_errors(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_capabilities_text(text, "user.yaml")
    assert info.value.line == line and fragment in str(info.value)


def test_missing_user_file_is_fine(tmp_path: Path) -> None:
    table = load_capabilities(tmp_path / "absent.yaml")
    assert table.errors == [] and len(table.sources) == 1


def test_default_user_path_uses_platformdirs() -> None:
    path = caps.default_user_path()
    assert path.name == "model_capabilities.yaml" and "victor_gui" in str(path)


def test_resolution_is_cheap_on_the_cached_parse() -> None:
    resolve_capabilities("ollama", "qwen3-coder:30b")
    start = time.perf_counter()
    for _ in range(500):
        resolve_capabilities("ollama", "qwen3-coder:30b")
    per_call = (time.perf_counter() - start) / 500
    assert per_call < 0.002  # measured ~40 µs; generous bound for a loaded CI box


def test_model_capabilities_accepts_extra_keys() -> None:
    result = ModelCapabilities.model_validate({"serialization": "toon", "tool_calling": True})
    assert result.model_extra == {"serialization": "toon"} and result.tool_calling


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG_CONFIG_HOME is how Linux finds it")
def test_default_user_file_is_read_from_the_config_dir(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    user_file = tmp_path / "victor_gui" / "model_capabilities.yaml"
    user_file.parent.mkdir()
    user_file.write_text('provider_defaults:\n  vllm: {timeout_multiplier: 4.0}\n', encoding="utf-8")
    table = load_capabilities()
    assert str(user_file) in table.sources
    assert resolve_capabilities("vllm", "anything").timeout_multiplier == 4.0


def test_a_user_file_with_an_alias_bomb_or_too_large_is_refused_the_bundle_applies(tmp_path: Path) -> None:
    """The user's capabilities file is a config file like settings.yaml (issue 16): nested
    aliases (a "billion laughs") are refused by line before anything walks them, and a file over
    the size bound is not read; the bundled capabilities still apply."""
    from tests.config.test_config_bounds import alias_bomb

    bomb = "\n".join(["schema_version: \"0.2.0\"", "anchors:",
                      *[f"  {line}" for line in alias_bomb(8)], "models:", "  \"x*\": *a8"]) + "\n"
    path = _write(tmp_path, bomb)
    table = load_capabilities(path)
    assert len(table.errors) == 1 and "aliases" in str(table.errors[0]) and table.errors[0].line
    assert resolve_capabilities("anthropic", "claude-3-5-haiku-20241022").context_window == 200000
    path.write_text("models: {}\n" + "#" * (2 << 20), encoding="utf-8")
    table = load_capabilities(path)
    assert len(table.errors) == 1 and "larger than" in str(table.errors[0])
