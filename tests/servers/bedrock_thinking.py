"""Claude's extended thinking as the Bedrock simulator serves and checks it.

With ``additionalModelRequestFields.thinking.type == "enabled"`` a scripted reasoning comes back
as a signed ``reasoningContent.reasoningText`` block (and, with the server option
``redacted_thinking=True``, an opaque ``redactedContent`` block after it). Every signature and
redacted blob handed out is remembered on the server, bound to its text, so a replay can be
checked the way Anthropic checks it behind Bedrock: the last assistant turn with ``toolUse``
must open with reasoning, and every replayed reasoning block must be one that was issued, text
unchanged. Without thinking, reasoning is unsigned text (as DeepSeek-R1's is) and nothing is
required.
"""

from __future__ import annotations

import base64
import os
import threading
from typing import Any

PREFIX = "The model returned the following errors: "
_LOCK = threading.Lock()  # handler threads share the server's registry


def thinking_on(body: Any) -> bool:
    """Whether the request turned Claude's extended thinking on."""
    fields = body.get("additionalModelRequestFields") if isinstance(body, dict) else None
    thinking = fields.get("thinking") if isinstance(fields, dict) else None
    return isinstance(thinking, dict) and thinking.get("type") == "enabled"


def _issued(server: Any) -> dict[str, str | None]:
    registry: dict[str, str | None] | None = getattr(server, "issued_thinking", None)
    if registry is None:
        registry = server.issued_thinking = {}
    return registry


def _token(size: int) -> str:
    return base64.b64encode(os.urandom(size)).decode()


def issue(server: Any, reasoning: str, *, thinking: bool) -> list[dict[str, Any]]:
    """The ``reasoningContent`` parts for a reply: ``{"text", "signature"}`` (signature only with
    thinking on) and, when the server says so, ``{"redactedContent"}``. Issued ones are recorded."""
    if not reasoning:
        return []
    if not thinking:
        return [{"text": reasoning}]
    parts: list[dict[str, Any]] = [{"text": reasoning, "signature": _token(96)}]
    if server.options.get("redacted_thinking"):
        parts.append({"redactedContent": _token(64)})
    with _LOCK:
        registry = _issued(server)
        for part in parts:
            if "signature" in part:
                registry[part["signature"]] = part["text"]
            else:
                registry[part["redactedContent"]] = None
    return parts


def converse_blocks(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The parts as Converse output content blocks."""
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if "redactedContent" in part:
            blocks.append({"reasoningContent": {"redactedContent": part["redactedContent"]}})
        else:
            blocks.append({"reasoningContent": {"reasoningText": dict(part)}})
    return blocks


def stream_deltas(part: dict[str, Any]) -> list[dict[str, Any]]:
    """One part as ConverseStream ``delta.reasoningContent`` values: the text in two pieces, then
    the signature alone; a redacted blob in one delta."""
    if "redactedContent" in part:
        return [{"redactedContent": part["redactedContent"]}]
    text = part["text"]
    deltas: list[dict[str, Any]] = [
        {"text": p} for p in (text[: len(text) // 2], text[len(text) // 2 :]) if p
    ]
    if "signature" in part:
        deltas.append({"signature": part["signature"]})
    return deltas


def check(server: Any, body: Any) -> str | None:
    """The ValidationException message for a request that breaks the thinking rules, else None."""
    if not thinking_on(body):
        return None
    messages = body.get("messages") or []
    with _LOCK:
        registry = dict(_issued(server))
    for i, msg in enumerate(messages):
        for j, block in enumerate(msg.get("content") or []):
            reasoning = block.get("reasoningContent")
            if reasoning is None:
                continue
            if "redactedContent" in reasoning:
                if reasoning["redactedContent"] not in registry:
                    return f"{PREFIX}messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
                continue
            text = reasoning.get("reasoningText") or {}
            if not text.get("signature"):
                return f"{PREFIX}messages.{i}.content.{j}.thinking.signature: Field required"
            if registry.get(text["signature"], "\0") != text.get("text"):
                return f"{PREFIX}messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    # Only the final assistant turn is bound (an earlier tool loop's thinking may be dropped), and
    # only while it is a tool turn: its reasoning must precede the lastmost toolUse/toolResult set.
    finals = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    content = (messages[finals[-1]].get("content") or []) if finals else []
    if any("toolUse" in b for b in content) and "reasoningContent" not in content[0]:
        found = "tool_use" if "toolUse" in content[0] else "text"
        return (
            f"{PREFIX}messages.{finals[-1]}.content.0.type: Expected `thinking` or `redacted_thinking`, "
            f"but found `{found}`. When `thinking` is enabled, a final `assistant` message must start "
            "with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` "
            "blocks). We recommend you include thinking blocks from previous turns. To avoid this "
            "requirement, disable `thinking`. Please consult our documentation at "
            "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
        )
    return None
