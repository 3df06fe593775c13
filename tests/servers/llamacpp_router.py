"""llama-server router mode (late 2025+, servers.md §4.5), for the llama.cpp simulator.

Enabled with ``make_server(router=True, models=[...])``: started without ``-m``, the server lists
``GET /models`` entries ``{id, path, status:{value}}`` and loads/unloads on
``POST /models/load {model}`` / ``POST /models/unload {model}`` → ``{"success":true}``. Loading
takes ``router_load_s`` (status ``loading`` meanwhile). In single-model mode these POST routes do
not exist (404 ``File Not Found``).
"""

from __future__ import annotations

import threading
import time
from typing import Any


class RouterMixin:
    """Router-mode routes; model states live in ``server.options["router_status"]``."""

    server: Any
    body: Any

    @property
    def router(self) -> bool:
        return bool(self.server.options.get("router"))

    def router_status(self) -> dict[str, str]:
        status: dict[str, str] = self.server.options.setdefault(
            "router_status", {m: "unloaded" for m in self.server.models})
        return status

    def router_models(self) -> None:
        handler: Any = self
        data = [{"id": name, "object": "model", "owned_by": "llamacpp", "created": 1700000000,
                 "path": f"/models/{name}.gguf", "status": {"value": value}}
                for name, value in self.router_status().items()]
        handler.send_json(200, {"object": "list", "data": data})

    def _router_target(self) -> str | None:
        handler: Any = self
        if not self.router:
            handler.unknown_route("/models/load")
            return None
        body = self.body if isinstance(self.body, dict) else {}
        model = str(body.get("model") or "")
        if model not in self.router_status():
            handler.send_error(400, f"model '{model}' not found", "invalid_request_error")
            return None
        return model

    def models_load(self) -> None:
        model = self._router_target()
        if model is None:
            return
        status = self.router_status()
        status[model] = "loading"
        delay = float(self.server.options.get("router_load_s", 0.05))

        def finish() -> None:
            time.sleep(delay)
            if status.get(model) == "loading":
                status[model] = "loaded"

        threading.Thread(target=finish, daemon=True).start()
        handler: Any = self
        handler.send_json(200, {"success": True})

    def models_unload(self) -> None:
        model = self._router_target()
        if model is None:
            return
        self.router_status()[model] = "unloaded"
        handler: Any = self
        handler.send_json(200, {"success": True})
