"""Assistants in a real YAML file in a temporary config folder: saved, replaced, removed,
exported alone and imported back; a hand-edited file with a broken entry keeps the good ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from victor_gui.errors import ConfigError
from victor_gui.services.assistants import (
    PARAMS_KEY,
    Assistant,
    Assistants,
    chat_params,
    export_file_name,
)


def _reviewer() -> Assistant:
    return Assistant(name="Code reviewer", description="Terse reviews", system_prompt="Review the diff.",
                     params={"temperature": 0.2, "top_k": 20, "stop": ["END"], "bogus": 1},
                     provider="llamacpp", model="qwen2.5-coder", tools=["files"])


async def test_save_replace_remove_and_reload(tmp_path: Path) -> None:
    store = Assistants(tmp_path / "assistants.yaml")
    assert await store.load() == []
    await store.save(_reviewer())
    await store.save(Assistant(name="Poet", system_prompt="Rhyme."))
    again = Assistants(store.path)  # a fresh reader, as after a restart
    loaded = await again.load()
    assert [a.name for a in loaded] == ["Code reviewer", "Poet"]
    assert loaded[0].params == {"temperature": 0.2, "top_k": 20, "stop": ["END"]}  # unknown key dropped
    assert loaded[0].tools == ["files"] and loaded[0].provider == "llamacpp"
    await again.save(Assistant(name="code REVIEWER", system_prompt="Changed."))  # same name, any case
    assert [a.system_prompt for a in await again.load()] == ["Changed.", "Rhyme."]
    assert await again.remove("poet") and not await again.remove("poet")
    assert [a.name for a in await again.load()] == ["code REVIEWER"]
    assert "version: 1" in store.path.read_text(encoding="utf-8")


async def test_export_alone_and_import_back(tmp_path: Path) -> None:
    first = Assistants(tmp_path / "a" / "assistants.yaml")
    await first.save(_reviewer())
    written = await first.export("code reviewer", tmp_path)
    assert written == tmp_path / export_file_name("Code reviewer")
    assert written.name == "code-reviewer.assistant.yaml"
    text = written.read_text(encoding="utf-8")
    assert text.startswith("name: Code reviewer") and "assistants:" not in text
    second = Assistants(tmp_path / "b" / "assistants.yaml")
    found = await second.import_file(written)
    assert [a.name for a in found.assistants] == ["Code reviewer"] and found.problems == []
    assert (await second.get("Code reviewer")) == (await first.get("Code reviewer"))
    with pytest.raises(ConfigError, match="no such file"):
        await second.import_file(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="no assistant named"):
        await second.export("nobody", tmp_path)


async def test_broken_entries_are_named_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "assistants.yaml"
    path.write_text("version: 1\nassistants:\n  - name: Good\n    params: {top_p: 0.5, seed: many}\n"
                    "  - description: no name here\n  - name: Good\n", encoding="utf-8")
    store = Assistants(path)
    loaded = await store.load()
    assert [a.name for a in loaded] == ["Good"] and loaded[0].params == {"top_p": 0.5}
    assert len(store.problems) == 2
    assert store.problems[0].line == 5 and "name" in str(store.problems[0])
    assert "second assistant named 'Good'" in str(store.problems[1])
    # A file that is not YAML at all is one problem, and is not overwritten by a save.
    path.write_text("assistants: [unclosed\n", encoding="utf-8")
    assert await store.load() == [] and "not valid YAML" in str(store.problems[0])
    with pytest.raises(ConfigError, match="fix or move the file"):
        await store.save(Assistant(name="New"))
    assert path.read_text(encoding="utf-8") == "assistants: [unclosed\n"


async def test_no_secret_is_written(tmp_path: Path) -> None:
    store = Assistants(tmp_path / "assistants.yaml")
    with pytest.raises(ConfigError, match="secret"):
        await store.save(Assistant(name="Leaky",
                                   system_prompt="use sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345"))
    assert not store.path.exists()


def test_chat_params_replace_parameters_and_keep_the_rest() -> None:
    kept = {"temperature": 0.9, "min_p": 0.1, "profile": "fast", "tools": {"servers": ["web"], "off": []}}
    out = chat_params(_reviewer(), kept)
    assert out == {"profile": "fast", "tools": {"servers": ["files"], "off": []}, "temperature": 0.2,
                   "top_k": 20, "stop": ["END"], PARAMS_KEY: "Code reviewer"}
    plain = chat_params(Assistant(name="Plain"), kept)
    assert plain["tools"] == kept["tools"] and "min_p" not in plain
