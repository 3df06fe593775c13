"""Keep simulator output clean when a client drops an idle keep-alive connection."""

from __future__ import annotations

import sys
from typing import Any

from tests.servers.base import SimServer


def quiet_disconnects(server: SimServer) -> SimServer:
    """Silence only connection resets and broken pipes (a client closing its pool); every other
    handler exception is still printed."""
    original = server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return
        original(request, client_address)

    server.handle_error = handle_error  # type: ignore[method-assign]
    return server
