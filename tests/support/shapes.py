"""Response *shapes*: what a client can rely on in a reply, with the incidental values removed.

Used to check that the project's llama.cpp simulator answers like the real ``llama-server``:
both get the same scripted request, and their replies are reduced to shapes and compared.

* :func:`shape` turns parsed JSON into a skeleton: objects keep their keys, scalars become type
  names (``"str"``, ``"int"``, ``"float"``, ``"bool"``, ``"null"``), except for keys listed in
  ``keep`` (by default the enum-like fields such as ``object``, ``finish_reason``, error
  ``type``) whose literal values are part of the contract.
* :func:`diff_shapes` lists the differences between two shapes as readable lines.
* :func:`parse_sse` checks SSE framing byte for byte (every event ends in a blank line) and
  returns the events; :func:`stream_outline` reduces an OpenAI-style chat stream to its event
  order, with runs of the same kind collapsed (``content+``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Keys whose values are part of the API contract rather than incidental data.
DEFAULT_KEEP = frozenset({
    "object", "finish_reason", "role", "type", "owned_by", "status", "vocab_type",
})

Shape = Any  # str for scalars, dict for objects, list for arrays


def shape(value: Any, *, keep: Iterable[str] = DEFAULT_KEEP, _key: str | None = None,
          loose_numbers: bool = False) -> Shape:
    """The shape of a parsed JSON value.

    Arrays become a list of the *distinct* shapes of their items, in first-seen order, so an
    array of ten alike objects and one of two give the same shape. ``loose_numbers`` maps int and
    float both to ``"number"`` (JSON itself does not tell them apart; Python's parser does).
    """
    keep = frozenset(keep)
    if _key is not None and _key in keep and isinstance(value, (str, bool, int, float)):
        return f"={value!r}" if not isinstance(value, str) else f"={value}"
    if isinstance(value, Mapping):
        return {k: shape(v, keep=keep, _key=k, loose_numbers=loose_numbers) for k, v in value.items()}
    if isinstance(value, list):
        distinct: list[Shape] = []
        for item in value:
            s = shape(item, keep=keep, loose_numbers=loose_numbers)
            if s not in distinct:
                distinct.append(s)
        return distinct
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "bool"
    if isinstance(value, int):
        return "number" if loose_numbers else "int"
    if isinstance(value, float):
        return "number" if loose_numbers else "float"
    if isinstance(value, str):
        return "str"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def diff_shapes(expected: Shape, actual: Shape, path: str = "$") -> list[str]:
    """Differences between two shapes, one line each, ``expected`` being the reference.

    Lines look like ``$.choices[].delta: missing key 'role'``, ``$.usage: extra keys 'x', 'y'``
    (one line per object), ``$.created: int != str``. Key order is ignored (llama-server emits
    insertion order, which clients must not rely on).
    """
    if isinstance(expected, dict) and isinstance(actual, dict):
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        out: list[str] = []
        for word, keys in (("missing", missing), ("extra", extra)):
            if keys:
                plural = "s" if len(keys) > 1 else ""
                out.append(f"{path}: {word} key{plural} {', '.join(map(repr, keys))}")
        for k in expected:
            if k in actual:
                out += diff_shapes(expected[k], actual[k], f"{path}.{k}")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        return _diff_arrays(expected, actual, path)
    if expected != actual:
        return [f"{path}: {_describe(expected)} != {_describe(actual)}"]
    return []


def _diff_arrays(expected: list[Shape], actual: list[Shape], path: str) -> list[str]:
    if not expected or not actual:
        if bool(expected) != bool(actual):
            return [f"{path}: {'empty' if not expected else 'non-empty'} array != "
                    f"{'empty' if not actual else 'non-empty'} array"]
        return []
    if len(expected) == 1 and len(actual) == 1:
        return diff_shapes(expected[0], actual[0], f"{path}[]")
    # Several item shapes (e.g. tool-call fragments): every actual item must match one expected
    # item shape and vice versa.
    out = [f"{path}[]: unexpected item shape {_describe(a)}" for a in actual if a not in expected]
    out += [f"{path}[]: item shape never seen {_describe(e)}" for e in expected if e not in actual]
    return out


def _describe(s: Shape) -> str:
    if isinstance(s, dict):
        return "object{" + ",".join(sorted(s)) + "}"
    if isinstance(s, list):
        return "array"
    return str(s)


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event: its ``data`` (lines joined by ``\\n``), ``event`` name, comments."""

    data: str | None
    event: str | None = None
    comments: tuple[str, ...] = ()

    def json(self) -> Any:
        """The data parsed as JSON (raises ValueError for ``[DONE]`` or non-JSON)."""
        if self.data is None:
            raise ValueError("event has no data")
        return json.loads(self.data)


class SSEFramingError(ValueError):
    """The byte stream is not well-formed SSE."""


def parse_sse(raw: bytes) -> list[SSEEvent]:
    """Split a complete SSE body into events, insisting on strict framing.

    Every event must end with a blank line (``\\n\\n``; ``\\r\\n`` is normalised), lines must be
    ``field: value`` or ``:comment``, and the body must be valid UTF-8.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SSEFramingError(f"stream is not UTF-8: {exc}") from exc
    text = text.replace("\r\n", "\n")
    if text and not text.endswith("\n\n"):
        raise SSEFramingError(f"stream does not end with a blank line: {text[-40:]!r}")
    events: list[SSEEvent] = []
    for block in text.split("\n\n"):
        if not block:
            continue
        data: list[str] = []
        name: str | None = None
        comments: list[str] = []
        for line in block.split("\n"):
            if line.startswith(":"):
                comments.append(line[1:].strip())
                continue
            field_name, sep, value = line.partition(":")
            if not sep:
                raise SSEFramingError(f"line without a field name: {line!r}")
            value = value.removeprefix(" ")
            if field_name == "data":
                data.append(value)
            elif field_name == "event":
                name = value
            elif field_name not in ("id", "retry"):
                raise SSEFramingError(f"unknown SSE field {field_name!r}")
        events.append(SSEEvent("\n".join(data) if data else None, name, tuple(comments)))
    return events


def chunk_kind(event: SSEEvent) -> str:
    """Classify one event of an OpenAI-style chat stream.

    Kinds: ``[DONE]``, ``comment``, ``error``, ``usage`` (``choices: []``), ``finish:<reason>``,
    ``role``, ``content``, ``reasoning``, ``tool_call_start`` (fragment with ``id``/name),
    ``tool_call_args``, ``empty``. A chunk carrying several things is named by the first match in
    that order after ``finish``.
    """
    if event.data is None:
        return "comment"
    if event.data == "[DONE]":
        return "[DONE]"
    payload = event.json()
    if "error" in payload:
        return "error"
    choices = payload.get("choices")
    if choices == []:
        return "usage" if "usage" in payload else "no-choices"
    choice = choices[0]
    if choice.get("finish_reason") is not None:
        return f"finish:{choice['finish_reason']}"
    delta = choice.get("delta") or {}
    for tc in delta.get("tool_calls") or []:
        return "tool_call_start" if tc.get("id") or (tc.get("function") or {}).get("name") \
            else "tool_call_args"
    if delta.get("reasoning_content"):
        return "reasoning"
    if delta.get("content"):
        return "content"
    if delta.get("role"):
        return "role"
    return "empty"


def stream_outline(events: Iterable[SSEEvent]) -> list[str]:
    """Event order with runs of the same kind collapsed: ``['role', 'content+', 'finish:stop',
    '[DONE]']``. ``+`` marks a run of two or more."""
    out: list[str] = []
    run = 0
    for event in events:
        kind = chunk_kind(event)
        if out and out[-1].rstrip("+") == kind:
            run += 1
            out[-1] = kind + "+"
        else:
            out.append(kind)
            run = 1
    return out


def merged_chunk_shape(events: Iterable[SSEEvent], *, keep: Iterable[str] = DEFAULT_KEEP) -> dict[str, Shape]:
    """For each chunk kind, the shape of the first chunk of that kind (for key-level diffs)."""
    out: dict[str, Shape] = {}
    for event in events:
        kind = chunk_kind(event)
        if kind not in out and event.data not in (None, "[DONE]"):
            out[kind] = shape(event.json(), keep=keep)
    return out
