"""The local server manager (Qt-free): "is my server up, which one is it, what is loaded?"

* :mod:`~victor_gui.servers.discovery` — candidate endpoints (user list, the seed's variables,
  default ports, running server processes via psutil) and :func:`discover`, one concurrent sweep.
* :mod:`~victor_gui.servers.fingerprint` — which server answers, told by bodies and headers
  (LM Studio's 200-with-error, llama.cpp's Ollama-shaped stubs, foreign programs).
* :mod:`~victor_gui.servers.inspect` — per-kind facts: loaded models, context, memory, KV use.
* :mod:`~victor_gui.servers.probe` — one probe folded into an :class:`EndpointStatus` with a
  diagnosis a person can act on.
* :mod:`~victor_gui.servers.health` — :class:`HealthMonitor`: periodic probes with backoff and
  change events (``subscribe(callback) -> unsubscribe``).
* :mod:`~victor_gui.servers.models` — pull/delete/preload/unload (Ollama), load/unload/download
  (LM Studio REST v1), load/unload (llama.cpp router mode).
"""

from victor_gui.servers.discovery import candidate_endpoints, discover
from victor_gui.servers.health import HealthMonitor
from victor_gui.servers.models import (
    LlamaCppModels,
    LMStudioModels,
    OllamaModels,
    TransferProgress,
    manager_for,
)
from victor_gui.servers.probe import probe_endpoint
from victor_gui.servers.status import Endpoint, EndpointState, EndpointStatus, LoadedModel, ServerKind

__all__ = [
    "Endpoint",
    "EndpointState",
    "EndpointStatus",
    "HealthMonitor",
    "LMStudioModels",
    "LlamaCppModels",
    "LoadedModel",
    "OllamaModels",
    "ServerKind",
    "TransferProgress",
    "candidate_endpoints",
    "discover",
    "manager_for",
    "probe_endpoint",
]
