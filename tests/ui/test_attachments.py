"""Attachments in the real window against the llama-server simulator on 127.0.0.1: dropped,
pasted and picked files become chips, Send carries them to the server, a reopened chat opens
them, a reply shows its sources, and a model without vision refuses before sending."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDesktopServices, QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QFileDialog

from tests.servers.base import Script, SimServer
from tests.support.timed import make_timed
from tests.ui.conftest import stored_messages, wait_until
from tests.ui.test_accessibility import unnamed_controls

VISION = "llama-3.2-11b-vision"  # the capability table says it takes images
TEXT_ONLY = "qwen3-8b"


def write_png(path: Path, size: tuple[int, int], color: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    path.write_bytes(out.getvalue())
    return out.getvalue()


def drop_files(widget, paths: list[Path]) -> None:  # type: ignore[no-untyped-def]
    """What a file manager's drag and drop delivers: file URLs in the mime data."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    assert drop.isAccepted()


def user_content(request) -> list[dict]:  # type: ignore[no-untyped-def]
    return [m for m in request.body["messages"] if m["role"] == "user"][-1]["content"]


def user_text(request) -> str:  # type: ignore[no-untyped-def]
    content = [m for m in request.body["messages"] if m["role"] == "user"][-1]["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


def image_of(part: dict) -> Image.Image:
    url = part["image_url"]["url"]
    assert url.startswith("data:image/")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


async def start_on(chat, model: str) -> None:  # type: ignore[no-untyped-def]
    await chat.start()
    chat.model_combo.setEditText(model)


async def test_dropped_files_reach_the_server_and_open_from_the_reopened_chat(
        sim, window, qtbot, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sim.models = [VISION]
    sim.script(Script(text="A teal square and your notes."))
    chat = window.chat
    await start_on(chat, VISION)
    photo = tmp_path / "photo.png"
    raw = write_png(photo, (3000, 2000))
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nThe spare key is under the blue pot.\n", encoding="utf-8")
    drop_files(chat, [photo, notes])
    await wait_until(lambda: len(chat.draft.refs()) == 2)
    chips = list(chat.chips.chips.values())
    assert chat.chips.isVisible() and [c.item.name for c in chips] == ["photo.png", "notes.md"]
    assert chips[0].has_thumbnail and not chips[0].icon.pixmap().isNull()  # the image's thumbnail
    assert not chips[1].has_thumbnail  # a document shows its icon
    assert "3000×2000" in chips[0].detail_label.text() and "tokens" in chips[0].detail_label.text()
    assert "tokens" in chips[1].detail_label.text()
    chat.input.setPlainText("What is in these?")
    qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    assert chat.draft.items() == [] and chat.chips.isHidden()  # Send took them
    await wait_until(lambda: not chat.running)
    parts = user_content(sim.chat_requests()[-1])
    texts = user_text(sim.chat_requests()[-1])
    assert "The spare key is under the blue pot." in texts and "What is in these?" in texts
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 1 and max(image_of(images[0]).size) <= 2048  # downscaled for the protocol
    user_view = next(v for v in chat.transcript.messages if v.role == "user")
    chip_texts = [b.text() for b in user_view.attachments.buttons]
    assert len(chip_texts) == 2 and "photo.png · " in chip_texts[0] and "notes.md · " in chip_texts[1]
    # Reopened later, the message still carries its attachments; a click opens the stored copy.
    photo.unlink()
    stored = await stored_messages(window)
    asked: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: asked.append(url) or True))
    await chat.open_conversation(stored[0].conversation_id)
    reopened = next(v for v in chat.transcript.messages if v.role == "user")
    qtbot.mouseClick(reopened.attachments.buttons[0], Qt.MouseButton.LeftButton)
    await wait_until(lambda: bool(asked))
    opened = Path(asked[0].toLocalFile())
    assert opened.name == "photo.png" and opened.read_bytes() == raw  # noqa: ASYNC240 (a test's check)


async def test_a_pasted_image_becomes_a_chip_and_the_remove_button_takes_it_away(
        sim, window, qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    chat = window.chat
    await chat.start()
    image = QImage(320, 200, QImage.Format.Format_RGB32)
    image.fill(QColor("orange"))
    QGuiApplication.clipboard().setImage(image)
    chat.input.setFocus()
    qtbot.keyClick(chat.input, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    await wait_until(lambda: len(chat.draft.refs()) == 1)
    ref = chat.draft.refs()[0]
    assert ref.name.startswith("Pasted image") and (ref.width, ref.height) == (320, 200)
    assert chat.input.toPlainText() == ""  # the image did not go into the text
    chip = next(iter(chat.chips.chips.values()))
    qtbot.mouseClick(chip.remove_button, Qt.MouseButton.LeftButton)
    assert chat.draft.items() == [] and chat.chips.chips == {} and chat.chips.isHidden()
    # A file manager's copy puts file URLs on the clipboard: pasted, the file is attached.
    listing = tmp_path / "listing.py"
    listing.write_text("print('hello')\n", encoding="utf-8")
    files = QMimeData()
    files.setUrls([QUrl.fromLocalFile(str(listing))])
    QGuiApplication.clipboard().setMimeData(files)
    qtbot.keyClick(chat.input, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    await wait_until(lambda: [r.name for r in chat.draft.refs()] == ["listing.py"])
    assert chat.input.toPlainText() == ""
    chat.draft.clear()
    # Plain text still pastes as text.
    QGuiApplication.clipboard().setText("just words")
    qtbot.keyClick(chat.input, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert chat.input.toPlainText() == "just words" and chat.draft.items() == []


async def test_the_attach_button_adds_files_and_a_bad_one_is_an_error_chip(
        sim, window, qtbot, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    chat = window.chat
    await chat.start()
    good = tmp_path / "report.txt"
    good.write_text("Quarterly numbers went up.\n" * 50, encoding="utf-8")
    bad = tmp_path / "legacy.doc"  # Word 97-2003: the converter cannot read it
    bad.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: ([str(good), str(bad)], "")))
    seen: list[tuple[str, bool]] = []  # (state, progress bar shown) as each change is rendered

    def watch(event) -> None:  # type: ignore[no-untyped-def]
        chip = chat.chips.chips.get(event.item.id) if event.item is not None else None
        if chip is not None:
            seen.append((event.item.state, chip.progress.isVisibleTo(chip)))

    chat.draft.subscribe(watch)  # after the chips view, so it sees what the view just drew
    qtbot.mouseClick(chat.attach_button, Qt.MouseButton.LeftButton)
    await wait_until(lambda: not chat.draft.busy and len(chat.draft.items()) == 2)
    assert ("converting", True) in seen and ("ready", False) in seen
    ok, broken = chat.chips.chips.values()
    assert ok.item.state == "ready" and "tokens" in ok.detail_label.text()
    assert broken.item.state == "error" and broken.property("state") == "error"
    assert broken.detail_label.text() == ("legacy.doc is an old Office 97-2003 file, which cannot be read; "
                                          "save it as .docx and attach that.")
    assert QApplication.activeModalWidget() is None  # a chip, never a dialog
    assert [r.name for r in chat.draft.refs()] == ["report.txt"]


async def test_a_model_without_vision_refuses_offers_one_that_does_and_keeps_the_draft(
        two_servers, window, qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A vLLM serving two models: the capability table says which takes images (a llama-server
    answers for itself, see the next test)."""
    _llama, sim = two_servers
    sim.models = [TEXT_ONLY, VISION]
    sim.script(Script(text="A purple square."))
    chat = window.chat
    await chat.start()
    chat.select_provider("vllm")
    await wait_until(lambda: chat.current_choice().name == "vllm" and chat.model_combo.findText(VISION) >= 0)
    chat.model_combo.setCurrentIndex(chat.model_combo.findText(TEXT_ONLY))
    photo = tmp_path / "square.png"
    write_png(photo, (400, 400), "purple")
    drop_files(chat, [photo])
    await wait_until(lambda: len(chat.draft.refs()) == 1)
    chat.input.setPlainText("What colour is it?")
    qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    await wait_until(lambda: chat.no_images.isVisible())
    assert "does not take images" in chat.no_images.text_label.text()
    # The sentence is the refusal's; a button per model that takes images: this server's
    # (named by its model alone) and the llama-server's (named with its server).
    sentence = chat.no_images.text_label.text()
    assert f"vLLM/{VISION}" in sentence and f"llama.cpp/{VISION}" in sentence
    assert sorted(b.text() for b in chat.no_images.buttons) == sorted([VISION, f"llama.cpp · {VISION}"])
    assert unnamed_controls(chat) == []  # the banner, its buttons and the chips are all named
    assert sim.chat_requests() == []  # refused before sending
    assert chat.input.toPlainText() == "What colour is it?" and len(chat.draft.refs()) == 1
    assert [v.role for v in chat.transcript.messages] == []
    await wait_until(lambda: chat.conversation_id is None)
    assert await window.store.list_conversations() == []  # no empty chat left in the list
    assert chat.status_label.text() != chat.no_images.text_label.text()  # said once, in the banner
    same_server = next(b for b in chat.no_images.buttons if b.text() == VISION)
    qtbot.mouseClick(same_server, Qt.MouseButton.LeftButton)
    assert chat.model_combo.currentText() == VISION and chat.no_images.isHidden()
    qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    await wait_until(lambda: not chat.running and bool(sim.chat_requests()))
    parts = user_content(sim.chat_requests()[-1])
    assert sim.chat_requests()[-1].body["model"] == VISION
    assert [p["type"] for p in parts] == ["image_url", "text"]  # images first (the session's order)
    stored = await stored_messages(window)
    assert [m.role for m in stored if not m.is_note] == ["user", "assistant"]
    user = next(m for m in stored if m.role == "user")
    assert [a.name for a in user.attachments] == ["square.png"]


async def test_a_reply_with_sources_shows_them_under_it(window, store, qtbot) -> None:  # type: ignore[no-untyped-def]
    conv = await store.create_conversation("Manual")
    await store.add_message(conv.id, "user", "How do I reset it?")
    passage = "Hold the reset button for ten seconds until the light blinks twice."
    sources = [{"name": "manual.pdf", "sha256": "ab" * 32, "locator": "page 3", "text": passage,
                "score": 0.82},
               {"name": "faq.md", "sha256": "cd" * 32, "locator": "§ Reset", "text": "See the manual.",
                "score": 0.5}]
    await store.add_message(conv.id, "assistant", "Hold the reset button for ten seconds.",
                            meta={"sources": sources})
    chat = window.chat
    await chat.open_conversation(conv.id)
    reply = next(v for v in chat.transcript.messages if v.role == "assistant")
    line = reply.sources
    assert [b.text() for b in line.items] == ["manual.pdf · page 3", "faq.md · § Reset"]
    assert passage in line.items[0].toolTip()
    assert line.passages.isHidden()
    qtbot.mouseClick(line.expand_button, Qt.MouseButton.LeftButton)
    await wait_until(reply.isVisible)
    assert line.isVisible() and line.passages.isVisible() and passage in line.passages.text()


@pytest.fixture
def two_servers(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SimServer, SimServer]]:
    """A llama-server serving a vision model and a vLLM serving a text-only one."""
    with make_timed("llamacpp", model=VISION) as llama, make_timed("vllm", model=TEXT_ONLY) as vllm:
        monkeypatch.setenv("VICTOR_LLAMACPP_HOST", f"127.0.0.1:{llama.port}")
        monkeypatch.setenv("VICTOR_VLLM_HOST", f"127.0.0.1:{vllm.port}")
        yield llama, vllm


async def test_compare_panes_take_the_same_attachments(
        two_servers, window, qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    llama, vllm = two_servers
    llama.script(Script(text="one", repeat=2))
    vllm.script(Script(text="two", repeat=2))
    await window.chat.start()
    await wait_until(lambda: window.chat.model_combo.count() > 0)
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Backslash, Qt.KeyboardModifier.ControlModifier)
    compare = window.compare.view
    for pane, (name, model) in zip(compare.panes, [("llamacpp", VISION), ("vllm", TEXT_ONLY)], strict=True):
        if pane.picker.current_choice().name != name:
            pane.picker.select_provider(name)
        await wait_until(lambda p=pane, n=name, m=model: p.picker.current_choice().name == n
                         and p.picker.model_combo.findText(m) >= 0)
        pane.picker.model_combo.setCurrentIndex(pane.picker.model_combo.findText(model))
        assert pane.picker.current_model() == model
    notes = tmp_path / "spec.md"
    notes.write_text("The widget weighs 42 grams.\n", encoding="utf-8")
    # A document: both panes get it.
    drop_files(compare, [notes])
    await wait_until(lambda: len(compare.attachments.draft.refs()) == 1)
    compare.input.setPlainText("How heavy is it?")
    qtbot.keyClick(compare.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    await wait_until(lambda: len(llama.chat_requests()) == 1 and len(vllm.chat_requests()) == 1)
    await wait_until(lambda: not compare.running)
    for server in (llama, vllm):
        texts = user_text(server.chat_requests()[0])
        assert "The widget weighs 42 grams." in texts and "How heavy is it?" in texts
    assert compare.attachments.draft.items() == []
    assert all(p.transcript.messages[0].attachments.refs[0].name == "spec.md" for p in compare.panes)
    # An image: the vision pane gets it; the text-only pane says why it was left out.
    photo = tmp_path / "part.png"
    write_png(photo, (2400, 1200))
    drop_files(compare, [photo])
    await wait_until(lambda: len(compare.attachments.draft.refs()) == 1)
    compare.input.setPlainText("And this?")
    qtbot.keyClick(compare.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    await wait_until(lambda: len(llama.chat_requests()) == 2)
    await wait_until(lambda: not compare.running)
    images = [p for p in user_content(llama.chat_requests()[1]) if p["type"] == "image_url"]
    assert len(images) == 1 and max(image_of(images[0]).size) <= 2048
    assert len(vllm.chat_requests()) == 1
    assert "does not take images" in compare.panes[1].result_label.text()


async def test_an_alternative_on_another_server_switches_provider_and_model(
        two_servers, window, qtbot) -> None:  # type: ignore[no-untyped-def]
    """The refusal may name a model on another configured server (``provider/model``): its button
    picks that provider in the drop-down, waits for its model list, then picks the model."""
    _llama, vllm = two_servers
    vllm.models = ["mistral-small-24b", TEXT_ONLY]  # not the first on its list
    chat = window.chat
    await chat.start()
    await wait_until(lambda: chat.model_combo.count() > 0)
    chat.select_provider("llamacpp")
    await wait_until(lambda: chat.current_choice().name == "llamacpp"
                     and chat.model_combo.findText(VISION) >= 0)
    # Labelled as services.vision labels its candidates: the provider's shown name, then the model.
    chat.no_images.show_refusal("This model does not take images, so nothing was sent.",
                                [f"vLLM/{TEXT_ONLY}"], {f"vLLM/{TEXT_ONLY}": f"vLLM · {TEXT_ONLY}"})
    assert [b.text() for b in chat.no_images.buttons] == [f"vLLM · {TEXT_ONLY}"]
    qtbot.mouseClick(chat.no_images.buttons[0], Qt.MouseButton.LeftButton)
    await wait_until(lambda: chat.current_choice().name == "vllm"
                     and chat.model_combo.currentText() == TEXT_ONLY)
    assert chat._pending_model is None


async def test_a_llama_server_is_asked_whether_it_takes_images(
        sim, window, qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A GGUF whose name the capability table does not know is sent images when the server's
    ``/props`` says it has a projector; a server that says no refuses before sending, whatever
    the model's name suggests."""
    sim.models = ["my-finetune-q4_k_m"]
    sim.script(Script(text="A green square.", repeat=2))
    chat = window.chat
    await start_on(chat, "my-finetune-q4_k_m")
    photo = tmp_path / "green.png"
    write_png(photo, (64, 64), "green")
    drop_files(chat, [photo])
    await wait_until(lambda: len(chat.draft.refs()) == 1)
    chat.input.setPlainText("Colour?")
    qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    await wait_until(lambda: not chat.running and bool(sim.chat_requests()))
    # Images first, then the words (the session's order).
    assert [p["type"] for p in user_content(sim.chat_requests()[-1])] == ["image_url", "text"]
    assert chat.no_images.isHidden()
    assert any(r.path.endswith("/props") for r in sim.requests)
    # The projector is gone (the server restarted without --mmproj): refused before sending.
    sim.options["vision"] = False
    sent = len(sim.chat_requests())
    chat.new_chat()
    drop_files(chat, [photo])
    await wait_until(lambda: len(chat.draft.refs()) == 1)
    chat.input.setPlainText("Colour now?")
    qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    await wait_until(lambda: chat.no_images.isVisible())
    assert len(sim.chat_requests()) == sent and len(chat.draft.refs()) == 1


async def test_chips_never_widen_the_window(sim, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A long file name and a long error sentence wrap or elide inside their chips, and many
    chips wrap into rows: the window's minimum width stays what it was."""
    chat = window.chat
    await chat.start()
    before = window.minimumSizeHint().width()
    bad = tmp_path / ("minutes-of-the-annual-general-meeting-of-the-allotment-society-" * 2 + ".txt")
    bad.write_bytes(bytes(range(256)) * 4)  # binary: refused with a sentence naming the long file
    docs = []
    for i in range(8):
        doc = tmp_path / f"chapter-{i:02d}-of-a-long-manuscript.md"
        doc.write_text(f"Chapter {i}\n", encoding="utf-8")
        docs.append(doc)
    chat.attach_paths([bad, *docs])
    await wait_until(lambda: not chat.draft.busy and len(chat.draft.items()) == 9)
    await asyncio.sleep(0.05)  # a layout pass
    assert window.minimumSizeHint().width() <= before
    error_chip = next(c for c in chat.chips.chips.values() if c.item.state == "error")
    assert error_chip.detail_label.wordWrap() and "is a binary file" in error_chip.detail_label.text()
    assert max(c.width() for c in chat.chips.chips.values()) <= chat.chips.width()


async def test_image_estimates_follow_the_chosen_provider(
        clean_env, monkeypatch, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A chip's token estimate is for the protocol of the provider chosen now: a llama-server
    (OpenAI's tiles) and then Ollama (projector patches) give the same photo different counts."""
    from tests.servers import ollama as ollama_sim
    from victor_gui.services.image_limits import image_tokens_estimate

    with make_timed("llamacpp", model=VISION) as llama, ollama_sim.make_server() as ollama:
        monkeypatch.setenv("VICTOR_LLAMACPP_HOST", f"127.0.0.1:{llama.port}")
        monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{ollama.port}")
        chat = window.chat
        await chat.start()
        chat.select_provider("llamacpp")
        await wait_until(lambda: getattr(chat.current_choice(), "name", None) == "llamacpp")
        photo = tmp_path / "wide.png"
        write_png(photo, (3000, 1000))
        drop_files(chat, [photo])
        await wait_until(lambda: len(chat.draft.refs()) == 1)
        chip = next(iter(chat.chips.chips.values()))
        as_openai = image_tokens_estimate(3000, 1000, "openai")
        assert chat.draft.refs()[0].tokens == as_openai
        assert f"~{as_openai:,} tokens" in chip.detail_label.text()
        chat.select_provider("ollama")
        as_ollama = image_tokens_estimate(3000, 1000, "ollama")
        assert as_ollama != as_openai
        # Only the chip is watched: the switch itself re-estimates (nothing else asks the draft).
        await wait_until(lambda: f"~{as_ollama:,} tokens" in chip.detail_label.text())
