"""LM Studio REST v1 model management (0.4.0+, servers.md §2.3/§2.5), for the LM Studio simulator.

Enabled with ``make_server(rest_v1=True)``; without it these routes fall through to the
200-with-error "Unexpected endpoint or method" body, as 0.3.x answers them.

* ``GET /api/v1/models`` → ``{"models":[{type, key, display_name, size_bytes, max_context_length,
  loaded_instances:[{id, config:{context_length}}], ...}]}``
* ``POST /api/v1/models/load`` ``{model, context_length?}`` → ``{type, instance_id,
  load_time_seconds, status:"loaded"}``
* ``POST /api/v1/models/unload`` ``{instance_id}`` → ``{instance_id}``
* ``POST /api/v1/models/download`` ``{model}`` → ``{job_id, status:"downloading", total_size_bytes,
  started_at}`` (``already_downloaded`` for a model on disk)
* ``GET /api/v1/models/download/status/:job_id`` → ``{job_id, status, downloaded_bytes,
  total_size_bytes, bytes_per_second, ...}``; the job completes after ``download_seconds``.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

STATUS_PREFIX = "/api/v1/models/download/status/"
DOWNLOAD_BYTES = 4_000_000


class RestV1Mixin:
    """Routes of LM Studio's REST v1 model management; state lives in ``server.options``."""

    server: Any
    body: Any
    command: str

    v1_routes: ClassVar[dict[tuple[str, str], str]] = {
        ("GET", "/api/v1/models"): "v1_models",
        ("POST", "/api/v1/models/load"): "v1_load",
        ("POST", "/api/v1/models/unload"): "v1_unload",
        ("POST", "/api/v1/models/download"): "v1_download",
    }

    def v1_route(self, path: str) -> bool:
        """Answer ``path`` when REST v1 is on and it is one of its routes; False otherwise."""
        if not self.server.options.get("rest_v1"):
            return False
        name = self.v1_routes.get((self.command, path))
        known = name is not None or (self.command == "GET" and path.startswith(STATUS_PREFIX))
        handler: Any = self
        if known and not handler.check_auth():
            return True
        if name is None and self.command == "GET" and path.startswith(STATUS_PREFIX):
            self.v1_download_status(path[len(STATUS_PREFIX):])
            return True
        if name is None:
            return False
        getattr(self, name)()
        return True

    def loaded_instances(self) -> dict[str, dict[str, Any]]:
        """instance_id -> {"model", "context_length"}; the first model starts loaded."""
        options = self.server.options
        if "lms_loaded" not in options:
            first = self.server.models[0] if self.server.models else self.server.model
            options["lms_loaded"] = {first: {"model": first, "context_length": 8192}}
        loaded: dict[str, dict[str, Any]] = options["lms_loaded"]
        return loaded

    def _v1_error(self, status: int, etype: str, message: str) -> None:
        handler: Any = self
        handler.send_json(status, {"error": {"type": etype, "message": message}})

    def v1_models(self) -> None:
        handler: Any = self
        loaded = self.loaded_instances()
        entries = []
        for model in self.server.models:
            instances = [{"id": iid, "config": {"context_length": item["context_length"], "parallel": 4}}
                         for iid, item in loaded.items() if item["model"] == model]
            entries.append({"type": "llm", "publisher": "lmstudio-community", "key": model,
                            "display_name": model, "architecture": "qwen2",
                            "quantization": {"name": "Q4_K_M", "bits_per_weight": 4.5},
                            "size_bytes": 4_683_074_048, "params_string": "7B",
                            "max_context_length": 131072, "format": "gguf",
                            "loaded_instances": instances,
                            # Vision models (named "...vl...", as the v0 listing's type: vlm).
                            "capabilities": {"vision": "vl" in model, "trained_for_tool_use": True}})
        handler.send_json(200, {"models": entries})

    def v1_load(self) -> None:
        handler: Any = self
        body = self.body if isinstance(self.body, dict) else {}
        model = str(body.get("model") or "")
        if model not in self.server.models:
            return self._v1_error(404, "model_not_found", f'Model "{model}" not found')
        time.sleep(float(self.server.options.get("jit_load_s", 0.05)))
        instances = self.loaded_instances()
        instance_id = model if model not in instances else f"{model}:{len(instances) + 1}"
        instances[instance_id] = {"model": model, "context_length": int(body.get("context_length") or 4096)}
        handler.send_json(200, {"type": "llm", "instance_id": instance_id, "load_time_seconds": 0.05,
                                "status": "loaded"})

    def v1_unload(self) -> None:
        handler: Any = self
        body = self.body if isinstance(self.body, dict) else {}
        instance_id = str(body.get("instance_id") or "")
        if self.loaded_instances().pop(instance_id, None) is None:
            return self._v1_error(404, "model_not_found", f'No loaded model with instance id "{instance_id}"')
        handler.send_json(200, {"instance_id": instance_id})

    def v1_download(self) -> None:
        handler: Any = self
        body = self.body if isinstance(self.body, dict) else {}
        model = str(body.get("model") or "")
        if model in self.server.models:
            return handler.send_json(200, {"status": "already_downloaded"})
        jobs = self.server.options.setdefault("lms_jobs", {})
        job_id = f"job_{len(jobs) + 1}"
        jobs[job_id] = {"model": model, "started": time.time()}
        handler.send_json(200, {"job_id": job_id, "status": "downloading",
                                "total_size_bytes": DOWNLOAD_BYTES, "started_at": _iso(time.time())})

    def v1_download_status(self, job_id: str) -> None:
        handler: Any = self
        job = self.server.options.get("lms_jobs", {}).get(job_id)
        if job is None:
            return self._v1_error(404, "job_not_found", f'No download job "{job_id}"')
        seconds = float(self.server.options.get("download_seconds", 0.3))
        elapsed = time.time() - job["started"]
        done = min(DOWNLOAD_BYTES, int(DOWNLOAD_BYTES * elapsed / seconds)) if seconds else DOWNLOAD_BYTES
        reply: dict[str, Any] = {"job_id": job_id, "downloaded_bytes": done,
                                 "total_size_bytes": DOWNLOAD_BYTES, "started_at": _iso(job["started"])}
        if done >= DOWNLOAD_BYTES:
            if job["model"] not in self.server.models:
                self.server.models.append(job["model"])
            reply.update(status="completed", completed_at=_iso(job["started"] + seconds))
        else:
            rate = DOWNLOAD_BYTES / seconds
            reply.update(status="downloading", bytes_per_second=rate,
                         estimated_completion=_iso(job["started"] + seconds))
        handler.send_json(200, reply)


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
