"""Versions and branches: a conversation's messages as a tree (schema ``message_tree``).

Each message has a ``parent_id`` (the message it follows; NULL for a first message), a
``chosen`` flag (the version picked among its siblings) and an ``on_path`` flag (on the chosen
branch: what the window shows, what a model is sent and what Markdown export writes). Messages
are appended under the last message of the chosen branch, so code that only adds messages
never needs to know about the tree. The functions here run on the store's threads (each inside
one write or read transaction of :class:`~victor_gui.storage.store.ConversationStore`):

* :func:`fork` takes the chosen branch off after a message, so the next message added becomes a
  new version beside the old next one (Regenerate, Edit-and-resend);
* :func:`choose` makes a message (and its ancestors) the chosen version and follows each
  branch's own remembered choices below it;
* :func:`versions` lists, for the messages of the chosen branch, their sibling versions;
* :func:`branch_off` copies the chosen branch up to a message into a new conversation;
* :func:`delete_from` removes the chosen branch from a position on, with every version below.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from victor_gui.errors import StorageError
from victor_gui.storage.chunks import joined
from victor_gui.storage.models import MESSAGE_COLUMNS, NOTE_ROLE, StoredMessage, message_from_row

# Columns a branch copies from each message (all but its id, place in the tree and chat).
_COPIED = (
    "role, content, content_parts, reasoning, tool_calls, tool_call_id, provider, model, endpoint, "
    "prompt_tokens, completion_tokens, cached_tokens, ttft_ms, tokens_per_second, cost, created, "
    "updated, status, error, meta"
)


@dataclass(slots=True)
class TreeMessage:
    """One message of a conversation's whole tree (:func:`whole_tree`)."""

    message: StoredMessage
    chosen: bool
    on_path: bool


def _position(conn: sqlite3.Connection, message_id: int) -> tuple[int, int, int | None, bool]:
    """(conversation id, position, parent id, on the chosen branch) of a message."""
    row = conn.execute(
        "SELECT conversation_id, position, parent_id, on_path FROM messages WHERE id=?", (message_id,)
    ).fetchone()
    if row is None:
        raise StorageError(f"no message with id {message_id}")
    return int(row[0]), int(row[1]), row[2], bool(row[3])


def leaf(conn: sqlite3.Connection, conversation_id: int) -> int | None:
    """The last message of the chosen branch: where the next message is added (None: empty)."""
    row = conn.execute(
        "SELECT id FROM messages WHERE conversation_id=? AND on_path=1 ORDER BY position DESC LIMIT 1",
        (conversation_id,),
    ).fetchone()
    return None if row is None else int(row[0])


def is_shown(conn: sqlite3.Connection, message_id: int) -> bool:
    """Whether the message is on its conversation's chosen branch."""
    row = conn.execute("SELECT on_path FROM messages WHERE id=?", (message_id,)).fetchone()
    return bool(row and row[0])


def fork(conn: sqlite3.Connection, conversation_id: int, after_id: int | None) -> None:
    """End the chosen branch at ``after_id`` (None: before the first message), keeping what
    followed as an unchosen version: the next message added becomes its sibling."""
    after = -1
    if after_id is not None:
        cid, after, _parent, on_path = _position(conn, after_id)
        if cid != conversation_id or not on_path:
            raise StorageError("Only a message on the chat's shown branch can start a new version.")
    conn.execute(
        "UPDATE messages SET on_path=0 WHERE conversation_id=? AND on_path=1 AND position>?",
        (conversation_id, after),
    )
    conn.execute(
        "UPDATE messages SET chosen=0 WHERE conversation_id=? AND parent_id IS ? AND chosen=1",
        (conversation_id, after_id),
    )


def choose(conn: sqlite3.Connection, message_id: int) -> int:
    """Make ``message_id`` the chosen version (its ancestors too, if it was on a hidden branch);
    below it the branch follows each message's remembered choice. Returns the conversation id."""
    conversation_id, _pos, parent, on_path = _position(conn, message_id)
    chain = [message_id]  # the message and its ancestors not on the chosen branch, deepest first
    while not on_path and parent is not None:
        _cid, _pos, grand, on_path = _position(conn, parent)
        if on_path:
            break
        chain.append(parent)
        parent = grand
    anchor_pos = -1 if parent is None else _position(conn, parent)[1]
    conn.execute(
        "UPDATE messages SET on_path=0 WHERE conversation_id=? AND on_path=1 AND position>?",
        (conversation_id, anchor_pos),
    )
    for node in chain:
        node_parent = _position(conn, node)[2]
        conn.execute(
            "UPDATE messages SET chosen=(id=?) WHERE conversation_id=? AND parent_id IS ?",
            (node, conversation_id, node_parent),
        )
        conn.execute("UPDATE messages SET on_path=1 WHERE id=?", (node,))
    node_id: int | None = message_id
    while node_id is not None:
        row = conn.execute(
            "SELECT id FROM messages WHERE parent_id=? ORDER BY chosen DESC, position DESC LIMIT 1",
            (node_id,),
        ).fetchone()
        node_id = None if row is None else int(row[0])
        if node_id is not None:
            conn.execute("UPDATE messages SET on_path=1, chosen=1 WHERE id=?", (node_id,))
    return conversation_id


def versions(conn: sqlite3.Connection, conversation_id: int) -> dict[int, tuple[int, ...]]:
    """For each message of the chosen branch that has other versions: every version's id (it
    included), oldest first. Messages with no other version are left out.

    A version that starts with a note (the copy of a model switch that Regenerate carries into
    the new version) is listed under the first message after the note instead, with that
    message's id in the note's place: notes have no switcher in the window, and choosing a
    message below a version's start chooses that version."""
    rows = conn.execute(
        "SELECT id, parent_id, on_path, role, position FROM messages WHERE conversation_id=? AND "
        "(parent_id IS NULL OR parent_id IN (SELECT id FROM messages WHERE conversation_id=? AND on_path=1)) "
        "ORDER BY position",
        (conversation_id, conversation_id),
    ).fetchall()
    groups: dict[int | None, list[int]] = {}
    shown: dict[int | None, tuple[int, str, int]] = {}
    for mid, parent, on_path, role, position in rows:
        groups.setdefault(parent, []).append(int(mid))
        if on_path:
            shown[parent] = (int(mid), role, int(position))
    found: dict[int, tuple[int, ...]] = {}
    noted: list[tuple[int, tuple[int, ...], int]] = []
    for parent, ids in groups.items():
        if len(ids) < 2 or parent not in shown:
            continue
        mid, role, position = shown[parent]
        if role == NOTE_ROLE:
            noted.append((mid, tuple(ids), position))
        else:
            found[mid] = tuple(ids)
    for mid, group, position in noted:
        row = conn.execute(
            "SELECT id FROM messages WHERE conversation_id=? AND on_path=1 AND position>? AND role!=? "
            "ORDER BY position LIMIT 1",
            (conversation_id, position, NOTE_ROLE),
        ).fetchone()
        if row is not None and int(row[0]) not in found:
            found[int(row[0])] = tuple(int(row[0]) if i == mid else i for i in group)
    return found


def branch_off(conn: sqlite3.Connection, message_id: int, title: str | None = None) -> int:
    """A new conversation holding the chosen branch up to and including ``message_id`` (its
    system prompt and parameters too), as one linear branch; returns its id."""
    conversation_id, position, _parent, on_path = _position(conn, message_id)
    if not on_path:
        raise StorageError("Only a message on the chat's shown branch can be branched from.")
    conv = conn.execute(
        "SELECT title, system_prompt, params FROM conversations WHERE id=?", (conversation_id,)
    ).fetchone()
    now = time.time()
    name = title if title is not None else f"{conv[0] or 'Untitled chat'} (branch)"
    cur = conn.execute(
        "INSERT INTO conversations(title, created, updated, system_prompt, params) VALUES (?,?,?,?,?)",
        (name, now, now, conv[1], conv[2]),
    )
    new_id = int(cur.lastrowid or 0)
    rows = conn.execute(
        f"SELECT id, {_COPIED} FROM messages WHERE conversation_id=? AND on_path=1 AND position<=? "
        "ORDER BY position",
        (conversation_id, position),
    ).fetchall()
    parent: int | None = None
    columns = _COPIED.split(", ")
    for n, (old_id, *values) in enumerate(rows):
        fields = dict(zip(columns, values, strict=True))
        if fields["status"] == "streaming":  # a reply still on its way: what arrived so far
            text, reasoning = joined(conn, old_id)
            fields["content"] += text
            fields["reasoning"] += reasoning
            fields["status"] = "interrupted"
        fields |= {"conversation_id": new_id, "position": n, "parent_id": parent}
        cur = conn.execute(
            f"INSERT INTO messages({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
            tuple(fields.values()),
        )
        parent = int(cur.lastrowid or 0)
    return new_id


def whole_tree(conn: sqlite3.Connection, conversation_id: int) -> list[TreeMessage]:
    """Every message of a conversation, every version, in the order they were added."""
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS}, chosen, on_path FROM messages WHERE conversation_id=? ORDER BY position",
        (conversation_id,),
    ).fetchall()
    return [TreeMessage(message_from_row(r[:-2]), bool(r[-2]), bool(r[-1])) for r in rows]


def delete_from(conn: sqlite3.Connection, conversation_id: int, position: int) -> int:
    """Delete the chosen branch's messages at ``position`` and after, with every version that
    hangs below them; returns how many rows went."""
    return conn.execute(
        # The CTE inside the IN: a statement that starts with WITH reports no rowcount.
        "DELETE FROM messages WHERE id IN (WITH RECURSIVE doomed(id) AS ("
        " SELECT id FROM messages WHERE conversation_id=? AND on_path=1 AND position>=?"
        " UNION SELECT m.id FROM messages m JOIN doomed d ON m.parent_id=d.id)"
        " SELECT id FROM doomed)",
        (conversation_id, position),
    ).rowcount


def delete_one(conn: sqlite3.Connection, message_id: int) -> int:
    """Delete one message of the chosen branch; what followed it follows its parent now (the
    message's own versions stay). When it was the last of its branch and has other versions,
    the newest of them is shown. Returns the conversation id."""
    conversation_id, _pos, parent, on_path = _position(conn, message_id)
    if not on_path:
        raise StorageError("Only a message on the branch shown can be deleted.")
    has_children = conn.execute("SELECT 1 FROM messages WHERE parent_id=? LIMIT 1", (message_id,)).fetchone()
    # Children keep their own flags: the chosen one stays chosen (its former siblings, the
    # message's other versions, were not), so the branch reads on without the message.
    conn.execute("UPDATE messages SET parent_id=? WHERE parent_id=?", (parent, message_id))
    conn.execute("DELETE FROM messages WHERE id=?", (message_id,))
    if not has_children:
        sibling = conn.execute(
            "SELECT id FROM messages WHERE conversation_id=? AND parent_id IS ?"
            " ORDER BY position DESC LIMIT 1",
            (conversation_id, parent),
        ).fetchone()
        if sibling is not None:  # otherwise its versions could no longer be reached
            choose(conn, int(sibling[0]))
    return conversation_id


def insert_tree(conn: sqlite3.Connection, conversation_id: int,
                rows: list[tuple[dict[str, object], int | None, bool]]) -> None:
    """Add a whole exported tree to an empty conversation: each row's values, the index of its
    parent among the rows before it (None: a first message) and whether it is the chosen one."""
    ids: list[int] = []
    shown: list[bool] = []
    for position, (values, parent, chosen) in enumerate(rows):
        parent_id = ids[parent] if parent is not None else None
        on_path = chosen and (parent is None or shown[parent])
        fields = {**values, "conversation_id": conversation_id, "position": position, "parent_id": parent_id,
                  "chosen": int(chosen), "on_path": int(on_path)}
        cur = conn.execute(
            f"INSERT INTO messages({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
            tuple(fields.values()),
        )
        ids.append(int(cur.lastrowid or 0))
        shown.append(on_path)
