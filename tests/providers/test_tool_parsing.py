"""Text tool-call parsing against outputs in the shapes real models produce."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from victor_gui.providers.tool_parsing import parse_tool_calls_from_text, tools_as_system_prompt
from victor_gui.providers.types import ToolDefinition

TOOLS = {"read_file", "write_file", "list_directory", "search"}


def test_hermes_blocks_several_and_text_kept() -> None:
    # Qwen2.5-Coder / Hermes-3 style: prose, then one block per call.
    text = (
        "I'll look at the project layout first.\n\n"
        "<tool_call>\n{\"name\": \"list_directory\", \"arguments\": {\"path\": \".\"}}\n</tool_call>\n"
        "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"README.md\"}}\n</tool_call>"
    )
    calls, rest = parse_tool_calls_from_text(text, TOOLS)
    assert [(c.name, c.arguments) for c in calls] == [
        ("list_directory", {"path": "."}),
        ("read_file", {"path": "README.md"}),
    ]
    assert rest == "I'll look at the project layout first."
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)


def test_hermes_arguments_as_json_string_and_unclosed_final_block() -> None:
    # llama-server uses </tool_call> as a stop word, so the closing tag may be missing.
    text = '<tool_call>{"name": "search", "arguments": "{\\"query\\": \\"def main\\"}"}'
    calls, rest = parse_tool_calls_from_text(text)
    assert [(c.name, c.arguments) for c in calls] == [("search", {"query": "def main"})]
    assert rest == ""


def test_hermes_block_unknown_tool_is_still_a_call() -> None:
    calls, _ = parse_tool_calls_from_text('<tool_call>{"name": "delete_all", "arguments": {}}</tool_call>',
                                          TOOLS)
    assert [c.name for c in calls] == ["delete_all"]


def test_hermes_block_with_bad_json_is_left_visible() -> None:
    text = "Trying: <tool_call>{name: read_file}</tool_call>"
    calls, rest = parse_tool_calls_from_text(text, TOOLS)
    assert calls == [] and rest == text


def test_qwen3_coder_function_parameters() -> None:
    # Qwen3-Coder's chat template output, values JSON-decoded when valid.
    text = (
        "Let me write the file.\n"
        "<tool_call>\n<function=write_file>\n<parameter=path>\nsrc/app.py\n</parameter>\n"
        "<parameter=content>\ndef main():\n    print(\"hi\")\n</parameter>\n"
        "<parameter=overwrite>\ntrue\n</parameter>\n<parameter=mode>\n420\n</parameter>\n"
        "<parameter=tags>\n[\"a\", \"b\"]\n</parameter>\n</function>\n</tool_call>"
    )
    calls, rest = parse_tool_calls_from_text(text, TOOLS)
    assert len(calls) == 1
    assert calls[0].name == "write_file"
    assert calls[0].arguments == {
        "path": "src/app.py",
        "content": 'def main():\n    print("hi")',
        "overwrite": True,
        "mode": 420,
        "tags": ["a", "b"],
    }
    assert rest == "Let me write the file."


def test_qwen_bare_function_without_tool_call_wrapper() -> None:
    text = "<function=read_file><parameter=path>a.txt</parameter></function>\n<function=search>" \
           "<parameter=query>{not json</parameter></function>"
    calls, rest = parse_tool_calls_from_text(text)
    assert [(c.name, c.arguments) for c in calls] == [
        ("read_file", {"path": "a.txt"}),
        ("search", {"query": "{not json"}),
    ]
    assert rest == ""


def test_lmstudio_tool_request_blocks() -> None:
    text = (
        "[TOOL_REQUEST]\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.py\"}}\n[END_TOOL_REQUEST]"
        "[TOOL_REQUEST]{\"name\": \"read_file\", \"arguments\": {\"path\": \"b.py\"}}[END_TOOL_REQUEST]"
    )
    calls, rest = parse_tool_calls_from_text(text, TOOLS)
    assert [c.arguments["path"] for c in calls] == ["a.py", "b.py"]
    assert calls[0].id != calls[1].id
    assert rest == ""


def test_fenced_json_with_parameters_key() -> None:
    text = "I need the file contents.\n```json\n{\"name\": \"read_file\", \"parameters\": {\"path\": " \
           "\"setup.py\"}}\n```\nThen I'll continue."
    calls, rest = parse_tool_calls_from_text(text, TOOLS)
    assert [(c.name, c.arguments) for c in calls] == [("read_file", {"path": "setup.py"})]
    assert "```" not in rest and rest.startswith("I need") and rest.endswith("continue.")


def test_bare_json_object_and_llama_python_tag() -> None:
    text = '<|python_tag|>{"name": "search", "parameters": {"query": "TODO"}}'
    calls, rest = parse_tool_calls_from_text(text, TOOLS)
    assert [(c.name, c.arguments) for c in calls] == [("search", {"query": "TODO"})]
    assert rest == ""


def test_bare_json_list_of_calls_and_openai_shape() -> None:
    text = json.dumps([
        {"type": "function", "function": {"name": "read_file", "arguments": '{"path": "x"}'}},
        {"name": "search", "arguments": {"query": "y"}},
    ])
    calls, _ = parse_tool_calls_from_text(text, TOOLS)
    assert [(c.name, c.arguments) for c in calls] == [
        ("read_file", {"path": "x"}), ("search", {"query": "y"})]


def test_planning_json_is_not_a_call() -> None:
    plan = '{"name": "refactor", "arguments": {}, "steps": ["read", "edit"], "complexity": "medium"}'
    assert parse_tool_calls_from_text(plan) == ([], plan)
    # With known tools, an unknown name in plain JSON is data, not a call.
    data = 'The config is {"name": "my-app", "arguments": {"debug": true}}.'
    assert parse_tool_calls_from_text(data, TOOLS) == ([], data)


def test_echoed_tool_definition_is_not_a_call() -> None:
    text = '{"name": "read_file", "description": "Read a file", "parameters": {"type": "object", ' \
           '"properties": {"path": {"type": "string"}}}}'
    assert parse_tool_calls_from_text(text, TOOLS)[0] == []


def test_json_in_python_fence_is_an_example_not_a_call() -> None:
    text = "Example:\n```python\ncall = {\"name\": \"read_file\", \"arguments\": {\"path\": \"x\"}}\n```"
    assert parse_tool_calls_from_text(text, TOOLS) == ([], text)


def test_tool_name_case_is_normalised_to_the_offered_spelling() -> None:
    calls, _ = parse_tool_calls_from_text('{"name": "Read_File", "arguments": {"path": "a"}}', TOOLS)
    assert [c.name for c in calls] == ["read_file"]


def test_plain_prose_untouched() -> None:
    text = "No tools needed. The answer is 42 {as usual}."
    assert parse_tool_calls_from_text(text, TOOLS) == ([], text)
    assert parse_tool_calls_from_text("") == ([], "")


def test_markup_wins_over_json_examples() -> None:
    text = ('Format: {"name": "search", "arguments": {"query": "example"}}\n'
            '<tool_call>{"name": "read_file", "arguments": {"path": "real"}}</tool_call>')
    calls, rest = parse_tool_calls_from_text(text, TOOLS)
    assert [c.arguments for c in calls] == [{"path": "real"}]
    assert rest.startswith("Format:")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_on_any_text(text: str) -> None:
    calls, rest = parse_tool_calls_from_text(text, TOOLS)
    assert isinstance(calls, list) and isinstance(rest, str)


_FRAGMENTS = st.sampled_from([
    "<tool_call>", "</tool_call>", "[TOOL_REQUEST]", "[END_TOOL_REQUEST]", "<function=", "<parameter=",
    "</parameter>", "</function>", "```json\n", "```", "{", "}", "[", "]", '"name"', ":", '"arguments"',
    ",", '"read_file"', "\n", "null", "{\"a\":", "<|python_tag|>",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=40).map("".join), st.none() | st.just(TOOLS))
def test_never_raises_on_markup_soup(text: str, names: set[str] | None) -> None:
    calls, rest = parse_tool_calls_from_text(text, names)
    assert all(c.name for c in calls) and isinstance(rest, str)


def test_deeply_nested_and_huge_input_is_bounded() -> None:
    import time

    hostile = '{"name": ' + '{"a":' * 5000 + "<tool_call>" + "[" * 20000
    start = time.perf_counter()
    calls, rest = parse_tool_calls_from_text(hostile, TOOLS)
    assert calls == [] and rest == hostile
    assert time.perf_counter() - start < 2.0


def test_system_prompt_describes_tools_and_round_trips() -> None:
    tools = [
        ToolDefinition(name="read_file", description="Read a text file.",
                       parameters={"type": "object", "properties": {"path": {"type": "string"}},
                                   "required": ["path"]}),
        ToolDefinition(name="search", description="Search the code."),
    ]
    prompt = tools_as_system_prompt(tools)
    assert "## read_file" in prompt and "Read a text file." in prompt and '"required": ["path"]' in prompt
    assert "## search" in prompt and "<tool_call>" in prompt
    # A model that follows the instructions literally is understood by the parser.
    reply = 'Reading it.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "a.md"}}\n</tool_call>'
    calls, _ = parse_tool_calls_from_text(reply, {t.name for t in tools})
    assert calls[0].name == "read_file"
    assert tools_as_system_prompt([]) == ""


def test_several_calls_in_one_block_and_unclosed_block_before_another() -> None:
    text = ('<tool_call>\n{"name": "read_file", "arguments": {"path": "a"}}\n'
            '{"name": "read_file", "arguments": {"path": "b"}}\n</tool_call>'
            '<tool_call>{"name": "search", "arguments": {"query": "c"}}'
            '<tool_call>{"name": "search", "arguments": {"query": "d"}}</tool_call>')
    calls, rest = parse_tool_calls_from_text(text, TOOLS)
    assert [next(iter(c.arguments.values())) for c in calls] == ["a", "b", "c", "d"]
    assert rest == ""
