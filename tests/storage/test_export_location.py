"""Export/import round trips and data-folder placement and moves."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from victor_gui.core.redact import register_secret
from victor_gui.errors import StorageError
from victor_gui.providers.types import ImagePart, TextPart, Timings, ToolCall, Usage
from victor_gui.storage import ConversationStore, open_store
from victor_gui.storage.export import export_json, export_markdown, import_json
from victor_gui.storage.location import check_data_dir, default_data_dir, move_data_dir


@pytest.fixture
async def store(tmp_path: Path):
    s, _ = await open_store(tmp_path / "data")
    yield s
    await s.close()


async def _populate(store: ConversationStore) -> None:
    a = await store.create_conversation("Ünïcode ✓", system_prompt="sys", params={"temperature": 0.7})
    await store.add_message(a.id, "user", [TextPart(text="see"), ImagePart.from_bytes(b"img")])
    await store.add_message(
        a.id,
        "assistant",
        "answer",
        reasoning="thinking…",
        provider="lmstudio",
        model="qwen",
        tool_calls=[ToolCall(id="c1", name="f", arguments={"x": [1, 2]})],
        usage=Usage(prompt_tokens=3, completion_tokens=1),
        timings=Timings(ttft_ms=1.5, tokens_per_second=9.0),
    )
    await store.add_message(a.id, "tool", "done", tool_call_id="c1")
    mid = await store.begin_assistant_message(a.id, model="qwen")
    await store.append_partial(mid, "cut sho")
    await store.finish_message(mid, "interrupted")
    b = await store.create_conversation("second")
    await store.add_message(b.id, "user", "hi")


async def test_json_export_import_export_is_byte_equal(store: ConversationStore) -> None:
    await _populate(store)
    first = await export_json(store)
    ids = await import_json(store, first)
    assert len(ids) == 2
    second = await export_json(store, ids)
    assert second == first
    doc = json.loads(first)
    msgs = doc["conversations"][0]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant"]
    assert msgs[3]["status"] == "interrupted" and msgs[3]["content"] == "cut sho"
    assert "id" not in msgs[0]  # database ids are not part of the format


async def test_markdown_export_reads_well(store: ConversationStore) -> None:
    await _populate(store)
    md = await export_markdown(store)
    assert "# Ünïcode ✓" in md and "### Assistant · lmstudio/qwen" in md
    assert "_(1 image not shown)_" in md and "Tool call `f`" in md and "_interrupted_" in md


async def test_exports_never_carry_a_registered_secret(store: ConversationStore) -> None:
    register_secret("sk-exportcanary-0123456789")
    conv = await store.create_conversation()
    await store.add_message(conv.id, "user", "my key is sk-exportcanary-0123456789 oops")
    assert "exportcanary" not in await export_json(store)
    assert "exportcanary" not in await export_markdown(store)


async def test_import_rejects_foreign_json(store: ConversationStore) -> None:
    with pytest.raises(StorageError):
        await import_json(store, '{"format": "other"}')
    with pytest.raises(StorageError, match="line 1"):
        await import_json(store, "{nope")


def test_default_data_dir_is_outside_install() -> None:
    assert check_data_dir(default_data_dir()) == default_data_dir().resolve()


@pytest.mark.parametrize(
    "inside", [Path(sys.prefix) / "data", Path(__file__).parents[2] / "victor_gui" / "d"]
)
def test_data_dir_inside_install_is_refused(inside: Path) -> None:
    with pytest.raises(StorageError, match="install folder"):
        check_data_dir(inside)


def test_frozen_exe_folder_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "app" / "victor-gui.exe"))
    with pytest.raises(StorageError):
        check_data_dir(tmp_path / "app" / "data")


async def test_move_data_dir_copies_verifies_and_keeps_old(tmp_path: Path) -> None:
    old = tmp_path / "old"
    store, _ = await open_store(old)
    await _populate(store)
    await store.close()
    (old / "notes.txt").write_text("keep me")
    result = await move_data_dir(old, tmp_path / "new")
    assert (result.conversations, result.messages) == (2, 5)
    assert (tmp_path / "new" / "notes.txt").read_text() == "keep me"
    assert (old / "conversations.sqlite3").exists()  # the old folder stays until the user removes it
    moved, notice = await open_store(result.new_dir)
    try:
        assert notice is None and len(await moved.search("answer")) == 1
    finally:
        await moved.close()


async def test_move_refuses_non_empty_target_and_leaves_it(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    store, _ = await open_store(old)
    await store.close()
    new.mkdir()
    (new / "theirs.txt").write_text("x")
    with pytest.raises(StorageError, match="not empty"):
        await move_data_dir(old, new)
    assert [p.name for p in new.iterdir()] == ["theirs.txt"]
    with pytest.raises(StorageError):
        await move_data_dir(old, old / "sub")


async def test_open_store_refuses_install_folder() -> None:
    with pytest.raises(StorageError, match="install folder"):
        await open_store(Path(sys.prefix) / "chats")
