"""Text that arrives in pieces: storable (no lone surrogates) and assembled in linear time.

A JSON string may carry ``"\\ud83d"`` in one stream event and ``"\\ude00"`` in the next (a
server that splits an emoji between two tokens), or a lone ``"\\ud800"``. Python decodes each
to a *surrogate* code point, which shows on screen as a box but cannot be encoded to UTF-8,
so SQLite, a file or a log refuses it. :class:`SurrogateJoiner` sits where a stream's deltas
pass: it holds a trailing high surrogate until the next delta, joins it with a following low
surrogate into the real character, and turns every surrogate that has no partner into U+FFFD.

:class:`TextAssembly` is a growing text kept as a list of pieces: ``str += piece`` on an
attribute or a dict value copies the whole text each time, so 20 MB in 1 KB pieces took
minutes; appending to a list and joining once is linear.
"""

from __future__ import annotations

import json
import re
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_HIGH_FIRST, _HIGH_LAST = "\ud800", "\udbff"


def clean_surrogates(text: str) -> str:
    """``text`` with each adjacent high+low surrogate pair joined into its character and every
    other surrogate replaced by U+FFFD: the result always encodes to UTF-8."""
    if _SURROGATE.search(text) is None:
        return text
    # UTF-16 is where surrogates mean something: write the code units out as they are and read
    # them back; the decoder pairs what pairs and replaces what does not.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_json_strings(value: Any) -> Any:
    """A JSON-shaped value (dicts, lists, strings) with :func:`clean_surrogates` applied to every
    string in it, keys included; ``value`` itself when it holds no surrogate (the usual case)."""
    if isinstance(value, str):
        return clean_surrogates(value)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # not JSON-shaped: nothing of ours to clean
        return value
    if _SURROGATE.search(text) is None:
        return value
    # Round-trip through JSON text rather than recursing: as deep as json itself allows.
    return json.loads(clean_surrogates(text))


class SurrogateJoiner:
    """Cleans one stream of text deltas (content, reasoning, or one tool call's arguments).

    :meth:`feed` returns the storable text of a delta, holding back a trailing high surrogate
    (its low half may start the next delta); :meth:`flush` at the end of the stream returns
    what is still held, as U+FFFD.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        """The clean text of ``text`` (with any held surrogate in front); may be ``""``."""
        if self._held:
            text, self._held = self._held + text, ""
        if text and _HIGH_FIRST <= text[-1] <= _HIGH_LAST:
            text, self._held = text[:-1], text[-1]
        return clean_surrogates(text)

    def flush(self) -> str:
        """U+FFFD when a high surrogate is still held (the stream ended without its partner)."""
        held, self._held = self._held, ""
        return REPLACEMENT if held else ""


class TextAssembly:
    """A text growing piece by piece, in linear time; :attr:`text` joins on read (and keeps the
    join, so reading again without new pieces costs nothing)."""

    __slots__ = ("_parts", "_size")

    def __init__(self, text: str = "") -> None:
        self._parts: list[str] = [text] if text else []
        self._size = len(text)

    def append(self, piece: str) -> None:
        if piece:
            self._parts.append(piece)
            self._size += len(piece)

    def __len__(self) -> int:
        """Characters so far, without joining."""
        return self._size

    @property
    def text(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""


__all__ = ["REPLACEMENT", "SurrogateJoiner", "TextAssembly", "clean_json_strings", "clean_surrogates"]
