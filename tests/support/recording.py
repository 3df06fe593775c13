"""The project's llama.cpp simulator, plus a record of clients that left mid-stream.

Stop tests need proof that the request was really cancelled: the simulator's next write to a
closed connection fails, and this handler notes it in ``server.disconnected``.
"""

from __future__ import annotations

import threading
from typing import Any

from tests.servers.base import SimServer
from tests.servers.llamacpp import LlamaCppHandler
from tests.servers.openai_dialect import serve


class RecordingLlamaCppHandler(LlamaCppHandler):
    def chat(self) -> None:
        try:
            super().chat()
        except (BrokenPipeError, ConnectionResetError):
            self.server.disconnected.set()  # type: ignore[attr-defined]
            self.close_connection = True


def make_llamacpp(port: int = 0, **options: Any) -> SimServer:
    """A llama-server simulator whose ``disconnected`` event is set when a client leaves."""
    server = serve(RecordingLlamaCppHandler, port, options)
    server.disconnected = threading.Event()  # type: ignore[attr-defined]
    return server
