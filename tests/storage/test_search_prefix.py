"""Prefix (type-ahead) search and the v4 migration that gave the FTS table its prefix indexes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from victor_gui.storage import open_store, schema
from victor_gui.storage.search import fts_query, search_sync
from victor_gui.storage.store import DB_NAME

TEXTS = {
    1: "deploy it to kubernetes tonight",
    2: "kubectl get pods in the namespace",
    3: "a kumquat jam recipe",
    4: "Kubernétes, written with an accent",  # remove_diacritics folds it to kubernetes
    5: "nothing relevant here",
}
_INTEGRITY = "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')"


def _v3_database(db: Path) -> None:
    """A database exactly as schema v3 (the release before prefix indexes) left it."""
    conn = sqlite3.connect(db, isolation_level=None)
    schema.migrate(conn, db, target=3)
    assert schema.user_version(conn) == 3
    assert "prefix" not in _fts_sql(conn)
    conn.execute("INSERT INTO conversations(id, title, created, updated) VALUES (1, 'ops', 1, 1)")
    for mid, text in TEXTS.items():
        conn.execute(
            "INSERT INTO messages(id, conversation_id, position, role, content, reasoning, created, updated)"
            " VALUES (?, 1, ?, 'user', ?, ?, ?, ?)",
            (mid, mid, text, "thinking about zeppelins" if mid == 5 else "", mid, mid),
        )
    conn.execute(  # a reply cut off mid-stream: not indexed until recovery marks it interrupted
        "INSERT INTO messages(id, conversation_id, position, role, content, created, updated, status)"
        " VALUES (6, 1, 6, 'assistant', 'half a kubeadm answer', 6, 6, 'streaming')"
    )
    conn.close()


def _backups(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{DB_NAME}.bak-v3-*"))


def _fts_sql(conn: sqlite3.Connection) -> str:
    return str(conn.execute("SELECT sql FROM sqlite_master WHERE name = 'messages_fts'").fetchone()[0])


async def test_migration_from_v3_keeps_every_message_searchable(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    _v3_database(db)
    store, notice = await open_store(tmp_path)
    try:
        assert notice is None
        for mid, text in TEXTS.items():  # every message, by its last word typed in full and in part
            word = text.split()[-1]
            assert mid in [h.message_id for h in await store.search(f'"{word}"')], word
            assert mid in [h.message_id for h in await store.search(word[:3])], word[:3]
        assert [h.message_id for h in await store.search("zeppel")] == [5]  # reasoning is indexed too
        assert [h.message_id for h in await store.search("kubea")] == [6]  # recovered, then indexed
    finally:
        await store.close()
    assert len(_backups(tmp_path)) == 1  # the v3 file was copied aside before migrating
    conn = sqlite3.connect(db)
    try:
        assert schema.user_version(conn) == schema.SCHEMA_VERSION
        assert f"prefix='{schema.FTS_PREFIXES}'" in _fts_sql(conn)
        assert conn.execute(_INTEGRITY).fetchall() == []
        triggers = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'messages'")}
        assert triggers == {"messages_fts_ai", "messages_fts_ad", "messages_fts_au"}
    finally:
        conn.close()


@pytest.fixture
def conn() -> sqlite3.Connection:
    c = sqlite3.connect(":memory:", isolation_level=None)
    schema.migrate(c, None)
    c.execute("INSERT INTO conversations(id, title, created, updated) VALUES (1, 'ops', 1, 1)")
    for mid, text in TEXTS.items():
        c.execute(
            "INSERT INTO messages(id, conversation_id, position, role, content, created, updated)"
            " VALUES (?, 1, ?, 'user', ?, ?, ?)",
            (mid, mid, text, mid, mid),
        )
    return c


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ku", [4, 3, 2, 1]),  # 2 chars: prefix index
        ("kub", [4, 2, 1]),  # 3 chars
        ("kube", [4, 2, 1]),  # 4 chars
        ("kuber", [4, 1]),  # 5 chars: no index of its own, answered from the 6-char one
        ("kubern", [4, 1]),  # 6 chars
        ("KUBERNE", [4, 1]),  # 7 chars, any case
        ("kubernetes", [4, 1]),
        ("kubernetesx", []),
        ("kumq", [3]),
        ("deploy kube", [1]),  # earlier words match whole; only the last is a prefix
        ("depl kube", []),
        ("depl* kube", [1]),  # unless marked with *
        ('"kube"', []),  # quoted: the whole word only
        ("kube ", []),  # trailing space: the word is finished
        ("k", []),  # one character is a word, not a prefix
    ],
)
def test_prefix_lengths_find_the_right_messages(
    conn: sqlite3.Connection, typed: str, expected: list[int]
) -> None:
    assert [h.message_id for h in search_sync(conn, typed)] == expected


def test_prefix_index_follows_edits_and_deletes(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE messages SET content = 'helm charts only' WHERE id = 1")
    conn.execute("DELETE FROM messages WHERE id = 4")
    assert [h.message_id for h in search_sync(conn, "kube")] == [2]
    assert [h.message_id for h in search_sync(conn, "hel")] == [1]
    # A streaming row is not indexed until it finishes; the single update trigger keeps it right.
    conn.execute("UPDATE messages SET status = 'streaming', content = 'kubelet' WHERE id = 2")
    assert search_sync(conn, "kube") == []
    conn.execute("UPDATE messages SET status = 'complete' WHERE id = 2")
    assert [h.message_id for h in search_sync(conn, "kubel")] == [2]
    assert conn.execute(_INTEGRITY).fetchall() == []


def test_type_ahead_can_be_switched_off() -> None:
    assert fts_query("kubern") == '"kubern"*'
    assert fts_query("kubern", type_ahead=False) == '"kubern"'
    assert fts_query("kubern*", type_ahead=False) == '"kubern"*'


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \"*()-^:+.,'NEAROT\t\u00e9")), max_size=24))
def test_any_user_text_is_a_valid_query(text: str) -> None:
    c = sqlite3.connect(":memory:")
    try:
        schema.migrate(c, None)
        c.execute("INSERT INTO conversations(id, title, created, updated) VALUES (1, 't', 1, 1)")
        c.execute(
            "INSERT INTO messages(conversation_id, position, role, content, created, updated)"
            " VALUES (1, 0, 'user', 'ab ba aab NEAR OR', 1, 1)"
        )
        assert isinstance(search_sync(c, text), list)  # never an FTS5 syntax error
    finally:
        c.close()
