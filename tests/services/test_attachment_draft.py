"""The attachment draft against real files and a real store (SQLite file and blob folder): what
the chips render, and what the session gets."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from victor_gui.services.attachment_draft import AttachmentDraft, DraftEvent
from victor_gui.services.attachment_types import AttachmentKind
from victor_gui.services.image_limits import image_tokens_estimate
from victor_gui.storage import ConversationStore, open_store


def png_bytes(size: tuple[int, int] = (640, 480), color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ConversationStore]:
    opened, _notice = await open_store(tmp_path / "data")
    yield opened
    await opened.close()


def draft_on(store: ConversationStore,
             protocol: str = "anthropic") -> tuple[AttachmentDraft, list[DraftEvent]]:
    draft = AttachmentDraft(store, protocol=protocol)
    events: list[DraftEvent] = []
    draft.subscribe(events.append)
    return draft, events


def blob_files(store: ConversationStore) -> list[Path]:
    return [p for p in store.blobs.root.rglob("*") if p.is_file() and ".named" not in p.parts]


async def settle(draft: AttachmentDraft) -> None:
    """Let the draft's give-back tasks run."""
    for _ in range(50):
        await asyncio.sleep(0.01)
        if not draft._discarding:
            return


async def test_an_image_file_is_stored_measured_and_thumbnailed(
        tmp_path: Path, store: ConversationStore) -> None:
    raw = png_bytes((2000, 1000))
    path = tmp_path / "photo.png"
    path.write_bytes(raw)
    draft, events = draft_on(store)
    item = await draft.add_path(path)
    assert item.state == "ready" and item.kind is AttachmentKind.IMAGE
    ref = item.ref
    assert ref is not None and ref.sha256 == hashlib.sha256(raw).hexdigest()
    assert (ref.width, ref.height, ref.size, ref.media_type) == (2000, 1000, len(raw), "image/png")
    assert ref.tokens == image_tokens_estimate(2000, 1000, "anthropic")
    assert await store.read_attachment(ref.sha256) == raw  # copied into the data folder
    thumb = Image.open(io.BytesIO(item.thumbnail or b""))
    assert max(thumb.size) <= 96
    assert events[0].kind == "added" and events[-1].item == item
    assert draft.refs() == [ref]
    draft.set_protocol("openai")  # another provider chosen: the estimate follows its formula
    again = draft.get(item.id)
    assert again is not None and again.tokens == image_tokens_estimate(2000, 1000, "openai") != ref.tokens


async def test_a_document_converts_with_progress_tokens_and_survives_the_file_vanishing(
        tmp_path: Path, store: ConversationStore) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\n" + "The launch code is 4417. " * 400, encoding="utf-8")
    draft, events = draft_on(store)
    item = await draft.add_path(path)
    path.unlink()  # the original goes: the stored copy is what is sent
    assert item.state == "ready" and item.ref is not None and item.document is not None
    assert item.ref.kind is AttachmentKind.DOCUMENT and item.ref.tokens and item.ref.tokens > 2000
    assert item.document.sha256 == item.ref.sha256 and item.document.name == "notes.md"
    assert "4417" in item.document.text
    assert AttachmentDraft.documents([item]) == [item.document]  # what the session's use_converted gets
    states = [e.item.state for e in events if e.item is not None]
    assert "converting" in states and states[-1] == "ready"
    assert b"4417" in await store.read_attachment(item.ref.sha256)


async def test_bad_inputs_become_error_chips_with_a_sentence(
        tmp_path: Path, store: ConversationStore) -> None:
    draft, _events = draft_on(store)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café crème".encode("latin-1"))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    binary = tmp_path / "program.exe"
    binary.write_bytes(b"MZ\x90\x00" + bytes(range(256)) * 8)
    gone = await draft.add_path(tmp_path / "missing.txt")
    read_as_1252 = await draft.add_path(latin)
    bad_image = await draft.add_path(broken)
    bad_doc = await draft.add_path(binary)
    assert (gone.state, gone.reason) == ("error", "vanished") and "missing.txt" in (gone.error or "")
    # The converter reads it as Windows-1252 and says so (a note under the message once sent).
    assert read_as_1252.state == "ready" and read_as_1252.document is not None
    assert "café" in read_as_1252.document.text and read_as_1252.document.warnings
    assert bad_image.state == "ready" and bad_image.thumbnail is None  # the chip shows the image icon
    assert bad_doc.state == "error" and "program.exe" in (bad_doc.error or "")
    assert [i.ref for i in draft.items() if i.ref] == draft.refs()  # an error chip is never sent
    assert len(draft.items()) == 4


async def test_pasted_bytes_remove_by_hash_duplicates_and_blobs_given_back(store: ConversationStore) -> None:
    draft, events = draft_on(store)
    raw = png_bytes()
    first = await draft.add_bytes("pasted.png", raw, "image/png")
    again = await draft.add_bytes("pasted-2.png", raw, "image/png")
    assert again.id == first.id and len(draft.items()) == 1  # the same content: one chip
    assert first.sha256 is not None and store.blobs.exists(first.sha256)
    assert draft.remove(first.sha256)
    assert draft.items() == [] and events[-1].kind == "removed"
    await settle(draft)
    assert not store.blobs.exists(first.sha256)  # no message holds it: the file went
    assert not draft.remove("no-such-hash")


async def test_a_removed_chip_keeps_a_blob_a_message_holds(store: ConversationStore) -> None:
    draft, _events = draft_on(store)
    item = await draft.add_bytes("kept.png", png_bytes(color="blue"), "image/png")
    assert item.ref is not None
    cid = (await store.create_conversation("kept")).id
    await store.add_message(cid, "user", "look", attachments=[item.ref])
    again = await draft.add_bytes("kept.png", png_bytes(color="blue"), "image/png")
    assert again.sha256 == item.sha256 and draft.remove(again.id)
    await settle(draft)
    assert store.blobs.exists(item.ref.sha256)


async def test_removing_a_converting_document_cancels_its_worker(
        tmp_path: Path, store: ConversationStore) -> None:
    """A large text is being converted (in a child process) when it is removed: the worker stops,
    the chip does not come back and the blob goes."""
    path = tmp_path / "big.txt"
    line = b"The quick brown fox jumps over the lazy dog near the river bank today.\n"
    with path.open("wb") as out:
        out.write(line * (30 * 1024 * 1024 // len(line)))
    draft, events = draft_on(store)
    converting = asyncio.Event()
    draft.subscribe(lambda e: converting.set()
                    if e.item is not None and e.item.state == "converting" else None)
    task = asyncio.ensure_future(draft.add_path(path))
    await asyncio.wait_for(converting.wait(), 20)
    item_id = draft.items()[0].id
    started = time.perf_counter()
    assert draft.busy and draft.remove(item_id)
    await asyncio.wait_for(task, 20)
    assert time.perf_counter() - started < 5
    assert draft.items() == [] and not draft.busy
    assert not any(e.kind == "changed" and e.item is not None and e.item.state == "ready" for e in events)
    await settle(draft)
    assert blob_files(store) == []


async def test_a_device_a_folder_and_an_oversized_file_are_refused_before_copying(
        tmp_path: Path, store: ConversationStore) -> None:
    """/dev/zero never ends and a folder is not a file: neither is opened for copying; a 200 MB
    log is refused from its size (sparse here: nothing is written) before a byte is copied."""
    draft, _events = draft_on(store)
    device = await asyncio.wait_for(draft.add_path("/dev/zero"), 5)
    folder = await draft.add_path(tmp_path)
    assert (device.state, device.reason) == ("error", "unsupported")
    assert (folder.state, folder.reason) == ("error", "unsupported")
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        out.write(b"2026-12-07 started\n" * 400)
        out.truncate(200 * 1024 * 1024)
    started = time.perf_counter()
    too_big = await draft.add_path(log)
    assert time.perf_counter() - started < 2
    assert (too_big.state, too_big.reason) == ("error", "too_large") and "server.log" in (too_big.error or "")
    assert blob_files(store) == []  # nothing copied, nothing half-copied
    assert log.stat().st_size == 200 * 1024 * 1024
