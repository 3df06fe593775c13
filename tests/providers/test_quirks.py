"""Per-model request rules and Groq payload trimming (pure functions)."""

from __future__ import annotations

import pytest

from victor_gui.providers import quirks


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("o1", True),
        ("o1-mini", True),
        ("o3-mini", True),
        ("o4-mini", True),
        ("gpt-5", True),
        ("gpt-5-mini", True),
        ("openai/gpt-5.1", True),
        ("gpt-4o", False),
        ("gpt-4o1", False),
        ("foo-o1", False),
    ],
)
def test_max_completion_tokens_models(model: str, expected: bool) -> None:
    assert quirks.uses_max_completion_tokens(model) is expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("o1", True),
        ("O3-MINI", True),
        ("openrouter/o4-mini", True),
        ("gpt-5", False),
        ("o1x", False),
        ("deepseek-reasoner", False),
    ],
)
def test_o_series(model: str, expected: bool) -> None:
    assert quirks.is_o_series(model) is expected


def test_body_rules() -> None:
    assert quirks.body_rules("o3-mini") == quirks.BodyRules("max_completion_tokens", False, False)
    assert quirks.body_rules("gpt-5") == quirks.BodyRules("max_completion_tokens", True, True)
    assert quirks.body_rules("deepseek-reasoner") == quirks.BodyRules("max_tokens", True, False)
    assert quirks.body_rules("deepseek-chat") == quirks.BodyRules()
    assert quirks.body_rules("o3-mini", apply_model_rules=False) == quirks.BodyRules()


def test_no_substring_traps() -> None:
    # "27b" must not match a "7b" rule, "r1" inside a name must not make a reasoner.
    assert not quirks.matches("qwen-27b", ("*-7b",))
    assert quirks.matches("qwen-7b", ("*-7b",))
    assert not quirks.is_reasoner("mistral-r1-large")
    assert quirks.model_key("Org/Sub/Model-X") == "model-x"


def _body(tool_size: int, turns: int) -> dict:
    msgs = [{"role": "system", "content": "sys"}]
    for i in range(turns):
        msgs.append({"role": "user", "content": f"q{i}"})
        msgs.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": f"c{i}", "type": "function", "function": {"name": "read", "arguments": "{}"}}
                ],
            }
        )
        msgs.append({"role": "tool", "tool_call_id": f"c{i}", "content": "x" * tool_size})
    msgs.append({"role": "user", "content": "last question"})
    return {"model": "m", "messages": msgs}


def test_trim_untouched_when_it_fits() -> None:
    body = _body(10, 2)
    assert quirks.trim_payload(body, 10_000) == (body, None)


def test_trim_removes_oldest_tool_outputs_first() -> None:
    body = _body(1000, 3)
    limit = len(quirks.dumps(body)) - 1500  # two outputs must go
    new, stats = quirks.trim_payload(body, limit)
    assert stats is not None and stats["tool_outputs"] == 2 and stats["messages"] == 0
    tools = [m["content"] for m in new["messages"] if m["role"] == "tool"]
    assert tools[:2] == [quirks.TRIMMED_TOOL_NOTE] * 2 and tools[2] == "x" * 1000
    assert len(quirks.dumps(new)) <= limit and stats["bytes_after"] <= limit


def test_trim_then_drops_oldest_turns_keeping_system_and_last_user() -> None:
    body = _body(10, 40)
    limit = 600
    new, stats = quirks.trim_payload(body, limit)
    assert stats is not None and stats["messages"] > 0
    msgs = new["messages"]
    assert msgs[0] == {"role": "system", "content": "sys"}
    assert msgs[-1] == {"role": "user", "content": "last question"}
    assert len(quirks.dumps(new)) <= limit
    # a tool result never survives without its call
    ids = {c["id"] for m in msgs for c in m.get("tool_calls") or []}
    assert all(m["tool_call_id"] in ids for m in msgs if m["role"] == "tool")


def test_trim_cannot_go_below_protected_messages() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "system", "content": "s" * 500}, {"role": "user", "content": "u" * 500}],
    }
    new, stats = quirks.trim_payload(body, 100)
    assert stats is not None and new["messages"] == body["messages"] and stats["bytes_after"] > 100
