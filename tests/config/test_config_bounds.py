"""Config files are read with bounds: a size limit checked before reading, and aliases that may
not blow a document up (a "billion laughs" under a profile's api_key passed 2 GB and froze the
app before the check)."""

from __future__ import annotations

import time
from pathlib import Path

from victor_gui.config.profiles import load_profiles
from victor_gui.config.settings import Settings, load_settings
from victor_gui.config.yaml_io import MAX_ALIAS_NODES, MAX_CONFIG_BYTES


def alias_bomb(levels: int) -> list[str]:
    """Anchors a0..a<levels> where each repeats the previous nine times (9**(levels+1) values)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return lines


async def test_alias_bomb_under_a_profile_key_is_refused_by_line(tmp_path: Path) -> None:
    # 9**7 = 4.8 million values once expanded: the old loader built them all (and str() of them
    # for the redactor); a real bomb (9**9) took > 60 s and 2.2 GB before it was killed.
    assert 9 ** 7 > MAX_ALIAS_NODES
    path = tmp_path / "profiles.yaml"
    path.write_text("\n".join([*alias_bomb(6), "profiles:", "  ok:", "    provider: ollama",
                               "  bomb:", "    provider: openai", "    api_key: *a6"]) + "\n")
    started = time.perf_counter()
    result = await load_profiles(tmp_path / "none.yaml", path)
    assert time.perf_counter() - started < 5
    assert len(result.errors) == 1 and result.profiles == {}
    error = result.errors[0]
    assert error.path == str(path) and error.line == 13, error
    assert "aliases" in str(error)


async def test_alias_bomb_in_settings_is_refused_and_file_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    text = "\n".join(["theme: dark", *alias_bomb(6), "hidden_endpoints: *a6"]) + "\n"
    path.write_text(text)
    result = await load_settings(path)
    assert result.error is not None and "aliases" in str(result.error) and result.error.line == 9
    assert path.read_text() == text


async def test_recursive_alias_is_an_error_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("theme: dark\nhidden_endpoints: &loop [*loop]\n")
    result = await load_settings(path)
    assert result.error is not None and "recursive" in str(result.error)


async def test_merge_keys_and_small_aliases_still_load(tmp_path: Path) -> None:
    # Victor's profiles files share settings with anchors and merge keys: that stays allowed.
    path = tmp_path / "profiles.yaml"
    path.write_text("base: &base {provider: ollama, temperature: 0.3}\nprofiles:\n"
                    "  one: {<<: *base, model: a}\n  two: {<<: *base, model: b}\n")
    result = await load_profiles(tmp_path / "none.yaml", path)
    assert result.errors == []
    assert [(p.provider, p.model, p.temperature) for p in result.profiles.values()] == [
        ("ollama", "a", 0.3), ("ollama", "b", 0.3)]


async def test_oversized_config_files_are_refused_unread(tmp_path: Path) -> None:
    # A 100 MB settings file took > 60 s and 700 MB before it was killed; 1 MB took 2-7 s.
    line = "  - http://host.example:1\n"
    text = "hidden_endpoints:\n" + line * (MAX_CONFIG_BYTES // len(line) + 1)
    settings = tmp_path / "settings.yaml"
    settings.write_text(text)
    started = time.perf_counter()
    result = await load_settings(settings)
    assert time.perf_counter() - started < 2
    assert result.settings == Settings() and result.error is not None
    assert "larger than 1024 KiB" in str(result.error) and result.error.path == str(settings)
    assert settings.read_text() == text
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("profiles: {}\n" + "#" * MAX_CONFIG_BYTES)
    loaded = await load_profiles(tmp_path / "none.yaml", profiles)
    assert len(loaded.errors) == 1 and "larger than" in str(loaded.errors[0])
