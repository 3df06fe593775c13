"""The rows linking attachments to their message (table ``message_attachments``, schema v6).

Blocking functions run on a store thread with its connection; the blobs themselves are
:mod:`victor_gui.storage.blobs`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence

from victor_gui.core.attachment_ref import AttachmentRef
from victor_gui.storage.models import StoredMessage

# SQLite's default limit of bound variables is 32766 on 3.32+, far more on older builds' 999:
# stay under the smaller one.
_BATCH = 900


def insert_refs(conn: sqlite3.Connection, message_id: int, refs: Sequence[AttachmentRef]) -> None:
    """Link ``refs`` to the message, in order (after any it already has)."""
    row = conn.execute(
        "SELECT coalesce(max(seq), -1) + 1 FROM message_attachments WHERE message_id=?", (message_id,)
    ).fetchone()
    conn.executemany(
        "INSERT INTO message_attachments(message_id, seq, sha256, ref) VALUES (?,?,?,?)",
        [(message_id, row[0] + n, ref.sha256, _dumps(ref)) for n, ref in enumerate(refs)],
    )


def replace_refs(conn: sqlite3.Connection, message_id: int, refs: Sequence[AttachmentRef]) -> list[str]:
    """Make ``refs`` the message's attachments; returns the hashes it held before (to collect)."""
    old = [r[0] for r in conn.execute(
        "SELECT sha256 FROM message_attachments WHERE message_id=?", (message_id,))]
    conn.execute("DELETE FROM message_attachments WHERE message_id=?", (message_id,))
    insert_refs(conn, message_id, refs)
    return old


def refs_of_conversation(conn: sqlite3.Connection, conversation_id: int, from_position: int = 0) -> list[str]:
    """The hashes held by the conversation's messages at ``from_position`` and after."""
    return [r[0] for r in conn.execute(
        "SELECT a.sha256 FROM message_attachments a JOIN messages m ON m.id = a.message_id"
        " WHERE m.conversation_id=? AND m.position>=?", (conversation_id, from_position))]


def referenced(conn: sqlite3.Connection, shas: Iterable[str]) -> set[str]:
    """Which of ``shas`` some row still holds."""
    wanted = list(shas)
    held: set[str] = set()
    for start in range(0, len(wanted), _BATCH):
        batch = wanted[start:start + _BATCH]
        marks = ",".join("?" * len(batch))
        held.update(r[0] for r in conn.execute(
            f"SELECT DISTINCT sha256 FROM message_attachments WHERE sha256 IN ({marks})", batch))
    return held


def with_attachments(conn: sqlite3.Connection, messages: list[StoredMessage]) -> list[StoredMessage]:
    """``messages`` with their attachments filled in (one indexed query per 900 messages)."""
    by_id = {m.id: m for m in messages}
    found: dict[int, list[AttachmentRef]] = {}
    ids = list(by_id)
    for start in range(0, len(ids), _BATCH):
        batch = ids[start:start + _BATCH]
        marks = ",".join("?" * len(batch))
        for mid, ref in conn.execute(
            f"SELECT message_id, ref FROM message_attachments WHERE message_id IN ({marks})"
            " ORDER BY message_id, seq", batch):
            found.setdefault(mid, []).append(AttachmentRef.from_json(json.loads(ref)))
    for mid, refs in found.items():
        by_id[mid].attachments = tuple(refs)
    return messages


def _dumps(ref: AttachmentRef) -> str:
    return json.dumps(ref.to_json(), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
