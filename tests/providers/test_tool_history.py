"""Tool-history repair and id sanitising: the pure rules every protocol converter relies on."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from victor_gui.providers.protocols.anthropic_wire import convert_messages
from victor_gui.providers.protocols.bedrock_wire import convert as bedrock_convert
from victor_gui.providers.protocols.gemini_wire import convert_contents
from victor_gui.providers.protocols.ollama_wire import wire_messages
from victor_gui.providers.protocols.openai_payload import to_openai_messages
from victor_gui.providers.protocols.tool_history import (
    NO_OUTPUT,
    NO_RESULT,
    anthropic_tool_id,
    repair_history,
)
from victor_gui.providers.protocols.tool_history import NO_RESULT as UNANSWERED_RESULT
from victor_gui.providers.types import Message, ToolCall


def repair_tool_history(messages: list[Message]) -> tuple[list[Message], int]:
    """(repaired messages, number of repairs that changed what the model sees)."""
    repaired = repair_history(messages)
    return repaired.messages, repaired.count


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


# -- the unified repair: rules the three former copies disagreed on -------------------------------


def test_orphan_inside_a_window_of_results_does_not_split_it() -> None:
    history = [
        Message(role="assistant", tool_calls=[ToolCall(id="a", name="f"), ToolCall(id="b", name="g")]),
        Message(role="tool", tool_call_id="zz", name="h", content="stray"),
        Message(role="tool", tool_call_id="a", content="A"),
        Message(role="tool", tool_call_id="b", content="B"),
    ]
    repaired = repair_history(history)
    assert [(m.role, m.tool_call_id) for m in repaired.messages] == [
        ("assistant", None),
        ("tool", "a"),
        ("tool", "b"),
        ("user", None),
    ]
    assert repaired.messages[3].text == "[Result of tool h, whose call is not in this conversation]: stray"
    assert repaired.changes == {"orphan_tool_results": 1}


def test_pairing_by_name_only_when_exactly_one_pending_call_has_it() -> None:
    history = [
        Message(role="assistant", tool_calls=[ToolCall(id="a", name="read"), ToolCall(id="b", name="read")]),
        Message(role="tool", tool_call_id="read", content="which one?"),
    ]
    repaired = repair_history(history)
    assert [m.role for m in repaired.messages] == ["assistant", "tool", "tool", "user"]
    assert {m.tool_call_id for m in repaired.messages if m.role == "tool"} == {"a", "b"}
    assert repaired.changes == {"orphan_tool_results": 1, "unanswered_tool_calls": 2}
    # A result without an id pairs by its name, and takes the call's id and name.
    one = repair_history(
        [
            Message(role="assistant", tool_calls=[ToolCall(id="c1", name="ls")]),
            Message(role="tool", name="ls", content="x"),
        ]
    )
    assert one.messages[1].tool_call_id == "c1" and one.changes == {"paired_by_name": 1} and one.count == 0


def test_ids_repeated_across_turns_are_renamed_deterministically() -> None:
    history = [
        Message(role="assistant", tool_calls=[ToolCall(id="fallback_0", name="f")]),
        Message(role="tool", tool_call_id="fallback_0", content="1"),
        Message(role="assistant", tool_calls=[ToolCall(id="fallback_0", name="f")]),
        Message(role="tool", tool_call_id="fallback_0", content="2"),
    ]
    first, second = repair_history(history), repair_history(history)
    assert first.messages == second.messages  # the same request every time (prompt caching)
    assert [c.id for c in first.messages[2].tool_calls or []] == ["fallback_0_2"]
    assert first.messages[3].tool_call_id == "fallback_0_2" and first.messages[3].text == "2"
    assert first.changes == {"renamed_tool_call_ids": 1}


def test_duplicate_id_in_one_turn_pairs_its_first_result_with_the_first_call() -> None:
    history = [
        Message(role="assistant", tool_calls=[ToolCall(id="x", name="f"), ToolCall(id="x", name="g")]),
        Message(role="tool", tool_call_id="x", content="1"),
        Message(role="tool", tool_call_id="x", content="2"),
    ]
    out = repair_history(history).messages
    assert [(m.tool_call_id, m.name, m.text) for m in out[1:]] == [("x", "f", "1"), ("x_2", "g", "2")]


def test_empty_output_and_what_replay_adds() -> None:
    history = [
        Message(role="user", content="q"),
        Message(role="assistant", reasoning="thinking", tool_calls=[ToolCall(id="a", name="f")]),
        Message(role="tool", tool_call_id="a", content=""),
        Message(role="assistant", content=""),
    ]
    plain = repair_history(history)
    assert plain.messages[2].text == NO_OUTPUT
    # Protocols keep reasoning (Anthropic replays signed thinking) and every turn.
    assert plain.messages[1].reasoning == "thinking" and len(plain.messages) == 4
    replay = repair_history(history, replay=True)
    assert replay.messages[1].reasoning is None and len(replay.messages) == 3
    assert replay.changes == {"empty_turns_dropped": 1}


BROKEN = [
    Message(role="user", content="q"),
    Message(role="assistant", tool_calls=[ToolCall(id="a", name="f")]),
    Message(role="user", content="later"),
    Message(role="tool", tool_call_id="gone", name="grep", content="hits"),
]
NOTE = "[Result of tool grep, whose call is not in this conversation]: hits"


def test_every_protocol_converter_applies_the_same_repair() -> None:
    wires = {
        "openai": to_openai_messages(BROKEN, vision=False, provider="p", model="m")[0],
        "anthropic": convert_messages(BROKEN)[1],
        "gemini": convert_contents(BROKEN)[1],
        "bedrock": bedrock_convert(BROKEN)[1],
        "ollama": wire_messages(BROKEN),
    }
    for name, wire in wires.items():
        text = json.dumps(wire, ensure_ascii=False)
        assert NOTE in text, name
        assert NO_RESULT in text, name
