"""The attachment draft against real files and a real blob folder: what the chips render."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

from PIL import Image

from victor_gui.services.attachment_draft import AttachmentDraft, DraftEvent
from victor_gui.services.attachment_types import AttachmentKind
from victor_gui.storage.blobs import BlobStore


def png_bytes(size: tuple[int, int] = (640, 480), color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def draft_in(tmp_path: Path) -> tuple[AttachmentDraft, list[DraftEvent]]:
    draft = AttachmentDraft(BlobStore(tmp_path / "blobs"))
    events: list[DraftEvent] = []
    draft.subscribe(events.append)
    return draft, events


async def test_an_image_file_is_stored_measured_and_thumbnailed(tmp_path: Path) -> None:
    raw = png_bytes((2000, 1000))
    path = tmp_path / "photo.png"
    path.write_bytes(raw)
    draft, events = draft_in(tmp_path)
    item = await draft.add_path(path)
    assert item.state == "ready" and item.kind is AttachmentKind.IMAGE
    ref = item.ref
    assert ref is not None and ref.sha256 == hashlib.sha256(raw).hexdigest()
    assert (ref.width, ref.height, ref.size, ref.media_type) == (2000, 1000, len(raw), "image/png")
    assert ref.tokens and ref.tokens > 100
    assert draft.blobs is not None and draft.blobs.read(ref.sha256) == raw  # copied into the data folder
    thumb = Image.open(io.BytesIO(item.thumbnail or b""))
    assert max(thumb.size) <= 96
    assert events[0].kind == "added" and events[-1].item == item
    assert draft.refs() == [ref]


async def test_a_document_converts_with_tokens_and_survives_the_file_vanishing(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\n" + "The launch code is 4417. " * 400, encoding="utf-8")
    draft, events = draft_in(tmp_path)
    item = await draft.add_path(path)
    path.unlink()  # the original goes: the stored copy is what is sent
    assert item.state == "ready" and item.ref is not None
    assert item.ref.kind is AttachmentKind.DOCUMENT and item.ref.tokens and item.ref.tokens > 2000
    states = [e.item.state for e in events if e.item is not None]
    assert "converting" in states and states[-1] == "ready"
    assert draft.blobs is not None and b"4417" in draft.blobs.read(item.ref.sha256)


async def test_bad_inputs_become_error_chips_with_a_sentence(tmp_path: Path) -> None:
    draft, _events = draft_in(tmp_path)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café crème".encode("latin-1"))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    gone = await draft.add_path(tmp_path / "missing.txt")
    bad_text = await draft.add_path(latin)
    bad_image = await draft.add_path(broken)
    assert (gone.state, gone.reason) == ("error", "vanished") and "missing.txt" in (gone.error or "")
    assert (bad_text.state, bad_text.reason) == ("error", "unreadable") and "UTF-8" in (bad_text.error or "")
    assert bad_image.state == "error" and "broken.png" in (bad_image.error or "")
    assert draft.refs() == []  # an error chip is never sent
    assert len(draft.items()) == 3


async def test_pasted_bytes_remove_by_hash_and_duplicates(tmp_path: Path) -> None:
    draft, events = draft_in(tmp_path)
    raw = png_bytes()
    first = await draft.add_bytes("pasted.png", raw, "image/png")
    again = await draft.add_bytes("pasted-2.png", raw, "image/png")
    assert again.id == first.id and len(draft.items()) == 1  # the same content: one chip
    assert first.sha256 is not None and draft.remove(first.sha256)
    assert draft.items() == [] and events[-1].kind == "removed"
    assert not draft.remove("no-such-hash")


async def test_removing_a_converting_document_cancels_it(tmp_path: Path) -> None:
    """A large text is still being copied/converted when it is removed: the worker stops and the
    chip does not come back."""
    path = tmp_path / "big.txt"
    with path.open("wb") as out:
        for _ in range(60):
            out.write(b"x" * (1 << 20))
    draft, events = draft_in(tmp_path)
    added = asyncio.Event()
    draft.subscribe(lambda e: added.set())
    task = asyncio.ensure_future(draft.add_path(path))
    await added.wait()
    item_id = draft.items()[0].id
    assert draft.busy and draft.remove(item_id)
    await asyncio.wait_for(task, 20)
    assert draft.items() == [] and not draft.busy
    assert not any(e.kind == "changed" and e.item is not None and e.item.state == "ready" for e in events)


async def test_a_device_a_folder_and_an_oversized_file_are_refused_at_once(tmp_path: Path) -> None:
    """/dev/zero never ends and a folder is not a file: neither is copied; a size bound stops a
    file past it (checked as it is copied, so a file still growing stops too)."""
    draft, _events = draft_in(tmp_path)
    device = await asyncio.wait_for(draft.add_path("/dev/zero"), 5)
    folder = await draft.add_path(tmp_path)
    assert (device.state, device.reason) == ("error", "unsupported")
    assert (folder.state, folder.reason) == ("error", "unsupported")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * 3000)
    small = AttachmentDraft(BlobStore(tmp_path / "small-blobs", max_bytes=2048))
    too_big = await small.add_path(big)
    assert (too_big.state, too_big.reason) == ("error", "too_large") and "big.bin" in (too_big.error or "")
    assert [p.name for p in (tmp_path / "small-blobs").rglob("*") if p.is_file()] == []  # nothing half-copied
