"""History repair before a request: ids unique, results paired (by id, else by a unique tool
name), orphans kept as user notes, unanswered calls answered, reasoning never replayed."""

from __future__ import annotations

from victor_gui.providers.protocols.tool_history import (
    IMAGE_OMITTED,
    NO_RESULT,
    RepairedHistory,
    repair_history,
)
from victor_gui.providers.types import ImagePart, Message, TextPart, ToolCall


def prepare_history(messages: list[Message], *, vision: bool = True) -> RepairedHistory:
    """What the session service sends: the one repair, in replay mode."""
    return repair_history(messages, vision=vision, replay=True)


PNG = ImagePart.from_bytes(b"\x89PNG\r\n\x1a\n", "image/png")


def test_pairs_repairs_and_strips_reasoning() -> None:
    history = [
        Message(role="system", content="sys"),
        Message(role="user", content="q"),
        Message(role="assistant", content="", reasoning="private chain of thought",
                tool_calls=[ToolCall(id="fallback_0", name="read", arguments={"p": "a"})]),
        Message(role="tool", tool_call_id="read", content="A"),  # Victor stored the tool *name*
        Message(role="user", content="again"),
        Message(role="assistant", tool_calls=[ToolCall(id="fallback_0", name="read", arguments={"p": "b"}),
                                              ToolCall(id="x2", name="ls")]),
        Message(role="tool", tool_call_id="fallback_0", content=""),
        Message(role="tool", tool_call_id="nowhere", name="grep", content="hits"),
        Message(role="assistant", content=""),  # an interrupted reply that never said anything
        Message(role="user", content="done?"),
    ]
    prepared = prepare_history(history)
    out = prepared.messages
    assert all(m.reasoning is None for m in out)
    assert out[3] == Message(role="tool", tool_call_id="fallback_0", name="read", content="A")
    second = out[5].tool_calls or []
    assert second[0].id != "fallback_0" and second[0].arguments == {"p": "b"} and second[1].id == "x2"
    assert out[6] == Message(role="tool", tool_call_id=second[0].id, name="read", content="(no output)")
    assert out[7] == Message(role="tool", tool_call_id="x2", name="ls", content=NO_RESULT)
    assert out[8].role == "user" and out[8].text.startswith("[Result of tool grep, whose call is not")
    assert [m.role for m in out][-1:] == ["user"] and len(out) == 10 - 1 + 1  # empty dropped, result added
    assert prepared.repairs == {"orphan_tool_results": 1, "unanswered_tool_calls": 1,
                                "renamed_tool_call_ids": 1, "paired_by_name": 1, "images_omitted": 0,
                                "empty_turns_dropped": 1}
    assert history[2].reasoning == "private chain of thought"  # the input is untouched


def test_images_become_a_placeholder_for_a_model_without_vision() -> None:
    msg = Message(role="user", content=[TextPart(text="what is this?"), PNG])
    assert prepare_history([msg], vision=True).messages == [msg]
    blind = prepare_history([msg], vision=False)
    assert blind.messages[0].content == f"what is this?\n{IMAGE_OMITTED}"
    assert blind.repairs["images_omitted"] == 1
