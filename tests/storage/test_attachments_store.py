"""Attachments in the store, against a real SQLite file and real blob files: stored once per
content, shown again after reopening, deleted with the last message holding them (never
before), exported and imported whole."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from victor_gui.core.attachment_ref import AttachmentKind, AttachmentRef
from victor_gui.errors import StorageError
from victor_gui.storage import ConversationStore, open_store
from victor_gui.storage.export import export_json, export_markdown, import_json
from victor_gui.storage.schema import SCHEMA_VERSION

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
NOTES = b"Meeting notes\nThe launch code word is HERON.\n"


@pytest.fixture
async def store(tmp_path: Path):
    s, notice = await open_store(tmp_path)
    assert notice is None
    yield s
    await s.close()


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "attachments").glob("??/*") if p.is_file())


async def attach_file(store: ConversationStore, path: Path, kind: AttachmentKind,
                      media: str) -> AttachmentRef:
    sha, size = await store.put_attachment_file(path)
    return AttachmentRef(sha, path.name, media, size, kind)


async def test_blobs_are_content_addressed_deduplicated_and_come_back_after_reopen(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    img = tmp_path / "in" / "photo.png"
    img.write_bytes(PNG)
    copy = tmp_path / "in" / "same-bytes.png"
    copy.write_bytes(PNG)
    doc = tmp_path / "in" / "notes.txt"
    doc.write_bytes(NOTES)
    data = tmp_path / "data"
    store, _ = await open_store(data)
    conv = await store.create_conversation("files")
    a = await attach_file(store, img, AttachmentKind.IMAGE, "image/png")
    b = await attach_file(store, copy, AttachmentKind.IMAGE, "image/png")
    d = await attach_file(store, doc, AttachmentKind.DOCUMENT, "text/plain")
    mid = await store.add_message(conv.id, "user", "look", attachments=[d, a])
    await store.add_message(conv.id, "user", "again", attachments=[b])
    await store.close()

    sha = hashlib.sha256(PNG).hexdigest()
    assert a.sha256 == b.sha256 == sha
    files = blob_files(data)
    assert [f.name for f in files] == sorted([sha, hashlib.sha256(NOTES).hexdigest()])  # one per content
    assert (data / "attachments" / sha[:2] / sha).read_bytes() == PNG
    assert not list((data / "attachments").rglob(".incoming-*"))  # no temp file left behind

    store, _ = await open_store(data)
    try:
        messages = await store.get_messages(conv.id)
        assert [m.attachments for m in messages] == [(d, a), (b,)]  # in order, every field
        assert messages[0].id == mid and messages[0].attachments[1].name == "photo.png"
        one = await store.get_message(mid)
        assert one is not None and one.attachments == (d, a)
        assert await store.read_attachment(sha) == PNG
        named = await store.attachment_file(d)
        assert named.name == "notes.txt" and named.read_bytes() == NOTES
        last = await store.get_messages(conv.id, limit=1)
        assert last[0].attachments == (b,)
    finally:
        await store.close()
    conn = sqlite3.connect(data / "conversations.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_deleting_a_chat_removes_only_the_blobs_no_other_message_holds(
    store: ConversationStore, tmp_path: Path
) -> None:
    shared = await store.put_attachment_bytes(PNG)
    own = await store.put_attachment_bytes(NOTES)
    ref_shared = AttachmentRef(shared, "p.png", "image/png", len(PNG), AttachmentKind.IMAGE)
    ref_own = AttachmentRef(own, "n.txt", "text/plain", len(NOTES), AttachmentKind.DOCUMENT)
    first = await store.create_conversation("first")
    second = await store.create_conversation("second")
    await store.add_message(first.id, "user", "a", attachments=[ref_shared, ref_own])
    await store.add_message(second.id, "user", "b", attachments=[ref_shared])
    await store.attachment_file(ref_own)  # a named view exists too

    await store.delete_conversation(first.id)
    assert store.attachment_path(shared).is_file()  # the second chat still holds it
    assert not store.attachment_path(own).exists()
    assert not (tmp_path / "attachments" / ".named" / own).exists()
    rows = sqlite3.connect(store.path).execute("SELECT count(*) FROM message_attachments").fetchone()
    assert rows == (1,)  # the first chat's rows went with its messages (cascade)

    await store.delete_conversation(second.id)
    assert not store.attachment_path(shared).exists()
    assert blob_files(tmp_path) == []


async def test_truncating_and_editing_collect_unheld_blobs(store: ConversationStore) -> None:
    sha = await store.put_attachment_bytes(PNG)
    other = await store.put_attachment_bytes(NOTES)
    ref = AttachmentRef(sha, "p.png", "image/png", len(PNG), AttachmentKind.IMAGE)
    doc = AttachmentRef(other, "n.txt", "text/plain", len(NOTES), AttachmentKind.DOCUMENT)
    conv = await store.create_conversation()
    first = await store.add_message(conv.id, "user", "q", attachments=[ref])
    await store.add_message(conv.id, "assistant", "a")
    await store.add_message(conv.id, "user", "q2", attachments=[doc])
    await store.delete_messages_from(conv.id, 2)  # edit-and-resend / regenerate truncation
    assert not store.attachment_path(other).exists() and store.attachment_path(sha).is_file()

    await store.edit_message(first, "q edited")  # None keeps the files
    kept = await store.get_message(first)
    assert kept is not None and kept.attachments == (ref,) and kept.content == "q edited"
    await store.edit_message(first, "q without", attachments=[])
    assert not store.attachment_path(sha).exists()


async def test_a_blob_being_attached_survives_a_concurrent_delete(store: ConversationStore) -> None:
    old = await store.create_conversation("old")
    sha = await store.put_attachment_bytes(PNG)
    ref = AttachmentRef(sha, "p.png", "image/png", len(PNG), AttachmentKind.IMAGE)
    await store.add_message(old.id, "user", "x", attachments=[ref])
    # The same picture is attached again (put: pinned until stored) while the old chat goes.
    again = await store.put_attachment_bytes(PNG)
    new = await store.create_conversation("new")
    await asyncio.gather(store.delete_conversation(old.id),
                         store.add_message(new.id, "user", "y", attachments=[ref]))
    assert again == sha and store.attachment_path(sha).is_file()
    assert (await store.get_messages(new.id))[0].attachments == (ref,)


async def test_a_message_naming_a_blob_not_in_the_folder_is_refused_whole(store: ConversationStore) -> None:
    conv = await store.create_conversation()
    ghost = AttachmentRef("ab" * 32, "gone.pdf", "application/pdf", 10, AttachmentKind.DOCUMENT)
    with pytest.raises(StorageError, match=r"gone\.pdf is not in this data folder"):
        await store.add_message(conv.id, "user", "see file", attachments=[ghost])
    assert await store.get_messages(conv.id) == []  # nothing half-stored


async def test_export_carries_the_bytes_and_import_restores_them_byte_for_byte(
    store: ConversationStore, tmp_path: Path
) -> None:
    sha = await store.put_attachment_bytes(PNG)
    dsha = await store.put_attachment_bytes(NOTES)
    img = AttachmentRef(sha, "photo.png", "image/png", len(PNG), AttachmentKind.IMAGE, width=16, height=16)
    doc = AttachmentRef(dsha, "notes.txt", "text/plain", len(NOTES), AttachmentKind.DOCUMENT, tokens=12,
                        mode="whole")
    conv = await store.create_conversation("with files")
    await store.add_message(conv.id, "user", "what is in these?", attachments=[img, doc])
    await store.add_message(conv.id, "assistant", "a picture and notes")
    text = await export_json(store, [conv.id])
    doc_json = json.loads(text)
    entries = doc_json["conversations"][0]["messages"][0]["attachments"]
    assert [e["name"] for e in entries] == ["photo.png", "notes.txt"]
    assert base64.b64decode(entries[0]["data"]) == PNG and entries[1]["mode"] == "whole"
    assert "attachments" not in doc_json["conversations"][0]["messages"][1]  # none: no key

    other, _ = await open_store(tmp_path / "elsewhere")  # another data folder: blobs come from the file
    try:
        [cid] = await import_json(other, text)
        restored = (await other.get_messages(cid))[0].attachments
        assert restored == (img, doc)
        assert await other.read_attachment(sha) == PNG and await other.read_attachment(dsha) == NOTES
        assert await export_json(other, [cid]) == text  # lossless round trip
        await other.delete_conversation(cid)  # imported blobs are not pinned forever
        assert blob_files(tmp_path / "elsewhere") == []
    finally:
        await other.close()

    markdown = await export_markdown(store, [conv.id])
    assert "![photo.png](photo.png)" in markdown and "Attached: `notes.txt`" in markdown


async def test_export_leaves_out_large_files_with_a_flag_and_import_refuses_tampered_bytes(
    store: ConversationStore,
) -> None:
    sha = await store.put_attachment_bytes(NOTES)
    # A ref claiming 6 MiB: past the documents' inline limit, so only named in the export.
    big = AttachmentRef(sha, "big.log", "text/plain", 6 * 1024 * 1024, AttachmentKind.DOCUMENT)
    conv = await store.create_conversation()
    await store.add_message(conv.id, "user", "log", attachments=[big])
    doc = json.loads(await export_json(store, [conv.id]))
    entry = doc["conversations"][0]["messages"][0]["attachments"][0]
    assert entry["left_out"] == "size" and "data" not in entry

    entry.pop("left_out")
    entry["data"] = base64.b64encode(b"not the same bytes").decode()
    with pytest.raises(StorageError, match="does not match its sha256"):
        await import_json(store, json.dumps(doc))
    assert len(await store.list_conversations()) == 1  # nothing was added


async def test_discard_and_sweep_remove_blobs_no_message_holds(store: ConversationStore) -> None:
    conv = await store.create_conversation()
    kept = await store.put_attachment_bytes(PNG)
    await store.add_message(conv.id, "user", "x", attachments=[
        AttachmentRef(kept, "p.png", "image/png", len(PNG), AttachmentKind.IMAGE)])
    dropped = await store.put_attachment_bytes(NOTES)  # a chip removed before sending
    await store.discard_attachments([dropped, kept])
    assert not store.attachment_path(dropped).exists() and store.attachment_path(kept).is_file()

    crash = await store.put_attachment_bytes(b"left by a crash between put and message")
    await store.release_attachments([crash])  # as after a restart: no pin in this process
    assert await store.sweep_attachments() == []  # too recent: another process may be linking it
    old = time.time() - 2 * 24 * 3600
    os.utime(store.attachment_path(crash), (old, old))
    os.utime(store.attachment_path(kept), (old, old))
    assert await store.sweep_attachments() == [crash]
    assert store.attachment_path(kept).is_file()  # held by a message, whatever its age


async def test_an_import_refused_mid_write_leaves_no_blob_behind(
    store: ConversationStore, tmp_path: Path
) -> None:
    entry = {"sha256": hashlib.sha256(PNG).hexdigest(), "name": "p.png", "media_type": "image/png",
             "size": len(PNG), "kind": "image", "data": base64.b64encode(PNG).decode()}
    doc = {"format": "victor_gui.conversations", "version": 1, "conversations": [{
        "title": "t", "created": 1.0, "updated": 1.0, "params": {}, "messages": [
            {"role": "user", "content": "see", "attachments": [entry]},
            # Passes the checks, refused by SQLite mid-write (as in test_import_atomic).
            {"role": "assistant", "prompt_tokens": {"not": "a number"}}]}]}
    with pytest.raises(StorageError, match="nothing was imported"):
        await import_json(store, json.dumps(doc))
    assert await store.list_conversations() == []
    assert blob_files(tmp_path) == []  # the picture written for it went again
