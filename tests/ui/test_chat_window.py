"""The real window against a real SSE server on 127.0.0.1: guidance, drop-downs, streaming, Stop."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt

from tests.servers.base import Fault, Script
from tests.ui.conftest import stored_messages, wait_until
from victor_gui.errors import MissingAPIKeyError, ProviderAuthError
from victor_gui.services.generation import ReplyStatus
from victor_gui.ui.error_text import ERROR_TEXT, NO_LOCAL_SERVER


def combo_items(combo) -> list[str]:  # type: ignore[no-untyped-def]
    return [combo.itemText(i) for i in range(combo.count())]


async def test_no_server_and_no_key_says_what_to_do(clean_env, window) -> None:
    chat = window.chat
    await chat.start()
    assert NO_LOCAL_SERVER in chat.status_label.text()
    labels = combo_items(chat.provider_combo)
    assert len(labels) >= 20
    n_local = sum(label.endswith("(local)") for label in labels)
    assert n_local == 4 and all(label.endswith("(local)") for label in labels[:4])
    assert "OpenAI — no API key" in labels
    # A cloud provider without a key says so instead of trying.
    chat.select_provider("openai")
    await wait_until(lambda: ERROR_TEXT[MissingAPIKeyError] in chat.status_label.text())
    assert ERROR_TEXT[MissingAPIKeyError] in chat.status_label.text()
    assert chat.model_combo.count() == 0


async def test_model_dropdown_filled_from_the_server(sim, window) -> None:
    sim.models = ["qwen3-8b", "llama-3.2-3b"]
    chat = window.chat
    await chat.start()
    assert chat.current_choice().name == "llamacpp"
    assert combo_items(chat.model_combo) == ["qwen3-8b", "llama-3.2-3b"]
    assert "2 model(s)" in chat.status_label.text()
    assert any(r.path == "/v1/models" for r in sim.requests)


async def test_send_streams_into_the_transcript(sim, window, qtbot) -> None:
    text = "Streaming **works**. " * 20
    script = Script(text=text, reasoning="thinking hard", pieces=80, delay_s=0.005)
    sim.script(script)
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("Say something")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert chat.running and not chat.send_button.isEnabled()
    reply = chat.transcript.messages[-1]
    # The text shows up while the reply is still streaming (frame-rate rendering, not at the end).
    await wait_until(lambda: len(reply.text) > 0)
    assert chat.running
    await wait_until(lambda: not chat.running)
    assert reply.text == text
    assert reply.reasoning_text == "thinking hard"
    assert "thinking" not in reply.body.toPlainText()
    # Rendered as Markdown once it ended (parsed in a worker thread, then swapped in).
    await wait_until(lambda: "Streaming works." in reply.body.toPlainText())
    # The final stats come from the stored message, read back after the reply ends.
    tokens = f"{script.completion_count()} tokens"
    await wait_until(lambda: tokens in reply.stats_label.text())
    assert "TTFT" in reply.stats_label.text()
    stored = await stored_messages(window)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[-1].content == text and stored[-1].status == "complete"
    assert sim.chat_requests()[0].body["model"] == chat.model_combo.currentText()
    assert chat.send_button.isEnabled() and not chat.stop_button.isEnabled()


async def test_escape_stops_at_once_and_keeps_the_partial(sim, window, qtbot) -> None:
    sim.script(Script(text="y" * 2000, pieces=2000, delay_s=0.005))
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("Write a lot")
    chat.send()
    reply = chat.transcript.messages[-1]
    await wait_until(lambda: len(reply.text) >= 10)
    qtbot.keyClick(chat.input, Qt.Key.Key_Escape)
    assert chat.generation.state.status is ReplyStatus.INTERRUPTED
    assert not chat.running and chat.send_button.isEnabled()
    kept = reply.text
    assert 10 <= len(kept) < 2000
    assert "stopped" in reply.stats_label.text()
    await wait_until(lambda: not chat.session.busy)
    stored = await stored_messages(window)
    assert stored[-1].role == "assistant" and stored[-1].content == kept
    assert stored[-1].status == "interrupted"
    # The request was really cancelled: the server saw the client leave.
    assert await asyncio.to_thread(sim.disconnected.wait, 5)
    await asyncio.sleep(0.1)
    assert reply.text == kept  # nothing more arrives after Stop


async def test_error_shows_inline_and_retry_recovers(sim, window) -> None:
    sim.script(Script(fault=Fault.UNAUTHORIZED), Script(text="Second time lucky."))
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("hi")
    chat.send()
    failed = chat.transcript.messages[-1]
    await wait_until(lambda: not chat.running)
    assert failed.error_label.isVisibleTo(window)
    assert ERROR_TEXT[ProviderAuthError] in failed.error_label.text()
    assert failed.retry_button.isVisibleTo(window)
    failed.retry_button.click()
    await wait_until(lambda: not chat.running and chat.transcript.messages[-1] is not failed)
    await wait_until(lambda: not chat.running)
    assert chat.transcript.messages[-1].text == "Second time lucky."
    assert failed not in chat.transcript.messages
    assert [m.role for m in await stored_messages(window)] == ["user", "assistant"]


async def test_ctrl_n_starts_a_new_chat(sim, window, qtbot) -> None:
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("hi")
    chat.send()
    await wait_until(lambda: not chat.running)
    assert chat.transcript.messages
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert chat.transcript.messages == [] and chat.conversation_id is None and chat.session is None


async def test_tool_calls_are_shown(sim, window) -> None:
    from tests.servers.base import ScriptedToolCall

    sim.script(Script(text="", tool_calls=[ScriptedToolCall("get_weather", {"city": "Oslo"})]))
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("weather?")
    chat.send()
    reply = chat.transcript.messages[-1]
    await wait_until(lambda: not chat.running)
    assert reply.tools_label.isVisibleTo(window)
    assert "get_weather" in reply.tools_label.text() and "Oslo" in reply.tools_label.text()
    assert (await stored_messages(window))[-1].tool_calls[0]["name"] == "get_weather"


async def test_a_huge_paragraph_streams_in_bounded_blocks(sim, window) -> None:
    from victor_gui.ui.message_body import MARKDOWN_MAX_LINE, markdown_worthy
    from victor_gui.ui.widgets.auto_height_text import SOFT_BLOCK_CHARS

    text = "word " * 2400  # 12,000 characters, not one newline
    sim.script(Script(text=text, pieces=600))
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("go")
    chat.send()
    reply = chat.transcript.messages[-1]
    await wait_until(lambda: not chat.running)
    assert reply.text == text  # the reply itself is untouched
    doc = reply.body.document()
    sizes = [len(doc.findBlockByNumber(i).text()) for i in range(doc.blockCount())]
    # The start may be one block from a live Markdown render (at most MARKDOWN_MAX_LINE long);
    # from there on, appends go to blocks of bounded size, so a frame never re-lays out much.
    assert max(sizes) <= MARKDOWN_MAX_LINE + 2 * SOFT_BLOCK_CHARS
    assert len(sizes) >= 3 and max(sizes[-3:]) <= 2 * SOFT_BLOCK_CHARS + 50
    assert len(text) > MARKDOWN_MAX_LINE and not markdown_worthy(text)  # so it stays plain
    assert doc.toPlainText().split() == text.split()  # same words, only the line breaks differ
