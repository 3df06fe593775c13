"""Export and import conversations as JSON (lossless) and Markdown (for reading).

JSON format ``victor_gui.conversations`` v1: every stored field of every conversation and
message except database ids (messages are identified by their order), keys sorted, two-space
indent. ``messages`` is the chosen branch (what the window shows); with ``tree=True`` each
conversation also has ``tree``: every version of every message in the order they were added,
each with ``parent`` (the index in ``tree`` of the message it follows, null for a first one) and
``chosen`` (the version picked among its siblings); importing such a file brings the whole tree
back. Markdown writes the chosen branch. Export → import → export therefore yields
byte-identical text. Every string passes through :func:`redact` on the way out, so a key
pasted into an error or a chat never leaves in an export (the one way an export can differ from
the database).

Attachments (:mod:`.export_attachments`): a message with files lists them under
``"attachments"`` (the key is absent for a message without any, so older exports read the
same): each entry has the :class:`~victor_gui.core.attachment_ref.AttachmentRef` fields, and
the original bytes as base64 in ``"data"`` when the file is small enough (images up to 20 MiB,
other files up to 5 MiB), else ``"left_out": "size"`` (or ``"missing"`` when the data folder no
longer has it). Import writes the bytes back as blobs and links them again; an entry without
data keeps its name on the message (the file is then not in that data folder). The ``tree`` of
a whole-tree export lists versions without their files (the chosen branch's ``messages`` carry
them).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from victor_gui.core.redact import redact
from victor_gui.errors import StorageError
from victor_gui.storage.export_attachments import (
    PendingBlobs,
    attachment_entries,
    imported_attachments,
    markdown_attachments,
)
from victor_gui.storage.models import Conversation, StoredMessage
from victor_gui.storage.store import ConversationStore
from victor_gui.storage.store_import import ImportedConversation
from victor_gui.storage.tree import TreeMessage

FORMAT = "victor_gui.conversations"
VERSION = 1
_MESSAGE_FIELDS = (
    "role",
    "content",
    "content_parts",
    "reasoning",
    "tool_calls",
    "tool_call_id",
    "provider",
    "model",
    "endpoint",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "ttft_ms",
    "tokens_per_second",
    "cost",
    "created",
    "updated",
    "status",
    "error",
    "meta",
)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def _conversation_dict(conv: Conversation, messages: list[StoredMessage]) -> dict[str, Any]:
    return {
        "title": conv.title,
        "created": conv.created,
        "updated": conv.updated,
        "system_prompt": conv.system_prompt,
        "params": conv.params,
        "messages": [{f: getattr(m, f) for f in _MESSAGE_FIELDS} for m in messages],
    }


def _tree_list(tree: list[TreeMessage]) -> list[dict[str, Any]]:
    """Every version of a conversation's messages, each naming its parent by index."""
    index = {t.message.id: n for n, t in enumerate(tree)}
    return [{**{f: getattr(t.message, f) for f in _MESSAGE_FIELDS},
             "parent": index.get(t.message.parent_id) if t.message.parent_id is not None else None,
             "chosen": t.chosen} for t in tree]


async def _ids(store: ConversationStore, conversation_ids: Iterable[int] | None) -> list[int]:
    if conversation_ids is not None:
        return list(conversation_ids)
    convs = await store.list_conversations(limit=1_000_000)
    return [c.id for c in reversed(convs)]  # oldest first, the order they were made


async def export_json(store: ConversationStore, conversation_ids: Iterable[int] | None = None, *,
                      tree: bool = False) -> str:
    """Conversations (all when ``conversation_ids`` is None) as a JSON document: the chosen
    branch of each, and with ``tree`` every version too (see the module doc)."""
    items = []
    for cid in await _ids(store, conversation_ids):
        conv = await store.get_conversation(cid)
        if conv is None:
            raise StorageError(f"no conversation with id {cid}")
        messages = await store.get_messages(cid)
        item = _scrub(_conversation_dict(conv, messages))
        for entry, m in zip(item["messages"], messages, strict=True):
            if m.attachments:  # after the scrub: redaction must not touch the base64 data
                entry["attachments"] = await attachment_entries(store, m.attachments, _scrub)
        if tree:
            item["tree"] = _scrub(_tree_list(await store.get_tree(cid)))
        items.append(item)
    doc = {"format": FORMAT, "version": VERSION, "conversations": items}
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


async def import_json(store: ConversationStore, text: str) -> list[int]:
    """Add the conversations of an :func:`export_json` document as new chats; returns their ids.

    All or nothing: the whole file is checked first and written in one transaction, so a
    malformed conversation anywhere leaves the store exactly as it was (StorageError says which).
    A message exported while still streaming comes back ``interrupted``: nothing will finish it.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StorageError(f"not a JSON export: line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StorageError("not a Victor GUI conversation export")
    if doc.get("version") != VERSION:
        raise StorageError(f"export format version {doc.get('version')!r} is not supported")
    conversations = doc.get("conversations", [])
    if not isinstance(conversations, list):
        raise StorageError("not a Victor GUI conversation export: 'conversations' is not a list")
    blobs = PendingBlobs()
    items = [_imported(n, item, blobs) for n, item in enumerate(conversations, 1)]
    imported = False
    try:
        await blobs.put(store)
        ids = await store.import_conversations(items)
        imported = True
        return ids
    except sqlite3.Error as exc:
        raise StorageError(f"the export could not be imported ({exc}); nothing was added") from exc
    except StorageError as exc:  # a read-only store says why it cannot save
        raise StorageError(f"the export could not be imported: {exc}") from exc
    finally:
        # Kept by the new rows; or, when nothing was added, not left behind in the data folder.
        await blobs.release(store, discard=not imported)


def _imported(n: int, item: Any, blobs: PendingBlobs) -> ImportedConversation:
    """Conversation ``n`` (1-based) of an export, checked; StorageError names it if malformed."""

    def bad(why: str) -> StorageError:
        return StorageError(f"conversation {n} of the export is malformed: {why}; nothing was imported")

    if not isinstance(item, dict):
        raise bad("not an object")
    messages = item.get("messages", [])
    if not isinstance(messages, list):
        raise bad("'messages' is not a list")
    for k, m in enumerate(messages, 1):
        if not isinstance(m, dict):
            raise bad(f"message {k} is not an object")
        if not isinstance(m.get("role"), str):
            raise bad(f"message {k} has no role")
    params = item.get("params") or {}
    if not isinstance(params, dict):
        raise bad("'params' is not an object")
    title, system_prompt = item.get("title", ""), item.get("system_prompt")
    if not isinstance(title, str) or not (system_prompt is None or isinstance(system_prompt, str)):
        raise bad("the title or system prompt is not text")
    refs = []
    for k, m in enumerate(messages, 1):
        try:
            refs.append(imported_attachments(m.get("attachments"), blobs))
        except ValueError as exc:
            raise bad(f"message {k}: {exc}") from None
    now = time.time()
    created = item.get("created")
    created = created if isinstance(created, int | float) else now
    updated = item.get("updated")
    updated = updated if isinstance(updated, int | float) else created
    return ImportedConversation(
        title=title, created=float(created), updated=float(updated), system_prompt=system_prompt,
        params=params,
        messages=[{**{f: m.get(f) for f in _MESSAGE_FIELDS}, "attachments": r}
                  for m, r in zip(messages, refs, strict=True)],
        tree=_imported_tree(item.get("tree"), bad),
    )


def _imported_tree(tree: Any, bad: Any) -> list[tuple[dict[str, Any], int | None, bool]] | None:
    """A conversation's ``tree`` (every version), checked: each parent comes before its child."""
    if tree is None:
        return None
    if not isinstance(tree, list):
        raise bad("'tree' is not a list")
    rows = []
    for k, m in enumerate(tree):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise bad(f"tree message {k + 1} is not a message")
        parent = m.get("parent")
        if parent is not None and not (isinstance(parent, int) and 0 <= parent < k):
            raise bad(f"tree message {k + 1} names no earlier message as its parent")
        rows.append(({f: m.get(f) for f in _MESSAGE_FIELDS}, parent, bool(m.get("chosen", True))))
    return rows


# C0 controls except tab and newline, and DEL: a NUL or an escape sequence in a .md file hides
# or recolours text in the viewer. Carriage returns go too (line ends become \n first).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) reorder what a reader
# sees ("invoice\u202efdp.exe" reads as "invoiceexe.pdf"): shown escaped, so the trick is visible.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def sanitise_markdown(text: str) -> str:
    """``text`` safe to show in a Markdown viewer: control characters dropped (tab and newline
    kept) and bidi override/isolate characters written as visible ``\\uXXXX`` escapes."""
    text = _CONTROLS.sub("", text.replace("\r\n", "\n"))
    return _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _fence(text: str) -> str:
    """A code fence longer than any backtick run in ``text``, so a result cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _markdown_tool_result(m: StoredMessage) -> str:
    """A tool-result row: which tool of which server, how it ended, how long, who approved it,
    its arguments and its result."""
    record = (m.meta or {}).get("tool")
    record = record if isinstance(record, dict) else {}
    name = record.get("tool") or "tool"
    where = f"{record['server']}/{name}" if record.get("server") else name
    head = [f"### Tool result · `{where}`"]
    if record.get("state"):
        head.append(str(record["state"]))
    if isinstance(record.get("duration_s"), int | float):
        head.append(f"{record['duration_s']:.2f} s")
    if record.get("approved_by"):
        head.append(f"approved by {record['approved_by']}")
    lines = [" · ".join(head), ""]
    if m.tool_call_id:
        lines += [f"Answers call `{m.tool_call_id}`.", ""]
    if record.get("arguments"):
        args = json.dumps(record["arguments"], ensure_ascii=False, indent=2)
        lines += ["Arguments:", "", f"{_fence(args)}json", args, _fence(args), ""]
    fence = _fence(m.content)
    lines += ["Result:", "", fence, m.content, fence, ""]
    return "\n".join(lines)


def _markdown_message(m: StoredMessage) -> str:
    if m.role == "tool":
        return _markdown_tool_result(m)
    head = f"### {m.role.capitalize()}"
    if m.model:
        head += f" · {m.provider + '/' if m.provider else ''}{m.model}"
    if m.status != "complete":
        head += f" · _{m.status}_"
    lines = [head, ""]
    if m.reasoning:
        lines += ["<details><summary>Reasoning</summary>", "", m.reasoning, "", "</details>", ""]
    if m.content:
        lines += [m.content, ""]
    if m.attachments:
        lines += [*markdown_attachments(m.attachments), ""]
    if m.content_parts:
        images = sum(1 for p in m.content_parts if p.get("type") == "image")
        if images:
            lines += [f"_({images} image{'s' if images > 1 else ''} not shown)_", ""]
    for call in m.tool_calls or []:
        args = json.dumps(call.get("arguments", {}), ensure_ascii=False, indent=2)
        lines += [f"Tool call `{call.get('name')}` (`{call.get('id')}`):", "", "```json", args, "```", ""]
    if m.error:
        lines += [f"> Error: {m.error}", ""]
    return "\n".join(lines)


async def export_markdown(store: ConversationStore, conversation_ids: Iterable[int] | None = None) -> str:
    """Conversations as readable Markdown (not meant to be imported back)."""
    out = []
    for cid in await _ids(store, conversation_ids):
        conv = await store.get_conversation(cid)
        if conv is None:
            raise StorageError(f"no conversation with id {cid}")
        out.append(f"# {conv.title or 'Untitled chat'}\n")
        if conv.system_prompt:
            out.append(f"> System: {conv.system_prompt}\n")
        out += [_markdown_message(m) for m in await store.get_messages(cid)]
    return sanitise_markdown(redact("\n".join(out)))


# Characters Windows, macOS or Linux refuse in a file name, and control characters.
_UNSAFE_NAME = re.compile(r'[<>:"/\\|?*\x00-\x1f]+')
_RESERVED_WINDOWS = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}


def export_file_name(title: str, fmt: str) -> str:
    """A file name for exporting a chat called ``title``: ``<title>.md`` or ``.json``, safe on
    every OS (no separators or reserved names, at most 80 characters), ``chat`` when empty."""
    stem = _UNSAFE_NAME.sub(" ", title).strip().strip(".")
    stem = " ".join(stem.split())[:80].rstrip(" .") or "chat"
    if stem.upper() in _RESERVED_WINDOWS:
        stem = f"{stem} chat"
    return f"{stem}.{fmt}"
