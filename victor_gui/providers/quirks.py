"""Per-model and per-provider request rules for OpenAI-compatible endpoints, as data.

Model rules match the lowercase *last path segment* of the model id (``openai/o3-mini`` →
``o3-mini``) against glob patterns anchored at both ends, so ``o1*`` never matches
``gpt-4o1`` and ``*-7b`` never matches ``qwen-27b``. Every function here is pure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

# Models that take ``max_completion_tokens`` instead of ``max_tokens``.
MAX_COMPLETION_TOKENS_MODELS = ("o1*", "o3*", "o4*", "gpt-5*", "gpt5*")
# OpenAI o-series: fixed temperature and (per the seed's behaviour) no tools.
O_SERIES = ("o1", "o1-*", "o3", "o3-*", "o4", "o4-*")
# Models that refuse function calling and stream their reasoning in ``reasoning_content``.
NO_TOOL_REASONERS = ("deepseek-reasoner*",)
TRIMMED_TOOL_NOTE = "[tool output removed to fit the provider's request size limit]"


def model_key(model: str) -> str:
    """The part of a model id rules are matched on: lowercase, last path segment."""
    return model.strip().lower().rsplit("/", 1)[-1]


def matches(model: str, patterns: tuple[str, ...]) -> bool:
    """True when the model's key matches one of the glob ``patterns`` exactly."""
    key = model_key(model)
    return any(fnmatchcase(key, p) for p in patterns)


def uses_max_completion_tokens(model: str) -> bool:
    return matches(model, MAX_COMPLETION_TOKENS_MODELS)


def is_o_series(model: str) -> bool:
    return matches(model, O_SERIES)


def refuses_tools(model: str) -> bool:
    """Models known to reject a ``tools`` field: the o-series and deepseek-reasoner."""
    return is_o_series(model) or matches(model, NO_TOOL_REASONERS)


def is_reasoner(model: str) -> bool:
    return is_o_series(model) or matches(model, NO_TOOL_REASONERS)


@dataclass(frozen=True)
class BodyRules:
    """What to change in a request body for one model."""

    token_field: str = "max_tokens"
    send_temperature: bool = True
    send_tools: bool = True


def body_rules(model: str, *, apply_model_rules: bool = True) -> BodyRules:
    """The rules for ``model``; local servers (``apply_model_rules=False``) take plain OpenAI."""
    if not apply_model_rules:
        return BodyRules()
    return BodyRules(
        token_field="max_completion_tokens" if uses_max_completion_tokens(model) else "max_tokens",
        send_temperature=not is_o_series(model),
        send_tools=not refuses_tools(model),
    )


# ---------------------------------------------------------------------------------------------
# Payload trimming (Groq's 4 MiB request limit)
# ---------------------------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    """The exact bytes sent on the wire (compact, UTF-8): sizes are measured on this."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _protected(messages: list[dict[str, Any]]) -> int:
    """Index of the last user turn (it and all later messages are kept), or len()."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    return len(messages)


def _turn_groups(messages: list[dict[str, Any]], stop: int) -> list[list[int]]:
    """Droppable groups before ``stop``: an assistant call and its tool results go together."""
    groups: list[list[int]] = []
    for i in range(stop):
        role = messages[i].get("role")
        if role in ("system", "developer"):
            continue
        if role == "tool" and groups and messages[groups[-1][0]].get("tool_calls"):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def trim_payload(body: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], dict[str, int] | None]:
    """Shrink ``body["messages"]`` until the JSON body fits ``max_bytes``.

    Oldest tool outputs are replaced by a short note first, then the oldest turns are dropped
    (an assistant tool call together with its results). System messages and the last user turn
    (and everything after it) are never dropped. Returns the new body and counts of what was
    trimmed (None when nothing had to change). A body that still does not fit is sent anyway;
    the endpoint's own 413 then tells the person.
    """
    total = len(dumps(body))
    if total <= max_bytes:
        return body, None
    messages = [dict(m) for m in body.get("messages", [])]
    sizes = [len(dumps(m)) for m in messages]
    stats = {"tool_outputs": 0, "messages": 0, "bytes_before": total}
    note_size = len(dumps(TRIMMED_TOOL_NOTE))
    for i, msg in enumerate(messages):
        if total <= max_bytes:
            break
        if msg.get("role") == "tool" and msg.get("content") != TRIMMED_TOOL_NOTE:
            old = len(dumps(msg.get("content", "")))
            msg["content"] = TRIMMED_TOOL_NOTE
            total -= old - note_size
            sizes[i] = len(dumps(msg))
            stats["tool_outputs"] += 1
    if total > max_bytes:
        drop: set[int] = set()
        for group in _turn_groups(messages, _protected(messages)):
            if total <= max_bytes:
                break
            for i in group:
                drop.add(i)
                total -= sizes[i] + 1  # the message and its comma
                stats["messages"] += 1
        messages = [m for i, m in enumerate(messages) if i not in drop]
    new_body = dict(body, messages=messages)
    stats["bytes_after"] = len(dumps(new_body))
    return new_body, stats
