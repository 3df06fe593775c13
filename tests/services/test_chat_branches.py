"""Issue 14, item 1: Regenerate and Edit-and-resend keep every earlier version, the model is sent
the chosen branch (checked in the body the llama.cpp simulator received over real HTTP), a
choice of version is stored, "Branch from here" copies the history up to a message, and a
stopped reply keeps its token count and speed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.providers.openai_sims import make_provider, running
from tests.servers.base import Script
from victor_gui.services import chat_branches
from victor_gui.services.chat_session import ChatSession
from victor_gui.storage import ConversationStore, open_store
from victor_gui.storage.export import export_json, import_json


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ConversationStore]:
    s, _ = await open_store(tmp_path)
    yield s
    await s.close()


def _sent(server: object) -> list[tuple[str, str]]:
    body = server.requests[-1].body  # type: ignore[attr-defined]
    return [(m["role"], m["content"]) for m in body["messages"]]


async def test_regenerate_twice_keeps_three_versions_and_the_choice_steers_the_next_request(
    tmp_path: Path,
) -> None:
    store, _ = await open_store(tmp_path)
    conv = await store.create_conversation("versions", system_prompt="Be terse.")
    with running("llamacpp") as llama:
        session = ChatSession(store, conv.id, make_provider("llamacpp", llama), "sim-model")
        llama.script(Script(text="answer one"), Script(text="answer two"), Script(text="answer three"),
                     Script(text="follow-up reply"))
        first = await session.send("question")
        second = await session.regenerate()
        third = await session.regenerate()
        # Each regenerate asked the same history: the earlier versions are not sent.
        assert _sent(llama) == [("system", "Be terse."), ("user", "question")]
        versions = await store.versions(conv.id)
        assert versions == {third.message_id: (first.message_id, second.message_id, third.message_id)}
        assert chat_branches.version_label(versions, third.message_id) == (3, 3)
        await chat_branches.choose_version(store, second.message_id)
        assert chat_branches.version_label(await store.versions(conv.id), second.message_id) == (2, 3)
        await session.send("go on")
        assert _sent(llama) == [("system", "Be terse."), ("user", "question"),
                                ("assistant", "answer two"), ("user", "go on")]
        await session.close()
    await store.close()
    store, _ = await open_store(tmp_path)  # the tree and the choice survive a restart
    try:
        shown = await store.get_messages(conv.id)
        assert [m.content for m in shown] == ["question", "answer two", "go on", "follow-up reply"]
        assert len((await store.versions(conv.id))[second.message_id]) == 3
    finally:
        await store.close()


async def test_edit_and_resend_keeps_the_old_wording_and_its_replies(store: ConversationStore) -> None:
    conv = await store.create_conversation("edit")
    with running("llamacpp") as llama:
        session = ChatSession(store, conv.id, make_provider("llamacpp", llama), "sim-model")
        llama.script(Script(text="A1"), Script(text="A2"), Script(text="B1"))
        r1 = await session.send("Q1")
        await session.send("Q2")
        edited = await session.edit_and_resend(r1.user_message_id or 0, "Q1 edited")
        assert _sent(llama) == [("user", "Q1 edited")]
        assert [m.content for m in await store.get_messages(conv.id)] == ["Q1 edited", "B1"]
        assert edited.user_message_id != r1.user_message_id
        versions = await store.versions(conv.id)
        assert versions[edited.user_message_id or 0] == (r1.user_message_id, edited.user_message_id)
        await store.choose_version(r1.user_message_id or 0)  # the old exchange, whole
        assert [m.content for m in await store.get_messages(conv.id)] == ["Q1", "A1", "Q2", "A2"]
        await session.close()


async def test_branch_from_here_starts_a_new_conversation_with_the_history_up_to_it(
    store: ConversationStore,
) -> None:
    conv = await store.create_conversation("Origin", system_prompt="Be terse.")
    with running("llamacpp") as llama:
        session = ChatSession(store, conv.id, make_provider("llamacpp", llama), "sim-model")
        llama.script(Script(text="A1"), Script(text="A2"), Script(text="in the branch"))
        r1 = await session.send("Q1")
        await session.send("Q2")
        branch = await chat_branches.branch_from(store, r1.message_id)
        assert branch.title == "Origin (branch)" and branch.system_prompt == "Be terse."
        assert [m.content for m in await store.get_messages(branch.id)] == ["Q1", "A1"]
        in_branch = ChatSession(store, branch.id, make_provider("llamacpp", llama), "sim-model")
        await in_branch.send("Q2 differently")
        assert _sent(llama) == [("system", "Be terse."), ("user", "Q1"), ("assistant", "A1"),
                                ("user", "Q2 differently")]
        assert [m.content for m in await store.get_messages(conv.id)] == ["Q1", "A1", "Q2", "A2"]
        await in_branch.close()
        await session.close()


async def test_a_stopped_reply_keeps_its_token_count_and_speed(store: ConversationStore) -> None:
    conv = await store.create_conversation("stop")
    with running("llamacpp") as llama:
        session = ChatSession(store, conv.id, make_provider("llamacpp", llama), "sim-model")
        llama.script(Script(text=" ".join(f"w{i}" for i in range(40)), pieces=40, delay_s=0.03))
        deltas = 0
        enough = asyncio.Event()

        def on_event(event: object) -> None:
            nonlocal deltas
            if getattr(event, "kind", "") == "delta":
                deltas += 1
                if deltas >= 8:
                    enough.set()

        session.on_event = on_event
        task = asyncio.create_task(session.send("count"))
        await asyncio.wait_for(enough.wait(), 10)
        await session.stop()
        with pytest.raises(asyncio.CancelledError):
            await task
        reply = (await store.get_messages(conv.id))[-1]
        assert reply.status == "interrupted"
        assert reply.completion_tokens is not None and reply.completion_tokens >= 8
        assert reply.tokens_per_second is not None and reply.tokens_per_second > 0
        await session.close()


async def test_json_export_writes_the_chosen_branch_or_the_whole_tree(store: ConversationStore) -> None:
    import json

    conv = await store.create_conversation("export")
    q = await store.add_message(conv.id, "user", "q")
    await store.add_message(conv.id, "assistant", "old")
    await store.fork(conv.id, q)
    await store.add_message(conv.id, "assistant", "new")
    doc = json.loads(await export_json(store, [conv.id]))
    assert [m["content"] for m in doc["conversations"][0]["messages"]] == ["q", "new"]
    assert "tree" not in doc["conversations"][0]
    whole = json.loads(await export_json(store, [conv.id], tree=True))
    item = whole["conversations"][0]
    assert [m["content"] for m in item["messages"]] == ["q", "new"]  # still the chosen branch
    assert [(m["content"], m["parent"], m["chosen"]) for m in item["tree"]] == [
        ("q", None, True), ("old", 0, False), ("new", 0, True)]
    # Imported back, the whole tree returns (the choice too), and exports the same text again.
    text = await export_json(store, [conv.id], tree=True)
    [copy] = await import_json(store, text)
    assert await export_json(store, [copy], tree=True) == text
    assert [m.content for m in await store.get_messages(copy)] == ["q", "new"]
    assert len(next(iter((await store.versions(copy)).values()))) == 2


async def test_switch_then_regenerate_puts_the_versions_on_the_new_reply(store: ConversationStore) -> None:
    """The switch note Regenerate carries into the new version starts it; the versions are still
    listed under the reply (a note has no switcher), and choosing goes both ways."""
    conv = await store.create_conversation("switch")
    with running("llamacpp") as llama, running("vllm") as vllm:
        session = ChatSession(store, conv.id, make_provider("llamacpp", llama), "sim-model")
        llama.script(Script(text="from llama"))
        vllm.script(Script(text="from vllm"))
        first = await session.send("question")
        await session.switch(make_provider("vllm", vllm), "sim-model")
        second = await session.regenerate()
        assert second.provider == "vllm"
        shown = await store.get_messages(conv.id)
        assert [m.role for m in shown] == ["user", "note", "assistant"]  # the switch is kept
        versions = await store.versions(conv.id)
        assert versions == {second.message_id: (first.message_id, second.message_id)}
        assert chat_branches.version_label(versions, second.message_id) == (2, 2)
        await store.choose_version(first.message_id)
        assert [(m.role, m.content[:10]) for m in await store.get_messages(conv.id)] == [
            ("user", "question"), ("assistant", "from llama"), ("note", "Switched f")]
        await store.choose_version(second.message_id)
        assert (await store.get_messages(conv.id))[-1].id == second.message_id
        await session.close()


async def test_a_reply_that_failed_before_any_text_is_replaced_by_its_retry(store: ConversationStore) -> None:
    from tests.servers.base import Fault

    conv = await store.create_conversation("retry")
    with running("llamacpp") as llama:
        session = ChatSession(store, conv.id, make_provider("llamacpp", llama), "sim-model")
        llama.script(Script(fault=Fault.UNKNOWN_MODEL), Script(text="it worked"), Script(text="another"))
        failed = await session.send("question")
        assert failed.status == "error"
        ok = await session.regenerate()
        assert await store.versions(conv.id) == {}  # the empty failure is not a version
        assert [m.content for m in await store.get_messages(conv.id)] == ["question", "it worked"]
        again = await session.regenerate()  # a reply with text is kept as a version
        assert await store.versions(conv.id) == {again.message_id: (ok.message_id, again.message_id)}
        await session.close()
