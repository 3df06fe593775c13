"""``POST /api/pull`` for the Ollama simulator: NDJSON progress as Ollama streams it.

Sequence (servers.md §1.5): ``pulling manifest``; per layer ``pulling <digest>`` lines with
``digest``/``total`` and, once bytes arrive, ``completed``; ``verifying sha256 digest``;
``writing manifest``; ``success``. An unknown model fails after the first line with an
``{"error": ...}`` line under status 200. ``stream:false`` answers one ``{"status":"success"}``.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from tests.servers.ollama_models import SimModel, full_name

PULL_UNKNOWN = "pull model manifest: file does not exist"


class PullMixin:
    """Adds ``pull`` to the Ollama handler (uses the handler's ``server`` and writers)."""

    server: Any
    body: Any

    def pull(self) -> None:
        handler: Any = self
        body = self.body if isinstance(self.body, dict) else {}
        name = full_name(body.get("model") or body.get("name") or "")
        known = name in self.server.pullable or name in self.server.store
        if body.get("stream") is False:
            if not known:
                handler.send_error_json(500, PULL_UNKNOWN)
                return
            self._install(name)
            handler.send_go(200, {"status": "success"})
            return
        handler.start_stream("application/x-ndjson")
        handler.write_line({"status": "pulling manifest"})
        if not known:
            handler.write_line({"error": PULL_UNKNOWN})
            handler.end_stream()
            return
        delay = float(self.server.options.get("pull_step_seconds", 0.0))
        for layer, total in ((name + ":weights", 1_000_000), (name + ":template", 1_000)):
            digest = "sha256:" + hashlib.sha256(layer.encode()).hexdigest()
            handler.write_line({"status": f"pulling {digest[7:19]}", "digest": digest, "total": total})
            for step in (1, 2, 4):
                handler.write_line({"status": f"pulling {digest[7:19]}", "digest": digest, "total": total,
                                    "completed": total * step // 4})
                if delay:
                    time.sleep(delay)
        for status in ("verifying sha256 digest", "writing manifest"):
            handler.write_line({"status": status})
        # As Ollama does: the manifest is written before "success" is sent, so a client that
        # lists models on seeing it finds the new one (installing after the last line raced).
        self._install(name)
        handler.write_line({"status": "success"})
        handler.end_stream()

    def _install(self, name: str) -> None:
        if name not in self.server.store:
            self.server.store[name] = SimModel(name, capabilities=("completion",))
            self.server.models = list(self.server.store)
