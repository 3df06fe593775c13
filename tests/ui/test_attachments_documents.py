"""Documents in the real window against the llama-server simulator on 127.0.0.1 (its
``/props`` window, its ``/v1/embeddings``), with a real store and a real settings file: a
document too large for the model's window is retrieved with embeddings from the user's own
server and the reply names the page it came from, right after streaming and after reopening;
a small document goes whole and nothing is embedded."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from tests.servers.base import Script
from tests.services.doc_files import make_pdf
from tests.ui.conftest import stored_messages, wait_until
from tests.ui.test_attachments import drop_files, start_on, user_text
from victor_gui.services.settings_service import SettingsService

MODEL = "qwen3-8b"
FACT = "To reset the router hold the recessed button for twelve seconds until the amber light blinks."
TOPICS = ["warranty terms and the return address", "wall mounting with two screws", "the guest network",
          "parental controls and schedules", "firmware updates at night", "port forwarding rules",
          "the mesh satellites", "energy saving mode", "the status lights", "recycling the box"]


def page(n: int, topic: str) -> str:
    """About 2,600 characters about one topic (a PDF page of short lines)."""
    line = f"Page {n} covers {topic}; read it before you call support."
    return "\n".join([line] * 45)


def embedding_posts(sim) -> list[object]:  # type: ignore[no-untyped-def]
    return [r.body for r in sim.requests if r.path.endswith("/embeddings")]


async def send_with(chat, qtbot, paths: list[Path], question: str) -> None:  # type: ignore[no-untyped-def]
    drop_files(chat, paths)
    await wait_until(lambda: len(chat.draft.refs()) == len(paths), 20)
    chat.input.setPlainText(question)
    qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    await wait_until(lambda: not chat.running, 20)


async def test_a_document_too_large_for_the_window_is_retrieved_and_the_reply_names_its_page(
        sim, window, qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim.models = [MODEL]
    sim.options["n_ctx"] = 4096  # ~2,000 tokens for the documents once the reply's half is kept
    sim.script(Script(text="Hold the recessed button for twelve seconds."))
    settings = SettingsService(tmp_path / "settings.yaml")
    await settings.load()
    await settings.update(attachments={"retrieve_k": 2})  # the window hands this to the session
    chat = window.chat
    chat.settings_service = settings
    await start_on(chat, MODEL)
    pages = [page(i + 1, t) for i, t in enumerate(TOPICS)]
    pages[6] = pages[6] + "\n" + FACT  # page 7
    manual = make_pdf(tmp_path / "router-manual.pdf", pages)
    await send_with(chat, qtbot, [manual], "How do I reset the router?")
    chip = next(v for v in chat.transcript.messages if v.role == "user").attachments
    assert [r.name for r in chip.refs] == ["router-manual.pdf"] and chip.refs[0].pages == 10
    sent = user_text(sim.chat_requests()[-1])
    assert FACT in sent and "How do I reset the router?" in sent
    assert sum(f"Page {n} covers" in sent for n in range(1, 11)) <= 2  # two passages, not the manual
    assert embedding_posts(sim)  # embedded by the user's own server
    # The Sources line is there as soon as the reply has streamed.
    reply = next(v for v in chat.transcript.messages if v.role == "assistant")
    assert reply.sources is not None and reply.sources.isVisible()
    labels = [b.text() for b in reply.sources.items]
    assert labels[0] == "router-manual.pdf · page 7" and len(labels) <= 2  # retrieve_k from the settings
    assert len(set(labels)) == len(labels)  # one button per place
    assert "To reset the router" in reply.sources.items[0].toolTip()  # the quoted passage
    stored = await stored_messages(window)
    answer = next(m for m in stored if m.role == "assistant")
    assert answer.meta["sources"][0]["locator"] == "page 7"
    # Reopened: the same line under the same reply, from the stored meta["sources"].
    cid = chat.conversation_id
    chat.new_chat()
    await chat.open_conversation(cid)
    reopened = next(v for v in chat.transcript.messages if v.role == "assistant")
    assert [b.text() for b in reopened.sources.items] == labels
    user = next(v for v in chat.transcript.messages if v.role == "user")
    assert [b.text().split(" · ")[0] for b in user.attachments.buttons] == ["router-manual.pdf"]


async def test_a_small_document_goes_whole_and_nothing_is_embedded(
        sim, window, qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim.models = [MODEL]
    sim.script(Script(text="Twelve seconds."))
    chat = window.chat
    await start_on(chat, MODEL)
    notes = tmp_path / "router-notes.md"
    body = "# Router notes\n\n" + FACT + "\n\nThe guest network is called Garden.\n"
    notes.write_text(body, encoding="utf-8")
    await send_with(chat, qtbot, [notes], "How do I reset the router?")
    sent = user_text(sim.chat_requests()[-1])
    assert FACT in sent and "The guest network is called Garden." in sent  # the whole text
    assert sent.index(FACT) < sent.index("How do I reset the router?")  # before the question
    assert embedding_posts(sim) == []
    reply = next(v for v in chat.transcript.messages if v.role == "assistant")
    assert getattr(reply, "sources", None) is None  # whole: no passages to name
    stored = await stored_messages(window)
    assert "sources" not in (next(m for m in stored if m.role == "assistant").meta or {})


async def longest_gap_while(work) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """(the event loop's longest stall in seconds, ``work``'s result) while ``work`` runs."""
    import asyncio
    import time

    gaps = [0.0]
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps[0] = max(gaps[0], now - last - 0.005)
            last = now

    ticker = asyncio.ensure_future(tick())
    try:
        result = await work()
    finally:
        done.set()
        await ticker
    return gaps[0], result


async def test_attaching_a_200_mb_text_file_never_stalls_the_window(
        sim, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The window's loop keeps turning while a 200 MB log is attached (refused from its size,
    nothing copied) and while a 30 MB text just under the converter's limit is copied, hashed,
    converted in a child process and counted (bench/bench_attach_draft.py prints the figures)."""
    chat = window.chat
    await chat.start()
    log = tmp_path / "server.log"
    with log.open("wb") as out:  # sparse past its first lines: the size is what is checked
        out.write(b"2026-12-07 01:00:00 started\n" * 1000)
        out.truncate(200 * 1024 * 1024)
    text = tmp_path / "export.txt"
    line = b"The quick brown fox jumps over the lazy dog; 0123456789.\n"
    with text.open("wb") as out:
        for _ in range(30):
            out.write(line * ((1 << 20) // len(line)))
    big_gap, big = await longest_gap_while(lambda: chat.attach_paths([log])[0])
    assert big.state == "error" and big.reason == "too_large" and "server.log" in big.error
    chip = next(iter(chat.chips.chips.values()))
    assert chip.property("state") == "error" and "server.log" in chip.detail_label.text()
    under_gap, under = await longest_gap_while(lambda: chat.attach_paths([text])[0])
    assert under.state == "ready" and under.tokens > 8_000_000
    print(f"longest loop gap: 200 MB refused {big_gap * 1000:.1f} ms, "
          f"30 MB converted {under_gap * 1000:.1f} ms")
    assert big_gap < 0.2 and under_gap < 0.2
