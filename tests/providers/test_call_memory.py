"""The bounded per-call memory behind thinking and signature replay."""

from __future__ import annotations

from victor_gui.providers.call_memory import CallMemory
from victor_gui.providers.types import ToolCall


def test_a_turn_is_remembered_under_its_first_call_and_the_oldest_go_first() -> None:
    memory: CallMemory[list[str]] = CallMemory(limit=3)
    for n in range(5):
        memory.remember_turn([ToolCall(id=f"a{n}", name="f"), ToolCall(id=f"b{n}", name="f")], [f"block{n}"])
    assert len(memory) == 3
    assert memory.get("a0") is None and memory.get("a1") is None  # evicted, oldest first
    assert memory.get("a4") == ["block4"] and memory.get("b4") is None  # first call of the turn


def test_storing_again_makes_an_entry_recent() -> None:
    memory: CallMemory[str] = CallMemory(limit=2)
    memory.update({"x": "1", "y": "2"})
    memory.update({"x": "1b"})  # x is now the most recent
    memory.update({"z": "3"})
    assert memory.get("y") is None and memory.get("x") == "1b" and memory.get("z") == "3"


def test_nothing_is_stored_without_calls_or_value() -> None:
    memory: CallMemory[list[str]] = CallMemory(limit=4)
    memory.remember_turn(None, ["block"])
    memory.remember_turn([ToolCall(id="c", name="f")], [])
    memory.remember_turn([ToolCall(id="d", name="f")], None)
    assert len(memory) == 0
