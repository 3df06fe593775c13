"""Simulators that record when each chat request started and ended, on the server's clock.

The compare view promises that two panes on the same local endpoint run one at a time while
panes on different endpoints overlap. Only the server can prove that: ``server.chat_spans``
holds ``(start, end)`` ``time.perf_counter()`` pairs, one per chat request, taken in the
handler thread from the moment the request arrived until its last byte was written (or the
client left). ``server.disconnected`` is set when a client leaves mid-stream.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.servers.base import SimServer
from tests.servers.llamacpp import LlamaCppHandler
from tests.servers.openai_dialect import OpenAIDialectHandler, serve
from tests.servers.vllm import VLLMHandler


def _timed(handler: type[OpenAIDialectHandler]) -> type[OpenAIDialectHandler]:
    class Timed(handler):  # type: ignore[valid-type,misc]
        def chat(self) -> None:
            start = time.perf_counter()
            try:
                super().chat()
            except (BrokenPipeError, ConnectionResetError):
                self.server.disconnected.set()  # type: ignore[attr-defined]
                self.close_connection = True
            finally:
                self.server.chat_spans.append((start, time.perf_counter()))  # type: ignore[attr-defined]

    Timed.__name__ = f"Timed{handler.__name__}"
    return Timed


_HANDLERS = {"llamacpp": LlamaCppHandler, "vllm": VLLMHandler}


def make_timed(kind: str, port: int = 0, **options: Any) -> SimServer:
    """A ``llamacpp`` or ``vllm`` simulator with ``chat_spans`` and ``disconnected``."""
    server = serve(_timed(_HANDLERS[kind]), port, options)
    server.chat_spans = []  # type: ignore[attr-defined]
    server.disconnected = threading.Event()  # type: ignore[attr-defined]
    return server


def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two (start, end) spans overlap in time."""
    return a[0] < b[1] and b[0] < a[1]
