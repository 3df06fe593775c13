"""The observer list the services share: callbacks called in order, each one isolated, so a
broken view (a deleted widget, a bug in a slot) never stops the service that notifies it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")


class Listeners(Generic[P]):
    """Callbacks taking ``P``; :meth:`notify` logs (to ``log``, as ``failure``) and skips one that
    raises, and a callback may remove itself, or add another, while being notified."""

    def __init__(self, log: logging.Logger, failure: str) -> None:
        self._callbacks: list[Callable[P, None]] = []
        self._log = log
        self._failure = failure

    def add(self, callback: Callable[P, None]) -> Callable[[], None]:
        """Register ``callback``; returns the function that removes it (safe to call twice)."""
        self._callbacks.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return remove

    def notify(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Call every callback registered now with these arguments."""
        for callback in list(self._callbacks):
            try:
                callback(*args, **kwargs)
            except Exception:
                self._log.exception(self._failure)

    def clear(self) -> None:
        """Forget every callback (the owner is closing)."""
        self._callbacks.clear()

    def __len__(self) -> int:
        return len(self._callbacks)
