"""Turn a model reference into a :class:`ModelArchitecture`: a GGUF path, an http(s) URL of a
GGUF (range requests), or ``ollama:NAME`` (``POST /api/show`` on ``OLLAMA_HOST``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from victor_gui.errors import InvalidResponseError, ModelNotFoundError, ProviderConnectionError
from victor_gui.modelmgr.architecture import ModelArchitecture, from_gguf, from_ollama_show
from victor_gui.modelmgr.gguf_reader import read_gguf_header
from victor_gui.providers.endpoints import parse_ollama_host
from victor_gui.providers.http import PROBE_TIMEOUTS, make_client


@dataclass(slots=True)
class ModelSource:
    """What was read and from where (``kind``: ``gguf``, ``url`` or ``ollama``)."""

    arch: ModelArchitecture
    kind: str
    label: str
    file_size: int | None = None


async def _ollama_show(name: str, base: str, client: httpx.AsyncClient) -> tuple[dict[str, Any], int]:
    try:
        resp = await client.post(f"{base}/api/show", json={"model": name})
    except httpx.HTTPError as exc:
        raise ProviderConnectionError(f"Ollama is not answering at {base} ({type(exc).__name__})",
                                      "ollama", raw_error=exc) from exc
    if resp.status_code == 404:
        raise ModelNotFoundError(f"Ollama at {base} has no model {name!r}", "ollama", status_code=404,
                                 model=name)
    try:
        show = resp.json()
    except ValueError:
        show = None
    if resp.status_code != 200 or not isinstance(show, dict):
        raise InvalidResponseError(f"unexpected /api/show reply from {base}", "ollama",
                                   status_code=resp.status_code, model=name)
    size = 0
    if not show.get("tensors"):  # older Ollama: no tensor table, so the file size stands in
        try:
            tags = (await client.get(f"{base}/api/tags")).json()
            for m in tags.get("models", []) if isinstance(tags, dict) else []:
                if name in (m.get("name"), m.get("model")) or m.get("name") == f"{name}:latest":
                    size = int(m.get("size") or 0)
        except (httpx.HTTPError, ValueError, TypeError):
            size = 0
    return show, size


async def load_model(ref: str, *, client: httpx.AsyncClient | None = None,
                     env: Mapping[str, str] | None = None) -> ModelSource:
    """Read enough of ``ref`` to describe the model; weights are never downloaded.

    Raises :class:`~victor_gui.errors.GGUFError` for unreadable headers,
    :class:`~victor_gui.errors.ProviderConnectionError` when Ollama does not answer and
    :class:`~victor_gui.errors.ModelNotFoundError` when it does not know the model.
    """
    if ref.startswith("ollama:"):
        name = ref.split(":", 1)[1]
        base = parse_ollama_host((env if env is not None else os.environ).get("OLLAMA_HOST", ""))
        own = client is None
        http = client or make_client(PROBE_TIMEOUTS.scaled(4))
        try:
            show, size = await _ollama_show(name, base.rstrip("/"), http)
        finally:
            if own:
                await http.aclose()
        return ModelSource(from_ollama_show(show, size_bytes=size), "ollama", f"{name} (Ollama at {base})",
                           size or None)
    header = await read_gguf_header(ref, client=client)
    kind = "url" if ref.startswith(("http://", "https://")) else "gguf"
    return ModelSource(from_gguf(header), kind, ref, header.file_size)
