"""The chat controller without Qt, against simulators on 127.0.0.1 and a real store: it owns the
conversation (created on first send, ids handed back), pages stored messages, edits and
regenerates, binds profiles (fallback with its stored note, track_costs, remembered per chat)
and lists broken profiles with their file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import llamacpp, vllm
from tests.servers.base import Script, free_port
from victor_gui.errors import StorageError
from victor_gui.services import notes
from victor_gui.services.chat_controller import PAGE, ChatController
from victor_gui.services.controller_events import ControllerEvent, ConversationChanged, ProfileChanged
from victor_gui.services.provider_choices import ProviderChoice, ProviderPool
from victor_gui.services.reply_types import ReplyEvent
from victor_gui.storage import open_store
from victor_gui.storage.store import ConversationStore


@pytest.fixture
async def store(tmp_path: Path) -> ConversationStore:
    opened, _ = await open_store(tmp_path / "data")
    yield opened  # type: ignore[misc]
    await opened.close()


def _choice(url: str) -> ProviderChoice:
    return ProviderChoice("llamacpp", "llama.cpp", True, False, None, url + "/v1")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def test_send_creates_the_chat_and_hands_back_the_ids(store: ConversationStore) -> None:
    events: list[ControllerEvent] = []
    controller = ChatController(store)
    controller.subscribe(events.append)
    pool = ProviderPool()
    with llamacpp.make_server() as sim:
        sim.script(Script(text="First."), Script(text="Again."), Script(text="Edited answer."))
        choice = _choice(sim.url)
        session = await controller.bind(choice, "sim-model", pool=pool, choices=[choice],
                                        first_text="Hello there")
        result = await controller.send(session, "Hello there")
        assert controller.conversation_id is not None
        stored = await store.get_messages(controller.conversation_id)
        assert [(m.id, m.role) for m in stored] == [(result.user_message_id, "user"),
                                                    (result.message_id, "assistant")]
        assert result.stored is not None and result.stored.content == "First."
        assert result.stored.completion_tokens  # the row the stats line shows

        again = await controller.regenerate()
        assert again is not None and again.user_message_id == result.user_message_id
        assert again.stored is not None and again.stored.content == "Again."

        assert controller.begin_edit(result.user_message_id)
        edited = await controller.send(session, "Hello again")
        # The edit is a new version of the message (issue 14): the old wording is kept beside it.
        assert edited.user_message_id != result.user_message_id and controller.editing_id is None
        versions = await store.versions(controller.conversation_id)
        assert versions[edited.user_message_id] == (result.user_message_id, edited.user_message_id)
        await pool.close()
    stored = await store.get_messages(controller.conversation_id)
    assert [(m.role, m.content) for m in stored] == [("user", "Hello again"),
                                                     ("assistant", "Edited answer.")]
    conv = await store.get_conversation(controller.conversation_id)
    assert conv is not None and conv.title == "Hello there"
    assert ConversationChanged(controller.conversation_id) in events
    deltas = [e for e in events if isinstance(e, ReplyEvent) and e.kind == "delta"]
    assert "".join(e.text for e in deltas).startswith("First.")  # reply events pass through
    await controller.aclose()


async def test_pages_of_a_long_chat_and_around_a_search_hit(store: ConversationStore) -> None:
    conv = await store.create_conversation("long")
    ids = [await store.add_message(conv.id, "user" if i % 2 == 0 else "assistant", f"message {i}")
           for i in range(2 * PAGE + 10)]
    controller = ChatController(store)
    page = await controller.open(conv.id)
    assert [m.content for m in page.messages] == [f"message {i}" for i in range(PAGE + 10, 2 * PAGE + 10)]
    assert page.has_earlier and not page.around_hit
    earlier = await controller.earlier()
    assert earlier is not None and earlier.messages[-1].content == f"message {PAGE + 9}"
    assert len(earlier.messages) == PAGE
    last = await controller.earlier()
    assert last is not None and [m.content for m in last.messages] == [f"message {i}" for i in range(10)]
    assert not last.has_earlier

    hit = await controller.open(conv.id, ids[20])
    assert hit.target_id == ids[20] and hit.around_hit and controller.around_hit
    assert any(m.id == ids[20] for m in hit.messages)
    controller.leave()
    assert controller.conversation_id is None and controller.first_position is None


PROFILES = """\
profiles:
  resilient:
    provider: llamacpp
    model: sim-model
    base_url: http://127.0.0.1:{dead}/v1
    temperature: 0.3
    max_tokens: 200
    fallback:
      - provider: llamacpp
        base_url: {sim}/v1
  broken:
    provider: llamacpp
    model: sim-model
    temperature: 9
"""


async def test_profile_falls_back_with_a_stored_note_and_is_remembered(
        store: ConversationStore, tmp_path: Path) -> None:
    events: list[ControllerEvent] = []
    controller = ChatController(store)
    controller.subscribe(events.append)
    pool = ProviderPool()
    dead = free_port()
    with llamacpp.make_server() as sim:
        sim.script(Script(text="The fallback answers."))
        path = _write(tmp_path / "victor.yaml", PROFILES.format(dead=dead, sim=sim.url))
        await controller.load_profiles(path, tmp_path / "none.yaml")
        entries = {e.name: e for e in controller.profile_entries()}
        assert entries["resilient"].usable and entries["resilient"].summary == "llama.cpp · sim-model"
        broken = entries["broken"]
        assert not broken.usable and broken.brief is not None
        assert broken.brief.startswith("victor.yaml:14: temperature:")
        assert broken.problem is not None and str(path) in broken.problem
        with pytest.raises(StorageError):
            await controller.choose_profile("broken")

        await controller.choose_profile("resilient")
        assert ProfileChanged("resilient") in events
        session = await controller.bind(None, "", pool=pool, choices=[], first_text="hi")
        result = await controller.send(session, "hi")
        await pool.close()
    assert result.status == "complete" and result.fell_back
    body = sim.chat_requests()[-1].body
    assert body["temperature"] == 0.3 and body["max_tokens"] == 200
    assert controller.conversation_id is not None
    stored = await store.get_messages(controller.conversation_id)
    note = next(m for m in stored if m.is_note)
    assert notes.kind_of(note) == notes.FAILOVER
    assert note.content == (f"llama.cpp · sim-model at 127.0.0.1:{dead} did not answer (connection refused); "
                            f"llama.cpp · sim-model at 127.0.0.1:{sim.port} answered.")
    assert any(isinstance(e, ReplyEvent) and e.kind == "note" and e.text == note.content for e in events)
    assert result.stored is not None and result.stored.cost is None  # track_costs defaults to false

    # The profile is remembered with the chat: reopening it brings the profile back.
    cid = controller.conversation_id
    await controller.aclose()
    reopened = ChatController(store)
    await reopened.load_profiles(path, tmp_path / "none.yaml")
    await reopened.open(cid)
    assert reopened.profile_name == "resilient"
    await reopened.choose_profile(None)
    conv = await store.get_conversation(cid)
    assert conv is not None and "profile" not in conv.params


@pytest.mark.parametrize("track", [True, False])
async def test_track_costs_decides_whether_a_cost_is_stored(
        store: ConversationStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, track: bool) -> None:
    monkeypatch.setenv("CTL_TEST_OPENAI_KEY", "sk-test-not-a-real-key-0000")
    controller = ChatController(store)
    pool = ProviderPool()
    with vllm.make_server(model="gpt-4o") as sim:
        sim.script(Script(text="Priced.", prompt_tokens=1000, completion_tokens=500))
        path = _write(tmp_path / "app.yaml", (
            "profiles:\n  paid:\n    provider: openai\n    model: gpt-4o\n"
            f"    base_url: {sim.url}/v1\n    api_key_env: CTL_TEST_OPENAI_KEY\n"
            f"    track_costs: {'true' if track else 'false'}\n"))
        await controller.load_profiles(tmp_path / "none.yaml", path)
        await controller.choose_profile("paid")
        session = await controller.bind(None, "", pool=pool, choices=[], first_text="price me")
        result = await controller.send(session, "price me")
        await pool.close()
    await controller.aclose()
    assert result.status == "complete" and result.stored is not None
    if track:
        assert result.stored.cost is not None and result.stored.cost > 0
    else:
        assert result.stored.cost is None
