"""Attachments through ChatSession against the protocol simulators on 127.0.0.1, with a real
store and real blob files: the request body each simulator received holds the image in its
protocol's shape (downscaled for it) and the document's text before the question; a model
without vision refuses before anything is sent or stored; a switch to such a model leaves the
history's images out and says so in the transcript; edit-and-resend carries the files."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.providers import ollama_support
from tests.providers.cloud_sims import bedrock_provider, clear_ambient_aws
from tests.providers.openai_sims import make_provider as openai_provider
from tests.providers.openai_sims import running
from tests.servers import anthropic as anthropic_sim
from tests.servers import bedrock as bedrock_sim
from tests.servers import gemini as gemini_sim
from tests.servers import ollama as ollama_sim
from tests.servers.base import Script, SimServer
from victor_gui.errors import AttachmentError, ModelTakesNoImagesError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.protocols.tool_history import IMAGE_OMITTED
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.services.attachment_files import ingest_file
from victor_gui.services.attachment_types import (
    AttachmentKind,
    AttachmentRef,
    ConvertedDocument,
    DocumentSection,
)
from victor_gui.services.chat_attachments import IMAGES_LEFT_OUT
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.image_prep import IMAGE_LIMITS
from victor_gui.services.notes import kind_of
from victor_gui.storage import ConversationStore, open_store

ANT_KEY = "sk-ant-api03-attachments000001"
GEM_KEY = "AIzaSyD-attachments-0000000001"
FACT = "The spare key is under the blue flowerpot."
QUESTION = "Where is the spare key, and what colour is the picture?"
WIDE = (4000, 1500)  # larger than every protocol's long-side limit: each must downscale


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "desktop"
    folder.mkdir()
    picture = folder / "red-wall.png"
    Image.new("RGB", WIDE, (200, 30, 30)).save(picture)
    notes = folder / "house-notes.md"
    notes.write_text(f"# House notes\n\nThe heating is on a timer.\n\n{FACT}\n", encoding="utf-8")
    return picture, notes


@contextmanager
def protocol_server(protocol: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SimServer, Any, str]]:
    """A simulator of ``protocol`` and a factory of providers for it (a vision model)."""
    if protocol == "openai":
        with running("vllm", model="sim-model", vision=True) as server:
            yield server, lambda: openai_provider("vllm", server, vision=True), "sim-model"
    elif protocol == "ollama":
        with ollama_sim.make_server(models=[ollama_support.PLAIN]) as server:  # sim-model has vision
            yield server, lambda: ollama_support.make_provider(server.url), "sim-model"
    elif protocol == "anthropic":
        with anthropic_sim.make_server(api_key=ANT_KEY) as server:
            yield server, lambda: ProviderRegistry.create("anthropic", api_key=ANT_KEY,
                                                          base_url=server.url), server.model
    elif protocol == "gemini":
        with gemini_sim.make_server(api_key=GEM_KEY) as server:
            yield server, lambda: ProviderRegistry.create("google", api_key=GEM_KEY,
                                                          base_url=server.url), server.model
    else:
        clear_ambient_aws(monkeypatch)
        with bedrock_sim.make_server(credentials=bedrock_sim_creds()) as server:
            yield server, lambda: bedrock_provider(server), server.model


def bedrock_sim_creds() -> Any:
    from tests.providers.cloud_sims import BEDROCK_CREDS

    return BEDROCK_CREDS


def last_body(server: SimServer) -> dict[str, Any]:
    return [r for r in server.requests if r.method == "POST"][-1].body


def last_user_turn(protocol: str, body: dict[str, Any]) -> tuple[list[str], str]:
    """(base64 images, text) of the last user turn, read the way each protocol writes them."""
    if protocol == "gemini":
        parts = body["contents"][-1]["parts"]
        return ([p["inlineData"]["data"] for p in parts if "inlineData" in p],
                "".join(p.get("text", "") for p in parts))
    message = body["messages"][-1]
    assert message["role"] == "user"
    if protocol == "ollama":
        return message.get("images", []), message["content"]
    content = message["content"]
    if isinstance(content, str):
        return [], content
    if protocol == "openai":
        return ([c["image_url"]["url"].split(",", 1)[1] for c in content if c["type"] == "image_url"],
                "".join(c.get("text", "") for c in content if c["type"] == "text"))
    if protocol == "anthropic":
        return ([c["source"]["data"] for c in content if c["type"] == "image"],
                "".join(c.get("text", "") for c in content if c["type"] == "text"))
    return ([c["image"]["source"]["bytes"] for c in content if "image" in c],  # bedrock
            "".join(c.get("text", "") for c in content if "text" in c))


async def new_chat(tmp_path: Path) -> tuple[ConversationStore, int]:
    store, _ = await open_store(tmp_path / "data")
    conv = await store.create_conversation("attachments")
    return store, conv.id


async def vision_ready(provider: BaseProvider, model: str) -> BaseProvider:
    show = getattr(provider, "show_model", None)
    if show is not None:  # Ollama: the server's own capabilities say whether it takes images
        await show(model)
    return provider


@pytest.mark.parametrize("protocol", ["openai", "ollama", "anthropic", "gemini", "bedrock"])
async def test_image_and_document_reach_each_protocol_in_its_shape(
    protocol: str, files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picture, notes = files
    store, cid = await new_chat(tmp_path)
    with protocol_server(protocol, monkeypatch) as (server, make, model):
        provider = await vision_ready(make(), model)
        session = ChatSession(store, cid, provider, model)
        refs = [await ingest_file(store, picture), await ingest_file(store, notes)]
        server.script(Script(text="Under the blue flowerpot; the picture is red."))
        result = await session.send(QUESTION, refs)
        await session.close()
        body = last_body(server)
    stored = await store.get_messages(cid)
    await store.close()
    assert result.status == "complete", result.error
    images, text = last_user_turn(protocol, body)
    assert len(images) == 1
    with Image.open(io.BytesIO(base64.b64decode(images[0]))) as sent:
        assert max(sent.size) <= IMAGE_LIMITS[protocol].long_side < max(WIDE)  # downscaled for this protocol
        assert sent.getpixel((10, 10))[:3] == pytest.approx((200, 30, 30), abs=3)
    assert FACT in text and QUESTION in text
    assert text.index(FACT) < text.index(QUESTION)  # the document comes before the question
    assert "house-notes.md" in text
    user = stored[0]
    assert user.content == QUESTION  # the stored message is the user's words; files are refs
    assert [(a.name, a.kind) for a in user.attachments] == [
        ("red-wall.png", AttachmentKind.IMAGE), ("house-notes.md", AttachmentKind.DOCUMENT)]
    assert user.attachments[0].width == WIDE[0] and user.attachments[0].height == WIDE[1]


async def test_a_model_without_vision_refuses_before_anything_is_sent_or_stored(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    picture, _ = files
    store, cid = await new_chat(tmp_path)
    with ollama_sim.make_server(models=[ollama_support.PLAIN]) as server:
        provider = await vision_ready(ollama_support.make_provider(server.url), "plain")
        session = ChatSession(store, cid, provider, "plain")
        ref = await ingest_file(store, picture)
        with pytest.raises(ModelTakesNoImagesError) as caught:
            await session.send("what is this?", [ref])
        await session.close()
        assert server.chat_requests() == []  # no request went out
    assert "plain on ollama does not take images" in str(caught.value)
    assert await store.get_messages(cid) == []  # nothing stored: the draft stays with the user
    await store.close()


async def test_a_switch_to_a_model_without_vision_leaves_images_out_and_says_so(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    picture, _ = files
    store, cid = await new_chat(tmp_path)
    with ollama_sim.make_server(models=[ollama_support.PLAIN]) as server:
        seeing = await vision_ready(ollama_support.make_provider(server.url), "sim-model")
        session = ChatSession(store, cid, seeing, "sim-model")
        server.script(Script(text="A red wall."), Script(text="I cannot see it."), Script(text="Red."))
        await session.send("What is this?", [await ingest_file(store, picture)])
        blind = await vision_ready(ollama_support.make_provider(server.url), "plain")
        await session.switch(blind, "plain")
        await session.send("And now?")
        to_blind = server.chat_requests()[-1].body["messages"]
        stored = await store.get_messages(cid)
        again = await vision_ready(ollama_support.make_provider(server.url), "sim-model")
        await session.switch(again, "sim-model")
        await session.send("And with the seeing model?")
        to_seeing = server.chat_requests()[-1].body["messages"]
        await session.close()
    await store.close()
    assert not any(m.get("images") for m in to_blind)
    assert IMAGE_OMITTED in to_blind[0]["content"] and "What is this?" in to_blind[0]["content"]
    left_out = [m for m in stored if kind_of(m) == IMAGES_LEFT_OUT]
    assert len(left_out) == 1 and left_out[0].meta == {"kind": IMAGES_LEFT_OUT, "count": 1, "model": "plain"}
    assert "1 image earlier in this chat is left out of what plain sees" in left_out[0].content
    assert len(to_seeing[0]["images"]) == 1  # back on a vision model the image goes again


async def test_edit_and_resend_keeps_or_replaces_the_files(files: tuple[Path, Path], tmp_path: Path) -> None:
    picture, notes = files
    store, cid = await new_chat(tmp_path)
    with running("vllm", model="sim-model", vision=True) as server:
        provider = openai_provider("vllm", server, vision=True)
        session = ChatSession(store, cid, provider, "sim-model")
        image = await ingest_file(store, picture)
        doc = await ingest_file(store, notes)
        server.script(Script(text="one"), Script(text="two"), Script(text="three"))
        first = await session.send("Describe.", [image])
        # An edit is a new version of the message (issue 14): the files go with it unless replaced.
        again = await session.edit_and_resend(first.user_message_id or 0, "Describe it again.")
        kept = server.chat_requests()[-1].body["messages"][-1]["content"]
        await session.edit_and_resend(again.user_message_id or 0, "Only the notes.", [doc])
        replaced = server.chat_requests()[-1].body["messages"][-1]["content"]
        await session.close()
    stored = await store.get_messages(cid)
    assert [c["type"] for c in kept] == ["image_url", "text"] and "Describe it again." in kept[-1]["text"]
    assert isinstance(replaced, str) and FACT in replaced and "Only the notes." in replaced  # no image
    assert stored[0].attachments == (doc,)
    # The earlier versions keep the picture (they are kept, not overwritten); deleting the chat
    # removes every file no other chat holds.
    assert store.attachment_path(image.sha256).exists()
    await store.delete_conversation(cid)
    assert not store.attachment_path(image.sha256).exists()
    await store.close()


async def test_unreadable_files_are_refused_before_storing_and_a_vanished_blob_is_named(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    _, notes = files
    store, cid = await new_chat(tmp_path)
    with pytest.raises(AttachmentError) as missing:
        await ingest_file(store, tmp_path / "nowhere.pdf")
    assert missing.value.reason == "vanished" and "nowhere.pdf" in str(missing.value)
    fake = tmp_path / "desktop" / "fake.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    with running("vllm", model="sim-model", vision=True) as server:
        provider = openai_provider("vllm", server, vision=True)
        session = ChatSession(store, cid, provider, "sim-model")
        broken = await ingest_file(store, fake)
        with pytest.raises(AttachmentError) as caught:
            await session.send("look", [broken])
        assert "fake.png cannot be sent" in str(caught.value) and server.chat_requests() == []
        assert await store.get_messages(cid) == []
        doc = await ingest_file(store, notes)
        server.script(Script(text="ok"), Script(text="still ok"))
        await session.send("read this", [doc])
        store.attachment_path(doc.sha256).unlink()  # the data folder lost the file meanwhile
        fresh = ChatSession(store, cid, provider, "sim-model")  # e.g. after a restart
        result = await fresh.send("and now?")
        sent = server.chat_requests()[-1].body["messages"]
        await session.close()
    stored = await store.get_messages(cid)
    await store.close()
    assert result.status == "complete"
    assert "house-notes.md is no longer in the data folder" in sent[0]["content"]
    assert any(m.is_note and "house-notes.md is no longer in the data folder" in m.content for m in stored)


def test_attachment_ref_is_the_contract_type() -> None:
    from victor_gui.core.attachment_ref import AttachmentRef as CoreRef

    assert AttachmentRef is CoreRef  # one class, re-exported: storage and services hold the same


async def test_a_document_the_draft_converted_is_not_converted_again(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    _, notes = files
    store, cid = await new_chat(tmp_path)
    with running("vllm", model="sim-model") as server:
        provider = openai_provider("vllm", server)
        session = ChatSession(store, cid, provider, "sim-model")
        ref = await ingest_file(store, notes)
        session.use_converted(ConvertedDocument(ref.name, ref.sha256, ref.media_type,
                                                (DocumentSection("Section as the draft converted it."),)))
        server.script(Script(text="ok"))
        await session.send("Summarise.", [ref])
        sent = server.chat_requests()[-1].body["messages"][-1]["content"]
        await session.close()
    await store.close()
    assert "Section as the draft converted it." in sent and FACT not in sent
