"""Assistants from the window (Chat → New chat with assistant…): picked for a new chat, the
model drop-down, the system prompt and every parameter reach the llama.cpp simulator; the chat
on screen saved as an assistant, exported to YAML and imported back; applied to the current chat."""

from __future__ import annotations

from tests.ui.conftest import stored_messages, wait_until
from tests.ui.test_chat_store import _send
from victor_gui.services.assistants import Assistant, Assistants


async def test_new_chat_with_an_assistant_reaches_the_server(sim, window, store, tmp_path) -> None:
    window.assistants = Assistants(tmp_path / "config" / "assistants.yaml")
    await window.assistants.save(Assistant(
        name="Terse coder", description="Short answers with code", system_prompt="Answer in one line.",
        params={"temperature": 0.1, "top_k": 12, "seed": 5, "stop": ["<END>"]},
        provider="llamacpp", model="coder-model"))
    chat = window.chat
    await chat.start()
    await wait_until(lambda: chat.model_combo.currentText() != "")
    await _send(chat, "an older chat")
    older = chat.conversation_id

    picker = window.open_assistants()
    await wait_until(lambda: picker.list.count() == 1)
    assert "Top-k: 12" in picker.details.text() and "llama.cpp · coder-model" in picker.details.text()
    task = picker.start_new_chat()
    await task
    assert not picker.isVisible()
    assert chat.model_combo.currentText() == "coder-model"
    assert chat.conversation_id != older
    await _send(chat, "hello")
    body = sim.chat_requests()[-1].body
    assert body["model"] == "coder-model"
    assert body["messages"][0] == {"role": "system", "content": "Answer in one line."}
    assert (body["temperature"], body["top_k"], body["seed"], body["stop"]) == (0.1, 12, 5, ["<END>"])
    assert [m.content for m in await stored_messages(window) if m.role == "user"] == ["hello"]
    conv = await store.get_conversation(chat.conversation_id)
    assert conv.params["assistant"] == "Terse coder"


async def test_save_export_import_and_apply_to_this_chat(sim, window, store, tmp_path) -> None:
    window.assistants = Assistants(tmp_path / "config" / "assistants.yaml")
    chat = window.chat
    await chat.start()
    await wait_until(lambda: chat.model_combo.currentText() != "")
    await _send(chat, "first")
    await chat.apply_params("Be a pirate.", {"temperature": 0.5, "min_p": 0.05})
    picker = window.open_assistants()
    await wait_until(lambda: "No assistants yet" in picker.message.text())
    saved = await picker.save_chat_as("Pirate")
    assert saved is not None and saved.params == {"temperature": 0.5, "min_p": 0.05}
    assert saved.provider == "llamacpp" and saved.model == chat.model_combo.currentText()
    assert picker.list.count() == 1 and picker.message.text() == "Saved Pirate."

    exported = await picker.export_to("Pirate", tmp_path)
    assert exported is not None and exported.name == "pirate.assistant.yaml"
    await picker._delete("Pirate")
    assert picker.list.count() == 0
    await picker.import_from(exported)
    assert picker.list.count() == 1 and picker.message.text() == "Imported Pirate."
    picker.close()

    # Applied to the chat on screen: its parameters replace the chat's, the history stays.
    await chat.apply_params("", {"temperature": 0.9})
    picker = window.open_assistants()
    await wait_until(lambda: picker.list.count() == 1)
    cid = chat.conversation_id
    await picker.apply_to_chat()
    assert chat.conversation_id == cid
    await _send(chat, "second")
    body = sim.chat_requests()[-1].body
    assert body["messages"][0] == {"role": "system", "content": "Be a pirate."}
    assert body["temperature"] == 0.5 and body["min_p"] == 0.05
    assert [m["content"] for m in body["messages"] if m["role"] == "user"] == ["first", "second"]
