"""An import is one transaction: a file with a malformed conversation changes nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from victor_gui.errors import StorageError
from victor_gui.storage import open_store
from victor_gui.storage.export import FORMAT, VERSION, import_json
from victor_gui.storage.store import DB_NAME


def _dump(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        convs = conn.execute("SELECT * FROM conversations ORDER BY id").fetchall()
        msgs = conn.execute("SELECT * FROM messages ORDER BY id").fetchall()
        seq = conn.execute("SELECT count(*) FROM messages_fts").fetchall()
        return [*convs, *msgs, *seq]
    finally:
        conn.close()


def _conversation(title: str, bad: Any = None) -> dict[str, Any]:
    messages: Any = [
        {"role": "user", "content": f"{title} asks", "created": 1.0, "updated": 1.0},
        {"role": "assistant", "content": f"{title} answers", "created": 2.0, "updated": 2.0},
    ]
    if bad is not None:
        messages = bad
    return {"title": title, "created": 1.0, "updated": 2.0, "params": {}, "messages": messages}


@pytest.mark.parametrize("bad", [
    "not a list",  # caught before any write
    [{"role": "user", "content": "fine"}, 42],  # a message that is not an object
    [{"role": None, "content": "no role"}],
    # Passes the checks, refused by SQLite mid-write: conversations 1, 2 and 3 are rolled back.
    [{"role": "user", "content": "fine"}, {"role": "assistant", "prompt_tokens": {"not": "a number"}}],
], ids=["messages-not-a-list", "message-not-an-object", "role-null", "refused-mid-write"])
async def test_malformed_third_conversation_leaves_the_store_as_it_was(tmp_path: Path, bad: Any) -> None:
    store, _ = await open_store(tmp_path)
    try:
        before_conv = await store.create_conversation("already here")
        await store.add_message(before_conv.id, "user", "keep me")
        await store.close()
        before = _dump(tmp_path / DB_NAME)
        store, _ = await open_store(tmp_path)
        doc = {"format": FORMAT, "version": VERSION, "conversations": [
            _conversation("one"), _conversation("two"), _conversation("three", bad), _conversation("four")]}
        with pytest.raises(StorageError, match=r"conversation 3 .*nothing was imported"):
            await import_json(store, json.dumps(doc))
        assert [c.title for c in await store.list_conversations()] == ["already here"]
    finally:
        await store.close()
    assert _dump(tmp_path / DB_NAME) == before  # before the fix: 'one' and 'two' (and part of 3) stayed


async def test_a_good_file_still_imports_whole(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    try:
        doc = {"format": FORMAT, "version": VERSION,
               "conversations": [_conversation("one"), _conversation("two")]}
        ids = await import_json(store, json.dumps(doc))
        assert len(ids) == 2
        assert [m.content for m in await store.get_messages(ids[1])] == ["two asks", "two answers"]
        conv = await store.get_conversation(ids[0])
        assert conv is not None and (conv.created, conv.updated) == (1.0, 2.0)
    finally:
        await store.close()


