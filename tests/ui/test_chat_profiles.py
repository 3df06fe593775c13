"""Profiles in the chat window (real widgets, offscreen): picking one shows its provider and model
and the reply goes there; a dead first target falls back with a note in the transcript (and in
the store); a broken profile is listed with its file:line and cannot be picked; track_costs
false stores no cost; the choice comes back when the chat is reopened."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel

from tests.servers import ollama, vllm
from tests.servers.base import Script, free_port
from tests.ui.conftest import stored_messages, wait_until

PROFILES = """\
profiles:
  local-ollama:
    provider: ollama
    model: sim-model:latest
    base_url: {ollama}
    temperature: 0.25
  resilient:
    provider: llamacpp
    model: sim-model
    base_url: http://127.0.0.1:{dead}/v1
    fallback:
      - provider: llamacpp
        base_url: {llama}/v1
  broken:
    provider: ollama
    max_tokens: -5
"""


async def _start_with_profiles(chat, tmp_path: Path, text: str) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "profiles.yaml"
    path.write_text(text, encoding="utf-8")
    chat.profile_files = (path, tmp_path / "app-profiles.yaml")
    await chat.start()
    assert chat.profiles_loading is not None
    await chat.profiles_loading
    return path


def _pick(chat, name: str) -> None:  # type: ignore[no-untyped-def]
    """Choose a profile the way a user does (the drop-down's activated signal)."""
    index = chat.profile_combo.findData(name)
    assert index > 0, [chat.profile_combo.itemText(i) for i in range(chat.profile_combo.count())]
    chat.profile_combo.setCurrentIndex(index)
    chat.profile_combo.activated.emit(index)


async def _send(chat, text: str) -> None:  # type: ignore[no-untyped-def]
    chat.input.setPlainText(text)
    chat.send()
    await wait_until(lambda: chat.conversation_id is not None and not chat.running)
    await wait_until(lambda: chat.session is not None and not chat.session.busy)


async def test_picking_a_profile_shows_its_target_and_the_reply_goes_there(sim, window, tmp_path) -> None:
    chat = window.chat
    with ollama.make_server() as oll:
        oll.script(Script(text="Hello from the profile's Ollama."))
        await _start_with_profiles(chat, tmp_path, PROFILES.format(ollama=oll.url, dead=free_port(),
                                                                   llama=sim.url))
        assert chat.profile_combo.itemText(0) == "No profile"
        assert chat.current_choice().name == "llamacpp"  # the local server that answered
        _pick(chat, "local-ollama")
        await wait_until(lambda: chat.controller.profile_name == "local-ollama")
        assert chat.current_choice().name == "ollama"
        assert chat.model_combo.currentText() == "sim-model:latest"
        assert chat.profile_combo.currentText().startswith("local-ollama — Ollama · sim-model:latest")
        await _send(chat, "Which server?")
    assert len(oll.chat_requests()) == 1 and not sim.chat_requests()
    assert oll.chat_requests()[0].body["options"]["temperature"] == 0.25
    reply = chat.transcript.messages[-1]
    assert reply.text == "Hello from the profile's Ollama."
    assert reply.stats_label.text().startswith("Ollama · sim-model:latest")
    # Remembered with the chat: a new chat has no profile, reopening this one brings it back.
    cid = chat.conversation_id
    chat.new_chat()
    await chat.open_conversation(cid)
    assert chat.controller.profile_name == "local-ollama"
    assert chat.profile_combo.currentData() == "local-ollama"


async def test_a_dead_first_target_falls_back_and_the_transcript_says_so(sim, window, tmp_path) -> None:
    chat = window.chat
    dead = free_port()
    sim.script(Script(text="The fallback answered."))
    await _start_with_profiles(chat, tmp_path, PROFILES.format(ollama="http://127.0.0.1:1", dead=dead,
                                                               llama=sim.url))
    _pick(chat, "resilient")
    await wait_until(lambda: chat.controller.profile_name == "resilient")
    await _send(chat, "Anyone there?")
    expected = (f"llama.cpp · sim-model at 127.0.0.1:{dead} did not answer (connection refused); "
                f"llama.cpp · sim-model at 127.0.0.1:{sim.port} answered.")
    await wait_until(lambda: chat.transcript.notes)
    assert [n.text() for n in chat.transcript.notes] == [expected]
    assert chat.transcript.messages[-1].text == "The fallback answered."
    layout = chat.transcript._layout

    def note_follows_the_reply() -> bool:
        return layout.indexOf(chat.transcript.notes[0]) > layout.indexOf(chat.transcript.messages[-1])

    assert note_follows_the_reply()  # where the store keeps it, so a reopened chat looks the same
    stored = await stored_messages(window)
    note = next(m for m in stored if m.is_note)
    assert note.content == expected and note.meta and note.meta["kind"] == "failover"
    # Reopened, the note is still there (it is a stored message, not a status line).
    cid = chat.conversation_id
    chat.new_chat()
    await chat.open_conversation(cid)
    assert [n.text() for n in chat.transcript.notes] == [expected]
    assert note_follows_the_reply()


async def test_a_broken_profile_is_listed_with_its_line_and_cannot_be_chosen(sim, window, tmp_path) -> None:
    chat = window.chat
    path = await _start_with_profiles(chat, tmp_path, PROFILES.format(ollama="http://127.0.0.1:1",
                                                                      dead=free_port(), llama=sim.url))
    combo = chat.profile_combo
    texts = [combo.itemText(i) for i in range(combo.count())]
    row = next(i for i, t in enumerate(texts) if t.startswith("broken"))
    assert texts[row] == ("broken — cannot be used: profiles.yaml:16: max_tokens: "
                          "Input should be greater than 0")
    assert str(path) in combo.itemData(row, Qt.ItemDataRole.ToolTipRole)
    model = combo.model()
    assert isinstance(model, QStandardItemModel)
    item = model.item(row)
    assert item is not None and not item.isEnabled()  # greyed; Qt will not select it
    assert combo.itemData(row) is None
    combo.activated.emit(row)  # even if it were activated, nothing is chosen
    await wait_until(lambda: not chat.tasks)
    assert chat.controller.profile_name is None and combo.currentIndex() == 0


@pytest.mark.parametrize("track", [False, True])
async def test_track_costs_false_stores_no_cost(window, tmp_path, clean_env, monkeypatch, track) -> None:
    monkeypatch.setenv("UI_TEST_OPENAI_KEY", "sk-test-not-a-real-key-1111")
    chat = window.chat
    with vllm.make_server(model="gpt-4o") as sim:
        sim.script(Script(text="A priced reply.", prompt_tokens=2000, completion_tokens=800))
        await _start_with_profiles(chat, tmp_path, (
            "profiles:\n  paid:\n    provider: openai\n    model: gpt-4o\n"
            f"    base_url: {sim.url}/v1\n    api_key_env: UI_TEST_OPENAI_KEY\n"
            f"    track_costs: {'true' if track else 'false'}\n"))
        _pick(chat, "paid")
        await wait_until(lambda: chat.controller.profile_name == "paid")
        await _send(chat, "What does this cost?")
    reply = next(m for m in await stored_messages(window) if m.role == "assistant")
    stats = chat.transcript.messages[-1].stats_label.text()
    if track:
        assert reply.cost is not None and reply.cost > 0 and "$" in stats
    else:
        assert reply.cost is None and "$" not in stats
