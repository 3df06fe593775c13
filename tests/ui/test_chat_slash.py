"""Slash commands typed in the chat window: they run through the drop-downs' own switching path
and reach the simulator, read figures from the real store, and an unknown one keeps the text."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from tests.servers import ollama
from tests.ui.conftest import stored_messages, wait_until
from tests.ui.test_chat_store import _send
from victor_gui.services.slash_commands import COMMANDS


def _type(qtbot, chat, text: str) -> None:  # type: ignore[no-untyped-def]
    chat.input.clear()
    chat.input.setFocus()
    qtbot.keyClicks(chat.input, text)


async def test_model_command_switches_the_drop_down_and_the_next_request(qtbot, sim, window) -> None:
    chat = window.chat
    await chat.start()
    await wait_until(lambda: chat.model_combo.currentText() != "")
    await _send(chat, "first")
    _type(qtbot, chat, "/model tiny-other-model")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    await wait_until(lambda: chat.model_combo.currentText() == "tiny-other-model")
    await wait_until(lambda: chat.input.toPlainText() == "")
    await wait_until(lambda: chat.session is not None and chat.session.model == "tiny-other-model")
    await _send(chat, "second")
    assert sim.chat_requests()[-1].body["model"] == "tiny-other-model"
    # The switch is noted in the chat as a pick in the drop-down is.
    notes = [m for m in await stored_messages(window) if m.role == "note"]
    assert notes and "tiny-other-model" in notes[-1].content


async def test_provider_command_with_model_switches_provider(qtbot, sim, window, monkeypatch) -> None:
    with ollama.make_server() as oll:
        monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{oll.port}")
        chat = window.chat
        await chat.start()
        await wait_until(lambda: chat.model_combo.currentText() != "")
        await _send(chat, "Question one")
        _type(qtbot, chat, "/provider ollama --model sim-model:latest")
        qtbot.keyClick(chat.input, Qt.Key.Key_Return)
        await wait_until(lambda: chat.current_choice() is not None and chat.current_choice().name == "ollama")
        await wait_until(lambda: chat.session is not None and chat.session.provider.name == "ollama")
        assert chat.model_combo.currentText() == "sim-model:latest"
        await _send(chat, "Question two")
        assert oll.chat_requests()[-1].body["model"] == "sim-model:latest"
        # An unknown provider says so and keeps the text.
        _type(qtbot, chat, "/provider nowhere")
        qtbot.keyClick(chat.input, Qt.Key.Key_Return)
        await wait_until(lambda: chat.slash.hint.isVisible())
        assert "No provider named nowhere" in chat.slash.hint.text()
        assert chat.input.toPlainText() == "/provider nowhere"


async def test_unknown_command_says_so_and_keeps_the_text(qtbot, sim, window) -> None:
    chat = window.chat
    await chat.start()
    _type(qtbot, chat, "/frobnicate the thing")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert chat.input.toPlainText() == "/frobnicate the thing"
    assert chat.slash.hint.isVisible() and "Unknown command /frobnicate" in chat.slash.hint.text()
    assert sim.chat_requests() == []  # nothing was sent
    # The Send button goes the same way.
    chat.send_button.click()
    assert chat.input.toPlainText() == "/frobnicate the thing" and sim.chat_requests() == []


async def test_completion_list_follows_typing_and_tab_completes(qtbot, sim, window) -> None:
    chat = window.chat
    await chat.start()
    _type(qtbot, chat, "/")
    assert chat.slash.popup.isVisible() and chat.slash.popup.count() == len(COMMANDS)
    qtbot.keyClicks(chat.input, "mo")
    assert [chat.slash.popup.item(i).text().split()[0] for i in range(chat.slash.popup.count())] == ["/model"]
    qtbot.keyClick(chat.input, Qt.Key.Key_Tab)
    assert chat.input.toPlainText() == "/model "
    # The list now offers the models of the drop-down.
    assert chat.slash.popup.count() == chat.model_combo.count()
    # Enter on a partial name completes the highlighted command rather than running it.
    _type(qtbot, chat, "/pro")
    qtbot.keyClick(chat.input, Qt.Key.Key_Down)
    assert chat.slash.popup.currentItem().text().startswith("/profile")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    assert chat.input.toPlainText() == "/profile "
    # After the name, /model and /provider offer what the drop-downs hold.
    await wait_until(lambda: chat.model_combo.count() > 0)
    model = chat.model_combo.itemText(0)
    _type(qtbot, chat, "/model " + model[:3])
    assert chat.slash.popup.isVisible() and chat.slash.popup.item(0).text() == model
    qtbot.keyClick(chat.input, Qt.Key.Key_Tab)
    assert chat.input.toPlainText() == f"/model {model}" and not chat.slash.popup.isVisible()
    _type(qtbot, chat, "/provider llama")
    assert chat.slash.popup.item(0).text().startswith("llamacpp  —  llama.cpp")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)  # a partial name: Enter completes it
    assert chat.input.toPlainText() == "/provider llamacpp"
    # Esc closes the list (and leaves the text); the next Esc goes to the pane as before.
    _type(qtbot, chat, "/he")
    assert chat.slash.popup.isVisible()
    qtbot.keyClick(chat.input, Qt.Key.Key_Escape)
    assert not chat.slash.popup.isVisible() and chat.input.toPlainText() == "/he"
    # A plain message shows no list.
    _type(qtbot, chat, "hello")
    assert not chat.slash.popup.isVisible()


async def test_usage_prints_figures_from_the_store(qtbot, sim, window, store) -> None:
    chat = window.chat
    await chat.start()
    await _send(chat, "count me")
    stored = await stored_messages(window)
    reply = stored[-1]
    assert reply.prompt_tokens and reply.completion_tokens
    _type(qtbot, chat, "/usage")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    await wait_until(lambda: chat.slash.hint.text().startswith("This chat"))
    text = chat.slash.hint.text()
    assert f"This chat: 1 replies, {reply.prompt_tokens:,} tokens in, {reply.completion_tokens:,} out" in text
    assert "Today (" in text and "llamacpp" in text
    assert chat.transcript.notes and chat.transcript.notes[-1].text() == text


async def test_system_export_clear_and_help(qtbot, sim, window, store, tmp_path) -> None:
    chat = window.chat
    await chat.start()
    await _send(chat, "hello")
    cid = chat.conversation_id
    _type(qtbot, chat, "/system Answer in French.")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    await wait_until(lambda: chat.slash.hint.text() == "System prompt set.", limit_s=20)
    assert (await store.get_conversation(cid)).system_prompt == "Answer in French."
    await _send(chat, "again")
    assert sim.chat_requests()[-1].body["messages"][0] == {"role": "system", "content": "Answer in French."}

    target = tmp_path / "chat.json"
    _type(qtbot, chat, f"/export json {target}")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    # Its answer, not the file: the file exists while it is written, and a /help typed then
    # was answered before "Exported to" replaced it (under Wine's slower thread hand-offs).
    await wait_until(lambda: chat.slash.hint.text() == f"Exported to {target}", limit_s=20)
    exported = json.loads(target.read_text(encoding="utf-8"))
    assert "again" in json.dumps(exported)

    _type(qtbot, chat, "/help")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    await wait_until(lambda: "/provider NAME [--model M]" in chat.slash.hint.text(), limit_s=20)

    _type(qtbot, chat, "/clear")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    await wait_until(lambda: chat.conversation_id is None, limit_s=20)
    assert chat.transcript.messages == []
    assert await store.get_conversation(cid) is not None  # the old chat stays


async def test_double_slash_sends_a_message_starting_with_a_slash(qtbot, sim, window) -> None:
    chat = window.chat
    await chat.start()
    await _send(chat, "//etc/hosts is a file")
    assert sim.chat_requests()[-1].body["messages"][-1]["content"] == "/etc/hosts is a file"


async def test_profile_command_picks_as_the_drop_down_does(qtbot, sim, window, tmp_path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(f"profiles:\n  desk:\n    provider: llamacpp\n    model: desk-model\n"
                    f"    base_url: {sim.url}/v1\n    temperature: 0.25\n", encoding="utf-8")
    chat = window.chat
    chat.profile_files = (path, tmp_path / "app-profiles.yaml")
    await chat.start()
    assert chat.profiles_loading is not None
    await chat.profiles_loading
    _type(qtbot, chat, "/profile d")
    assert chat.slash.popup.item(0).text().startswith("desk")
    qtbot.keyClick(chat.input, Qt.Key.Key_Tab)
    assert chat.input.toPlainText() == "/profile desk"
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    await wait_until(lambda: chat.controller.profile_name == "desk")
    assert chat.profile_combo.currentData() == "desk"
    await _send(chat, "hello")
    body = sim.chat_requests()[-1].body
    assert body["model"] == "desk-model" and body["temperature"] == 0.25
    # An unknown profile says so and keeps the text; "none" leaves the profile.
    _type(qtbot, chat, "/profile nope")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    await wait_until(lambda: "No usable profile named nope" in chat.slash.hint.text())
    assert chat.input.toPlainText() == "/profile nope" and "desk" in chat.slash.hint.text()
    _type(qtbot, chat, "/profile none")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    await wait_until(lambda: chat.controller.profile_name is None)
