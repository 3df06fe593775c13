"""Shared helpers for the chat-session service tests: protocol validity checks on the exact
request bodies the simulators recorded, and a store fixture."""

from __future__ import annotations

import json
from typing import Any

NOTE_MARKERS = ("Switched from", "left out of what the model sees")


def assert_valid_openai(messages: list[dict[str, Any]]) -> None:
    """Every OpenAI tool call has an id and JSON-string arguments; every ``tool`` message answers
    a call of the assistant turn right before it; no call is left unanswered."""
    pending: dict[str, str] = {}
    for msg in messages:
        assert msg["role"] in ("system", "user", "assistant", "tool"), msg
        if msg["role"] == "tool":
            assert msg.get("tool_call_id") in pending, f"orphan tool result: {msg}"
            pending.pop(msg["tool_call_id"])
            continue
        assert not pending, f"calls without a result before {msg}: {pending}"
        for call in msg.get("tool_calls") or []:
            assert call["id"] and call["type"] == "function"
            assert isinstance(call["function"]["arguments"], str)
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
            pending[call["id"]] = call["function"]["name"]
    assert not pending, f"unanswered calls at the end: {pending}"
    assert_no_notes(messages)


def assert_valid_ollama(messages: list[dict[str, Any]]) -> None:
    """Ollama: arguments are JSON objects; each ``tool`` message names the tool of a call of the
    assistant turn right before it (``tool_name``), with that call's id."""
    pending: dict[str, str] = {}
    for msg in messages:
        assert msg["role"] in ("system", "user", "assistant", "tool"), msg
        if msg["role"] == "tool":
            call_id = msg.get("tool_call_id")
            assert call_id in pending and msg.get("tool_name") == pending.pop(call_id), msg
            continue
        assert not pending, f"calls without a result before {msg}: {pending}"
        for call in msg.get("tool_calls") or []:
            assert isinstance(call["function"]["arguments"], dict)
            pending[call["id"]] = call["function"]["name"]
    assert not pending
    assert_no_notes(messages)


def assert_no_notes(messages: list[dict[str, Any]]) -> None:
    """Transcript notes never reach a model."""
    for msg in messages:
        content = msg.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        assert not any(marker in (text or "") for marker in NOTE_MARKERS), msg
