"""Tool-history repair and id sanitising: the pure rules every protocol converter relies on."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from victor_gui.providers.protocols.tool_history import (
    UNANSWERED_RESULT,
    anthropic_tool_id,
    repair_tool_history,
)
from victor_gui.providers.types import Message, ToolCall


def test_paired_history_is_unchanged() -> None:
    history = [
        Message(role="user", content="q"),
        Message(role="assistant", tool_calls=[ToolCall(id="a", name="f")]),
        Message(role="tool", tool_call_id="a", name="f", content="r"),
    ]
    out, repairs = repair_tool_history(history)
    assert repairs == 0 and out == history


def test_unanswered_call_gets_a_synthetic_result_before_the_next_turn() -> None:
    history = [
        Message(role="assistant", tool_calls=[ToolCall(id="a", name="f"), ToolCall(id="b", name="g")]),
        Message(role="tool", tool_call_id="a", content="r"),
        Message(role="user", content="next"),
    ]
    out, repairs = repair_tool_history(history)
    assert repairs == 1
    assert [(m.role, m.tool_call_id) for m in out] == [
        ("assistant", None),
        ("tool", "a"),
        ("tool", "b"),
        ("user", None),
    ]
    assert out[2].content == UNANSWERED_RESULT and out[2].name == "g"


def test_call_at_the_end_is_answered_too() -> None:
    out, repairs = repair_tool_history([Message(role="assistant", tool_calls=[ToolCall(id="a", name="f")])])
    assert repairs == 1 and out[-1].role == "tool" and out[-1].tool_call_id == "a"


def test_orphan_result_becomes_user_text_keeping_its_output() -> None:
    out, repairs = repair_tool_history(
        [
            Message(role="user", content="q"),
            Message(role="tool", tool_call_id="zz", name="search", content="42"),
        ]
    )
    assert repairs == 1
    assert out[1].role == "user" and "42" in out[1].text and "search" in out[1].text


def test_result_keyed_by_tool_name_is_paired_and_gets_the_call_id() -> None:
    # Older clients stored the tool's name where the id belongs.
    history = [
        Message(role="assistant", tool_calls=[ToolCall(id="call_1", name="read_file")]),
        Message(role="tool", tool_call_id="read_file", content="text"),
    ]
    out, repairs = repair_tool_history(history)
    assert repairs == 0 and out[1].tool_call_id == "call_1"


def test_result_with_unknown_id_is_not_pinned_on_another_call_of_the_same_tool() -> None:
    history = [
        Message(role="assistant", tool_calls=[ToolCall(id="call_1", name="f")]),
        Message(role="tool", tool_call_id="call_9", name="f", content="other"),
    ]
    out, repairs = repair_tool_history(history)
    assert repairs == 2  # the orphan result as text, the unanswered call answered
    assert [m.role for m in out] == ["assistant", "tool", "user"]


def test_duplicate_ids_in_one_turn_are_made_unique() -> None:
    history = [
        Message(role="assistant", tool_calls=[ToolCall(id="x", name="f"), ToolCall(id="x", name="g")]),
        Message(role="tool", tool_call_id="x", content="1"),
    ]
    out, _ = repair_tool_history(history)
    ids = [c.id for c in out[0].tool_calls or []]
    assert len(set(ids)) == 2
    assert {m.tool_call_id for m in out[1:]} == set(ids)


@given(st.text(min_size=1, max_size=60))
def test_anthropic_ids_always_match_the_pattern_and_are_deterministic(raw: str) -> None:
    cleaned = anthropic_tool_id(raw)
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", cleaned)
    assert anthropic_tool_id(raw) == cleaned


def test_valid_ids_pass_through_and_near_collisions_stay_apart() -> None:
    assert anthropic_tool_id("toolu_01ABC-x") == "toolu_01ABC-x"
    assert anthropic_tool_id("a.b") != anthropic_tool_id("a:b")
