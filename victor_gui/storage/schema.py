"""The conversation database schema and its named, versioned migrations.

``PRAGMA user_version`` holds the number of migrations applied. Before any migration runs on a
database that already holds data, a copy is taken with SQLite's online backup API to
``<db>.bak-v<N>-<timestamp>``, so an update that goes wrong never costs a user their history.

Migrations are append-only: never edit one that has shipped, add the next one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from victor_gui.errors import StorageError


@dataclass(frozen=True)
class Migration:
    """One schema step: ``apply`` moves the database from version ``index`` to ``index + 1``."""

    name: str
    apply: Callable[[sqlite3.Connection], None]


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the migration's open transaction first; run statement by
    # statement instead (complete_statement copes with the semicolons inside trigger bodies).
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            conn.execute(pending)
            pending = ""
    if pending.strip():
        raise StorageError(f"incomplete SQL in migration: {pending[:80]!r}")


def _v1_initial(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            updated REAL NOT NULL,
            system_prompt TEXT,
            params TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX conversations_by_updated ON conversations(updated DESC);

        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL DEFAULT '',
            content_parts TEXT,
            reasoning TEXT NOT NULL DEFAULT '',
            tool_calls TEXT,
            tool_call_id TEXT,
            provider TEXT,
            model TEXT,
            endpoint TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cached_tokens INTEGER,
            ttft_ms REAL,
            tokens_per_second REAL,
            cost REAL,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'streaming', 'interrupted', 'error')),
            error TEXT,
            UNIQUE (conversation_id, position)
        );
        CREATE INDEX messages_streaming ON messages(status) WHERE status = 'streaming';
        """,
    )


def _v2_full_text(conn: sqlite3.Connection) -> None:
    # External-content FTS5 over message text and reasoning. A message is indexed only once it
    # stops streaming: re-tokenising a growing reply on every flush would cost O(n^2) work.
    # The triggers therefore mirror exactly the rows whose status is not 'streaming'. The update
    # trigger is one body on purpose: SQLite fires separate triggers newest-first, and an FTS5
    # 'delete' arriving after the re-insert of the same rowid corrupts the index.
    _run_script(
        conn,
        """
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, reasoning, content='messages', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages WHEN new.status != 'streaming' BEGIN
            INSERT INTO messages_fts(rowid, content, reasoning) VALUES (new.id, new.content, new.reasoning);
        END;
        CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages WHEN old.status != 'streaming' BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, reasoning)
                VALUES ('delete', old.id, old.content, old.reasoning);
        END;
        CREATE TRIGGER messages_fts_au AFTER UPDATE OF content, reasoning, status ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, reasoning)
                SELECT 'delete', old.id, old.content, old.reasoning WHERE old.status != 'streaming';
            INSERT INTO messages_fts(rowid, content, reasoning)
                SELECT new.id, new.content, new.reasoning WHERE new.status != 'streaming';
        END;
        INSERT INTO messages_fts(rowid, content, reasoning)
            SELECT id, content, reasoning FROM messages WHERE status != 'streaming';
        """,
    )


def _v3_message_meta(conn: sqlite3.Connection) -> None:
    # Free-form JSON per message for what the chat session records beside the text: the kind of
    # a transcript note (model switch, context trimmed) and how a reply came to be (fallback
    # attempts and their reasons, turns trimmed). JSON keeps these from needing a migration each.
    conn.execute("ALTER TABLE messages ADD COLUMN meta TEXT")


# Prefix lengths FTS5 keeps a ready posting list for. Without one, FTS5 answers ``foo*`` by
# merging the whole posting list of every matching term in memory before the first row comes
# back, so neither LIMIT nor a rowid range can stop it early (~170 ms over 200k messages for a
# prefix of a common word). With one, a prefix query streams like a word query. Measured on
# 200k messages (see bench/bench_store.py and the v4 commit): '2 3 4' left 5-7-char prefixes of
# common words at 40-170 ms; the gaps in '2 3 4 6 8 10' are bridged by the next longer index
# (5 chars ~8 ms, 7 ~6 ms, every other length < 1 ms), for 4.6x the FTS size of no prefix
# index (69 MB vs 15 MB) and a one-off rebuild of ~6.5 s per 200k messages when migrating.
# At 1M messages: 5 chars 54 ms, 7 chars 31 ms (prefixes of the most frequent words; the
# rest < 1 ms), FTS 344 MB vs 75 MB, migration 38 s. Adding 5 and 7 would close the gaps for
# roughly another copy of the postings each; not worth it for a keystroke-time query.
FTS_PREFIXES = "2 3 4 6 8 10"


def _v4_fts_prefix_index(conn: sqlite3.Connection) -> None:
    # FTS5 cannot add a prefix index to an existing table: drop and rebuild it. The triggers are
    # recreated byte for byte as in v2 (the single update trigger is still on purpose: a
    # separate 'delete' trigger would fire after the re-insert and corrupt the index), and the
    # table is refilled from the rows that are not streaming, exactly what the triggers mirror
    # ('rebuild' would index streaming rows too).
    _run_script(
        conn,
        f"""
        DROP TRIGGER messages_fts_ai;
        DROP TRIGGER messages_fts_ad;
        DROP TRIGGER messages_fts_au;
        DROP TABLE messages_fts;
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, reasoning, content='messages', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2', prefix='{FTS_PREFIXES}'
        );
        CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages WHEN new.status != 'streaming' BEGIN
            INSERT INTO messages_fts(rowid, content, reasoning) VALUES (new.id, new.content, new.reasoning);
        END;
        CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages WHEN old.status != 'streaming' BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, reasoning)
                VALUES ('delete', old.id, old.content, old.reasoning);
        END;
        CREATE TRIGGER messages_fts_au AFTER UPDATE OF content, reasoning, status ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, reasoning)
                SELECT 'delete', old.id, old.content, old.reasoning WHERE old.status != 'streaming';
            INSERT INTO messages_fts(rowid, content, reasoning)
                SELECT new.id, new.content, new.reasoning WHERE new.status != 'streaming';
        END;
        INSERT INTO messages_fts(rowid, content, reasoning)
            SELECT id, content, reasoning FROM messages WHERE status != 'streaming';
        INSERT INTO messages_fts(messages_fts) VALUES ('optimize');
        """,
    )


def _v5_message_chunks(conn: sqlite3.Connection) -> None:
    # A streaming reply's text arrives as appended chunks, one row per flush, instead of
    # ``content = content || ?`` on the message row: that rewrote the whole growing row (and its
    # overflow pages, into the WAL) on every flush, so a 2 MB reply wrote 4 GiB. The chunks are
    # folded into the row once, when the reply ends or when the store is next opened after a
    # crash (see victor_gui.storage.chunks); the FTS triggers then index the final text once.
    # A plain rowid table: chunk rows are up to flush-size text, too big for WITHOUT ROWID.
    _run_script(
        conn,
        """
        CREATE TABLE message_chunks (
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            reasoning TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (message_id, seq)
        );
        """,
    )


def _v6_attachments(conn: sqlite3.Connection) -> None:
    # The files attached to a message, in order. The bytes live once per content in the data
    # folder (victor_gui.storage.blobs, named by sha256); a row holds the hash and the rest of
    # the AttachmentRef as JSON (new fields need no migration). Rows go with their message
    # (ON DELETE CASCADE, so with the conversation too); the index finds whether any row still
    # holds a blob before its file is deleted.
    _run_script(
        conn,
        """
        CREATE TABLE message_attachments (
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            ref TEXT NOT NULL,
            PRIMARY KEY (message_id, seq)
        );
        CREATE INDEX message_attachments_by_sha ON message_attachments(sha256);
        """,
    )


def _v7_message_tree(conn: sqlite3.Connection) -> None:
    # Messages become a tree, so Regenerate and Edit keep every earlier version (issue 14).
    # ``parent_id``: the message this one follows (NULL: a first message). ``chosen``: this is
    # the version picked among its siblings (a branch not on screen keeps its own choices, so
    # switching back to it shows it as it was left). ``on_path``: on the conversation's chosen
    # branch (chosen, and every ancestor chosen), materialised so reading a chat stays one
    # indexed range scan. ``position`` stays unique per conversation and becomes the order of
    # insertion: a child is always inserted after its parent, so a branch read by position is
    # in order, and UNIQUE(conversation_id, position), the FTS triggers (they fire on content,
    # reasoning and status only) and message_chunks need no rebuild.
    # No foreign key on parent_id on purpose: ON DELETE CASCADE would recurse once per message
    # of a long chain and hit SQLite's trigger depth limit (1000); the store deletes subtrees.
    # Existing linear chats become single-branch trees: each message's parent is the one
    # before it.
    _run_script(
        conn,
        """
        ALTER TABLE messages ADD COLUMN parent_id INTEGER;
        ALTER TABLE messages ADD COLUMN chosen INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE messages ADD COLUMN on_path INTEGER NOT NULL DEFAULT 1;
        UPDATE messages SET parent_id = (
            SELECT p.id FROM messages p
            WHERE p.conversation_id = messages.conversation_id AND p.position < messages.position
            ORDER BY p.position DESC LIMIT 1
        );
        CREATE INDEX messages_by_parent ON messages(parent_id);
        CREATE INDEX messages_on_path ON messages(conversation_id, on_path, position);
        """,
    )


def _v8_document_vectors(conn: sqlite3.Connection) -> None:
    # Retrieval over attached documents (services.retrieval): each document's chunks with one
    # embedding model's vectors, keyed by the file's content hash, so the same file is embedded
    # once per model and another model embeds it again beside the first. A document's vectors
    # are one float32 little-endian BLOB, row i the vector of chunk i scaled to length 1 (so a
    # cosine is one dot product; 768 numbers = 3 KiB a chunk): reading 100 documents' matrices
    # is 100 reads, where a row per chunk cost ~22 us each (2.2 s for 100,000 chunks).
    # ``document_embeddings`` is written in the same transaction as its chunks, so a set is
    # whole or absent; ``chunking`` names how it was cut.
    # Plain tables: sqlite-vec cannot be loaded here (no enable_load_extension); the search is a
    # NumPy pass over the attached documents' matrices. The chunks' words are indexed by FTS5
    # (external content, kept by triggers) for the BM25 half of the hybrid score: BM25 in Python
    # over 10,000 chunks took 2.3 s a question.
    _run_script(
        conn,
        """
        CREATE TABLE document_embeddings (
            sha256 TEXT NOT NULL,
            model TEXT NOT NULL,
            chunking TEXT NOT NULL,
            chunks INTEGER NOT NULL,
            dim INTEGER NOT NULL,
            vectors BLOB NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (sha256, model)
        );
        CREATE TABLE document_chunks (
            sha256 TEXT NOT NULL,
            model TEXT NOT NULL,
            idx INTEGER NOT NULL,
            locator TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL,
            PRIMARY KEY (sha256, model, idx),
            FOREIGN KEY (sha256, model) REFERENCES document_embeddings(sha256, model) ON DELETE CASCADE
        );
        CREATE VIRTUAL TABLE document_chunks_fts USING fts5(
            text, content='document_chunks', content_rowid='rowid', tokenize='unicode61'
        );
        CREATE TRIGGER document_chunks_ai AFTER INSERT ON document_chunks BEGIN
            INSERT INTO document_chunks_fts(rowid, text) VALUES (new.rowid, new.text);
        END;
        CREATE TRIGGER document_chunks_ad AFTER DELETE ON document_chunks BEGIN
            INSERT INTO document_chunks_fts(document_chunks_fts, rowid, text)
            VALUES ('delete', old.rowid, old.text);
        END;
        """,
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration("initial", _v1_initial),
    Migration("full_text_search", _v2_full_text),
    Migration("message_meta", _v3_message_meta),
    Migration("fts_prefix_index", _v4_fts_prefix_index),
    Migration("message_chunks", _v5_message_chunks),
    Migration("attachments", _v6_attachments),
    Migration("message_tree", _v7_message_tree),
    Migration("document_vectors", _v8_document_vectors),
)
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    """The number of migrations applied to ``conn``'s database."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def backup_to(conn: sqlite3.Connection, target: Path) -> None:
    """Copy the live database behind ``conn`` to ``target`` with the online backup API."""
    dest = sqlite3.connect(target)
    try:
        conn.backup(dest)
    finally:
        dest.close()


def migrate(conn: sqlite3.Connection, db_path: Path | None, *, target: int = SCHEMA_VERSION) -> Path | None:
    """Bring ``conn`` up to ``target``; returns the backup taken first, if one was needed.

    Each migration runs in its own transaction together with its ``user_version`` bump, so a
    failure leaves the database at the last good version (and the backup untouched).
    """
    current = user_version(conn)
    if current > SCHEMA_VERSION:
        raise StorageError(
            f"This conversation database was written by a newer Victor GUI (schema v{current}; "
            f"this version knows up to v{SCHEMA_VERSION}). Update the app; the file was not changed."
        )
    if current >= target:
        return None
    backup: Path | None = None
    has_data = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    if db_path is not None and has_data:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = db_path.with_name(f"{db_path.name}.bak-v{current}-{stamp}")
        backup_to(conn, backup)
    for index in range(current, target):
        step = MIGRATIONS[index]
        try:
            conn.execute("BEGIN IMMEDIATE")
            step.apply(conn)
            conn.execute(f"PRAGMA user_version = {index + 1}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StorageError(
                f"Migration {index + 1} ({step.name}) failed: {exc}. "
                f"Your data is unchanged{f'; a backup is at {backup}' if backup else ''}."
            ) from exc
    return backup
