"""A bounded memory of what a provider must send back with a tool call but the neutral history
cannot hold: Anthropic's and Bedrock's signed thinking blocks, Gemini's thought signatures.

The APIs reject a tool loop that drops them (HTTP 400), while :class:`~victor_gui.providers.types.Message`
stays protocol-neutral. So each provider keeps the recent ones here, keyed by tool-call id, and
looks them up when it converts the history. Bounded, oldest first out: a long session must not
grow without end, and only the last few tool loops are ever replayed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Generic, TypeVar

from victor_gui.providers.types import ToolCall

V = TypeVar("V")


class CallMemory(Generic[V]):
    """Values by tool-call id, at most ``limit`` of them (the least recently stored go first)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[str, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, call_id: str) -> V | None:
        """The value stored for ``call_id``, or None (usable as a ``*_for`` lookup callback)."""
        return self._items.get(call_id)

    def update(self, values: Mapping[str, V]) -> None:
        """Store every ``call id -> value`` of ``values``."""
        for call_id, value in values.items():
            self._items[call_id] = value
            self._items.move_to_end(call_id)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def remember_turn(self, calls: Sequence[ToolCall] | None, value: V | None) -> None:
        """Store ``value`` for a reply's tool calls, under the first call's id (the one the
        request builder looks up when it rebuilds that assistant turn). Nothing without both."""
        if calls and value:
            self.update({calls[0].id: value})


__all__ = ["CallMemory"]
