"""Issue 14, item 1: messages are a tree. An old (linear) database migrates with every message
kept, in order, as single-branch trees; versions and the chosen branch survive a reopen of the
real SQLite file; a branch copies the history up to a message; deleting takes whole subtrees."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from victor_gui.errors import StorageError
from victor_gui.storage import ConversationStore, open_store, schema
from victor_gui.storage.store import DB_NAME

# The schema just before messages became a tree (found by name: other migrations may be added
# before or after it, and tests never hard-code a version number).
BEFORE_TREE = [m.name for m in schema.MIGRATIONS].index("message_tree")


@pytest.fixture
async def store(tmp_path: Path):
    s, _ = await open_store(tmp_path)
    yield s
    await s.close()


def _old_database(folder: Path) -> dict[int, list[tuple[str, str]]]:
    """A conversation file written at the schema before the tree: three chats whose messages
    were added interleaved (ids out of step with positions), notes, a tool row, and a reply left
    streaming with committed chunks (a crash). Returns each chat's (role, text) in order."""
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(folder / DB_NAME, isolation_level=None)
    schema.migrate(conn, None, target=BEFORE_TREE)
    expected: dict[int, list[tuple[str, str]]] = {1: [], 2: [], 3: []}
    for cid in expected:
        conn.execute("INSERT INTO conversations(id, title, created, updated) VALUES (?, ?, 1, 1)",
                     (cid, f"old chat {cid}"))
    script = [
        (1, "user", "how do quokkas sleep"), (2, "user", "name a red fruit"), (1, "assistant", "curled up"),
        (3, "user", "first of three"), (2, "assistant", "a cherry"), (1, "note", "Switched model"),
        (1, "user", "and wombats"), (3, "assistant", "reply to three"), (1, "assistant", "in burrows"),
        (2, "user", "another"), (3, "tool", "42"), (2, "assistant", "a strawberry"),
    ]
    for cid, role, text in script:
        position = len(expected[cid])
        conn.execute(
            "INSERT INTO messages(conversation_id, position, role, content, created, updated, status)"
            " VALUES (?, ?, ?, ?, 1, 1, 'complete')", (cid, position, role, text))
        expected[cid].append((role, text))
    # A reply that was streaming when the app died: its text is in chunks, folded at the next open.
    cur = conn.execute(
        "INSERT INTO messages(conversation_id, position, role, content, created, updated, status)"
        " VALUES (3, ?, 'assistant', '', 1, 1, 'streaming')", (len(expected[3]),))
    conn.execute("INSERT INTO message_chunks(message_id, seq, text)"
                 " VALUES (?, 0, 'half a '), (?, 1, 'reply')", (cur.lastrowid, cur.lastrowid))
    expected[3].append(("assistant", "half a reply"))
    conn.close()
    return expected


async def test_old_database_copy_migrates_keeping_every_message_in_order(tmp_path: Path) -> None:
    original = tmp_path / "original"
    expected = _old_database(original)
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(original / DB_NAME, copy / DB_NAME)  # migrate a copy; the original stays as it was
    store, notice = await open_store(copy)
    try:
        assert notice is None
        for cid, messages in expected.items():
            stored = await store.get_messages(cid)
            assert [(m.role, m.content) for m in stored] == messages
            # One branch: each message follows the one before it; no message has other versions.
            assert [m.parent_id for m in stored] == [None, *(m.id for m in stored[:-1])]
            assert await store.versions(cid) == {}
            conv = await store.get_conversation(cid)
            assert conv is not None and conv.message_count == len(messages)
        assert [h.conversation_id for h in await store.search("wombats")] == [1]  # FTS still follows
        assert [h.conversation_id for h in await store.search("reply")] == [3, 3]
        # A message added after the migration follows the last one of its chat.
        new = await store.add_message(2, "user", "after the update")
        chat = await store.get_messages(2)
        assert chat[-1].id == new and chat[-1].parent_id == chat[-2].id
    finally:
        await store.close()
    conn = sqlite3.connect(copy / DB_NAME)
    try:
        assert schema.user_version(conn) == schema.SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        fts_check = "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')"
        assert conn.execute(fts_check).fetchall() == []
        total = sum(len(m) for m in expected.values()) + 1
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (total,)
    finally:
        conn.close()
    assert list(copy.glob(f"{DB_NAME}.bak-v{BEFORE_TREE}-*")), "a backup was taken before migrating"
    old = sqlite3.connect(original / DB_NAME)
    try:
        assert schema.user_version(old) == BEFORE_TREE  # the original file was not touched
    finally:
        old.close()


async def test_versions_and_the_chosen_branch_survive_a_reopen(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    conv = await store.create_conversation("versions")
    question = await store.add_message(conv.id, "user", "question")
    first = await store.add_message(conv.id, "assistant", "first answer")
    await store.fork(conv.id, question)  # Regenerate: a new version beside "first answer"
    second = await store.add_message(conv.id, "assistant", "second answer")
    follow_up = await store.add_message(conv.id, "user", "follow-up on the second")
    await store.fork(conv.id, question)
    third = await store.add_message(conv.id, "assistant", "third answer")
    assert [m.content for m in await store.get_messages(conv.id)] == ["question", "third answer"]
    assert await store.versions(conv.id) == {third: (first, second, third)}
    assert await store.choose_version(second) == conv.id
    await store.close()

    store, _ = await open_store(tmp_path)  # the real file, reopened
    try:
        shown = await store.get_messages(conv.id)
        assert [m.id for m in shown] == [question, second, follow_up]  # the branch below it came back
        assert await store.versions(conv.id) == {second: (first, second, third)}
        await store.choose_version(first)
        assert [m.id for m in await store.get_messages(conv.id)] == [question, first]
        # A message on a hidden branch can be chosen directly: its ancestors are chosen with it.
        await store.choose_version(follow_up)
        assert [m.id for m in await store.get_messages(conv.id)] == [question, second, follow_up]
        tree = await store.get_tree(conv.id)
        assert [(t.message.id, t.chosen, t.on_path) for t in tree] == [
            (question, True, True), (first, False, False), (second, True, True),
            (follow_up, True, True), (third, False, False)]
        conv_row = await store.get_conversation(conv.id)
        assert conv_row is not None and conv_row.message_count == 3  # the shown branch
    finally:
        await store.close()


async def test_editing_the_first_message_makes_a_root_version(store: ConversationStore) -> None:
    conv = await store.create_conversation()
    old = await store.add_message(conv.id, "user", "old wording")
    await store.add_message(conv.id, "assistant", "old reply")
    await store.fork(conv.id, None)
    new = await store.add_message(conv.id, "user", "new wording")
    assert [m.content for m in await store.get_messages(conv.id)] == ["new wording"]
    assert await store.versions(conv.id) == {new: (old, new)}
    await store.choose_version(old)
    assert [m.content for m in await store.get_messages(conv.id)] == ["old wording", "old reply"]


async def test_branch_from_a_message_copies_the_history_up_to_it(store: ConversationStore) -> None:
    conv = await store.create_conversation("Trip", system_prompt="Be brief", params={"temperature": 0.2})
    await store.add_message(conv.id, "user", "plan a trip")
    picked = await store.add_message(conv.id, "assistant", "go north", model="m1")
    await store.add_message(conv.id, "user", "not this part")
    branch = await store.branch_conversation(picked)
    assert branch.id != conv.id and branch.title == "Trip (branch)"
    assert (branch.system_prompt, branch.params) == ("Be brief", {"temperature": 0.2})
    copied = await store.get_messages(branch.id)
    assert [(m.role, m.content, m.model) for m in copied] == [("user", "plan a trip", None),
                                                             ("assistant", "go north", "m1")]
    assert copied[1].parent_id == copied[0].id
    assert len(await store.get_messages(conv.id)) == 3  # the original is unchanged
    assert {h.conversation_id for h in await store.search("north")} == {conv.id, branch.id}
    await store.fork(conv.id, picked)  # "not this part" is now a hidden version
    await store.add_message(conv.id, "user", "another part")
    hidden = next(t.message.id for t in await store.get_tree(conv.id) if not t.on_path)
    with pytest.raises(StorageError):
        await store.branch_conversation(hidden)  # only what is shown can be branched from


async def test_deleting_from_a_position_takes_every_version_below(store: ConversationStore) -> None:
    conv = await store.create_conversation()
    question = await store.add_message(conv.id, "user", "q")
    await store.add_message(conv.id, "assistant", "a1")
    await store.fork(conv.id, question)
    a2 = await store.add_message(conv.id, "assistant", "a2")
    await store.add_message(conv.id, "user", "q2")
    await store.fork(conv.id, question)
    a3 = await store.add_message(conv.id, "assistant", "a3")
    await store.choose_version(a2)  # shown: q, a2, q2
    assert await store.delete_messages_from(conv.id, 1) == 2  # a2 and q2 below it
    assert [t.message.content for t in await store.get_tree(conv.id)] == ["q", "a1", "a3"]
    assert await store.versions(conv.id) == {}  # nothing below q is chosen now
    new = await store.add_message(conv.id, "assistant", "a4")
    assert [m.content for m in await store.get_messages(conv.id)] == ["q", "a4"]
    assert len((await store.versions(conv.id))[new]) == 3
    assert a3 in (await store.versions(conv.id))[new]


async def test_deleting_one_message_keeps_what_follows_and_its_versions(tmp_path: Path) -> None:


    store, _ = await open_store(tmp_path / "data")
    try:
        conv = await store.create_conversation("del")
        q1 = await store.add_message(conv.id, "user", "question one")
        a1 = await store.add_message(conv.id, "assistant", "answer one")
        q2 = await store.add_message(conv.id, "user", "question two")
        await store.add_message(conv.id, "assistant", "answer two")
        await store.delete_message(a1)  # a middle message: the rest reads on after q1
        assert [m.content for m in await store.get_messages(conv.id)] == [
            "question one", "question two", "answer two"]
        assert (await store.get_message(q2)).parent_id == q1
        # The last reply has two versions: deleting the shown one shows the other.
        await store.fork(conv.id, q2)
        newest = await store.add_message(conv.id, "assistant", "answer two, again")
        await store.delete_message(newest)
        assert [m.content for m in await store.get_messages(conv.id)][-1] == "answer two"
        hits = await store.search("again")
        assert hits == []  # the full-text index forgot it too
        with pytest.raises(StorageError):
            await store.delete_message(newest)
    finally:
        await store.close()
