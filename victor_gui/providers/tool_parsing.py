"""Tool calls written as text, for models (or servers) without native tool calling.

Such a model is told about the tools in its system prompt (:func:`tools_as_system_prompt`) and
answers with markup. :func:`parse_tool_calls_from_text` turns every common dialect back into
:class:`~victor_gui.providers.types.ToolCall` objects and returns the text with the markup taken
out, so the chat shows prose and the agent sees calls:

* LM Studio: ``[TOOL_REQUEST]{json}[END_TOOL_REQUEST]`` (several allowed);
* Hermes / Qwen2.5: ``<tool_call>{json}</tool_call>`` (several; a missing closing tag at the very
  end is tolerated because servers often use it as a stop sequence);
* Qwen3-Coder: ``<function=NAME><parameter=KEY>value</parameter></function>``, bare or inside
  ``<tool_call>``; a value is JSON-decoded when it is valid JSON, else kept as a string;
* JSON objects with ``name`` and ``arguments`` (or ``parameters``), in a fenced ```json block or
  bare in the text (also a list of them, and the OpenAI ``{"function": {...}}`` shape).

Markup tags state the intent explicitly, so calls found in them are returned even when their
name is not in ``tool_names`` (the agent can then tell the model the tool does not exist). Plain
JSON is ambiguous (models print JSON plans and examples), so it counts only when its name is a
known tool; without ``tool_names`` it counts unless it carries planning keys (``steps``,
``complexity``, ...), the filter Victor used.

The parser never raises: garbage in, ``([], text)`` out.
"""

from __future__ import annotations

import json
import re
from typing import Any

from victor_gui.providers.types import ToolCall, ToolDefinition

# Keys that mark a JSON object as a plan or a description, not a call (Victor's filter).
_PLANNING_KEYS = frozenset({"complexity", "steps", "desc", "description", "duration", "plan", "reasoning"})
# A bare-JSON scan tries at most this many candidate objects: bounds the work on hostile input.
_MAX_JSON_CANDIDATES = 64

_LMSTUDIO = re.compile(r"\[TOOL_REQUEST\](.*?)\[END_TOOL_REQUEST\]", re.S)
# A block ends at its closing tag, at the next opening tag (a model that forgot to close it) or
# at the end of the text (servers that use </tool_call> as a stop word).
_HERMES = re.compile(r"<tool_call>(.*?)(?:</tool_call>|(?=<tool_call>)|\Z)", re.S)
_QWEN_FUNCTION = re.compile(r"<function=([^>\n]+)>(.*?)(?:</function>|\Z)", re.S)
_QWEN_PARAM = re.compile(r"<parameter=([^>\n]+)>(.*?)(?:</parameter>|(?=<parameter=)|\Z)", re.S)
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\n(.*?)```", re.S)
_JSON_FENCE_LANGS = frozenset({"", "json", "jsonc", "json5", "tool_call", "tool", "javascript", "js"})
# Llama 3.1 prefixes its JSON calls with this special token when it leaks into the text.
_LEFTOVER_MARKERS = re.compile(r"<\|python_tag\|>|<\|eom_id\|>|<tool_call>\s*</tool_call>")
_BLANK_RUNS = re.compile(r"\n{3,}")


def parse_tool_calls_from_text(text: str, tool_names: set[str] | None = None) -> tuple[list[ToolCall], str]:
    """Tool calls written in ``text`` and the text with their markup removed.

    ``tool_names`` (the tools offered) filters ambiguous plain JSON; see the module docstring.
    Every call gets a fresh id. Never raises.
    """
    try:
        return _parse(text, tool_names)
    except Exception:  # a parser bug must never break a chat turn; the text is still shown
        return [], text if isinstance(text, str) else ""


def _parse(text: str, tool_names: set[str] | None) -> tuple[list[ToolCall], str]:
    if not isinstance(text, str) or not text:
        return [], text if isinstance(text, str) else ""
    calls: list[ToolCall] = []

    def take_markup(match: re.Match[str]) -> str:
        found = _calls_from_payload(match.group(1), tool_names, explicit=True)
        if not found:
            return match.group(0)  # unparseable: leave it visible rather than lose it
        calls.extend(found)
        return ""

    remaining = _LMSTUDIO.sub(take_markup, text)
    remaining = _HERMES.sub(take_markup, remaining)

    def take_function(match: re.Match[str]) -> str:
        call = _qwen_call(match.group(1), match.group(2))
        if call is None:
            return match.group(0)
        calls.append(call)
        return ""

    remaining = _QWEN_FUNCTION.sub(take_function, remaining)

    if not calls:
        # Plain JSON only when no explicit markup was used: a model that writes <tool_call> and
        # also shows a JSON example means the tags.
        remaining = _take_fenced_json(remaining, tool_names, calls)
        if not calls:
            remaining = _take_bare_json(remaining, tool_names, calls)

    if calls:
        remaining = _LEFTOVER_MARKERS.sub("", remaining)
        remaining = _BLANK_RUNS.sub("\n\n", remaining).strip()
    return calls, remaining


# -- payloads ---------------------------------------------------------------------------------


def _calls_from_payload(payload: str, tool_names: set[str] | None, *, explicit: bool) -> list[ToolCall]:
    """Calls in the body of a markup block: JSON (object or list) or a Qwen function tag."""
    body = payload.strip()
    if body.startswith("```"):  # some models fence the JSON inside the tags too
        body = body.partition("\n")[2].rstrip().removesuffix("```").strip()
    if body.startswith("<function="):
        match = _QWEN_FUNCTION.match(body)
        call = _qwen_call(match.group(1), match.group(2)) if match else None
        return [call] if call else []
    calls: list[ToolCall] = []
    for value in _decode_json_values(body):
        found = _calls_from_value(value, tool_names, explicit=explicit)
        if not found:
            return []
        calls.extend(found)
    return calls


def _decode_json_values(body: str) -> list[Any]:
    """Consecutive JSON values in ``body`` (some models put several calls in one block)."""
    values: list[Any] = []
    decoder = json.JSONDecoder()
    pos = 0
    while len(values) < _MAX_JSON_CANDIDATES:
        start = next((i for i in range(pos, len(body)) if body[i] in "{["), None)
        if start is None or body[pos:start].strip(" \t\r\n,;"):
            break  # nothing more, or prose between values: stop at what was clean
        try:
            value, pos = decoder.raw_decode(body, start)
        except (ValueError, RecursionError):
            break
        values.append(value)
    return values


def _decode_json_prefix(body: str) -> Any:
    """The JSON value at the start of ``body`` (trailing junk ignored), or None."""
    start = next((i for i, ch in enumerate(body) if ch in "{["), None)
    if start is None:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(body, start)
    except (ValueError, RecursionError):
        return None
    return value


def _calls_from_value(value: Any, tool_names: set[str] | None, *, explicit: bool) -> list[ToolCall]:
    items = value if isinstance(value, list) else [value]
    calls: list[ToolCall] = []
    for item in items:
        call = _call_from_object(item, tool_names, explicit=explicit)
        if call is None:
            return []  # a list is all calls or it is data
        calls.append(call)
    return calls


def _call_from_object(obj: Any, tool_names: set[str] | None, *, explicit: bool) -> ToolCall | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):  # OpenAI shape {"type": "function", "function": {...}}
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    name = name.strip()
    args: Any = obj.get("arguments", obj.get("parameters", obj.get("args", {})))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except (ValueError, RecursionError):
            return None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return None
    has_args_key = any(k in obj for k in ("arguments", "parameters", "args"))
    if not explicit:
        if not has_args_key or _is_schema(args):
            return None
        if tool_names is not None:
            resolved = _known_name(name, tool_names)
            if resolved is None:
                return None
            name = resolved
        elif _PLANNING_KEYS & set(obj):
            return None
    elif tool_names is not None:
        name = _known_name(name, tool_names) or name
    return ToolCall(name=name, arguments=args)


def _is_schema(args: dict[str, Any]) -> bool:
    """A JSON Schema where arguments belong: the model echoed a tool *definition*."""
    return args.get("type") == "object" and isinstance(args.get("properties"), dict)


def _known_name(name: str, tool_names: set[str]) -> str | None:
    """``name`` as spelled in ``tool_names`` (exact, else case-insensitive), or None."""
    if name in tool_names:
        return name
    folded = {t.lower(): t for t in tool_names}
    return folded.get(name.lower())


def _qwen_call(raw_name: str, body: str) -> ToolCall | None:
    name = raw_name.strip().strip("\"'")
    if not name:
        return None
    args: dict[str, Any] = {}
    for match in _QWEN_PARAM.finditer(body):
        key = match.group(1).strip().strip("\"'")
        if key:
            args[key] = _qwen_value(match.group(2))
    return ToolCall(name=name, arguments=args)


def _qwen_value(raw: str) -> Any:
    # The template writes "<parameter=k>\nvalue\n</parameter>": one newline each side is layout.
    value = raw.removeprefix("\n").removesuffix("\n")
    stripped = value.strip()
    if stripped:
        try:
            return json.loads(stripped)
        except (ValueError, RecursionError):
            pass
    return value


# -- plain JSON ---------------------------------------------------------------------------------


def _take_fenced_json(text: str, tool_names: set[str] | None, calls: list[ToolCall]) -> str:
    def take(match: re.Match[str]) -> str:
        if match.group(1).lower() not in _JSON_FENCE_LANGS:
            return match.group(0)
        value = _decode_json_prefix(match.group(2))
        found = _calls_from_value(value, tool_names, explicit=False) if value is not None else []
        if not found:
            return match.group(0)
        calls.extend(found)
        return ""

    return _FENCE.sub(take, text)


def _take_bare_json(text: str, tool_names: set[str] | None, calls: list[ToolCall]) -> str:
    if '"name"' not in text:
        return text
    # Code blocks in other languages are examples, not calls: blank them out of the scan while
    # keeping offsets, so spans found map back onto the original text.
    masked = _FENCE.sub(lambda m: " " * len(m.group(0)), text)
    decoder = json.JSONDecoder()
    spans: list[tuple[int, int]] = []
    pos, tries = 0, 0
    while tries < _MAX_JSON_CANDIDATES:
        start = _next_candidate(masked, pos)
        if start < 0:
            break
        tries += 1
        try:
            value, end = decoder.raw_decode(masked, start)
        except (ValueError, RecursionError):
            pos = start + 1
            continue
        found = _calls_from_value(value, tool_names, explicit=False)
        if found:
            calls.extend(found)
            spans.append((start, end))
        pos = end
    for start, end in reversed(spans):
        text = text[:start] + text[end:]
    return text


_CANDIDATE = re.compile(r"[\[{]\s*[{\"]")


def _next_candidate(text: str, pos: int) -> int:
    match = _CANDIDATE.search(text, pos)
    return match.start() if match else -1


# -- prompting ----------------------------------------------------------------------------------


def tools_as_system_prompt(tools: list[ToolDefinition]) -> str:
    """A system-prompt section describing ``tools`` and the call format the parser reads.

    The format is the Hermes ``<tool_call>`` block: most open models are trained on it, and it is
    unambiguous to parse. Returns "" when there are no tools.
    """
    if not tools:
        return ""
    lines = [
        "# Tools",
        "",
        "You can call the tools below. Each tool takes a JSON object whose fields follow the "
        "tool's JSON Schema.",
        "",
    ]
    for tool in tools:
        lines.append(f"## {tool.name}")
        if tool.description:
            lines.append(tool.description.strip())
        lines.append("Parameters (JSON Schema): " + json.dumps(tool.parameters, ensure_ascii=False,
                                                                sort_keys=True))
        lines.append("")
    example = tools[0].name
    lines += [
        "# How to call a tool",
        "",
        "To call a tool, write a block like this, with the tool's name and a JSON object of "
        "arguments, and nothing else inside the tags:",
        "",
        "<tool_call>",
        json.dumps({"name": example, "arguments": {"<argument>": "<value>"}}),
        "</tool_call>",
        "",
        "Write one block per call; you may write several blocks to call several tools. After your "
        "calls, stop and wait: the results come back in the next message. Use only the tools "
        "listed above, with valid JSON (double quotes, no comments). If no tool is needed, answer "
        "normally without any <tool_call> block.",
    ]
    return "\n".join(lines)


__all__ = ["parse_tool_calls_from_text", "tools_as_system_prompt"]
