"""What an export must not carry raw: control characters and bidi overrides (Markdown), and
credentials written inside URLs (JSON and Markdown)."""

from __future__ import annotations

from pathlib import Path

import pytest

from victor_gui.storage import ConversationStore, open_store
from victor_gui.storage.export import export_json, export_markdown


@pytest.fixture
async def store(tmp_path: Path):
    s, _ = await open_store(tmp_path / "data")
    yield s
    await s.close()


async def test_markdown_export_drops_control_characters_and_shows_bidi_overrides(
        store: ConversationStore) -> None:
    # Before: NUL, ESC and U+202E went into the .md file raw: a viewer hid text or showed a file
    # name reversed ("invoice‮fdp.exe") with nothing to see why.
    conv = await store.create_conversation("title\x00with nul\x1b[31m")
    await store.add_message(conv.id, "user", "line one\r\nline\ttwo\x07 open invoice\u202efdp.exe"
                                             " \u2066iso\u2069 \u202aembed\u202c")
    md = await export_markdown(store)
    assert not any(ord(c) < 32 and c not in "\n\t" for c in md)
    assert not any(c in md for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert "invoice\\u202efdp.exe" in md
    assert "\\u2066iso\\u2069" in md and "\\u202aembed\\u202c" in md
    assert "titlewith nul[31m" in md
    assert "line one\nline\ttwo open" in md


async def test_exports_carry_no_password_written_in_a_url(store: ConversationStore) -> None:
    url = "http://alice:s3cretpass@10.1.2.3:8000/v1"
    conv = await store.create_conversation("chat")
    mid = await store.begin_assistant_message(conv.id, model="m")
    await store.finish_message(mid, "error", error=f"cannot reach {url}")
    await store.add_message(conv.id, "user", f"my box is {url}")
    for text in (await export_json(store), await export_markdown(store)):
        assert "s3cretpass" not in text and "alice" not in text
        assert "http://***@10.1.2.3:8000/v1" in text
