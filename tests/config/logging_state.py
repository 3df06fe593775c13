"""Undo what the app's logging setup does to the root logger, so one test's handlers and
redacting filters never reach the next."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def root_logging_restored() -> Iterator[None]:
    """On exit: close the root handlers added inside, strip the redacting filters from the ones
    that were there, and put the root level back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        for h in handlers:
            h.filters = [f for f in h.filters if type(f).__name__ != "RedactingFilter"]
        root.setLevel(level)
