"""Turn a model reference into a :class:`ModelArchitecture`: a GGUF path, an http(s) URL of a
GGUF (range requests), ``hf:OWNER/REPO/FILE.gguf`` (the same, from ``HF_ENDPOINT`` or
huggingface.co) or ``ollama:NAME`` (``POST /api/show`` on ``OLLAMA_HOST``).

httpx and the provider modules are imported only for references that need the network, and
asyncio only by the async entry points: :func:`load_local_gguf` answers a local file (from the
header cache or its header) in the calling thread, so ``victor-gui fit FILE --gpu-mem ...``
starts no event loop at all and stays a short-lived, light process.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from victor_gui.errors import GGUFError, InvalidResponseError, ModelNotFoundError, ProviderConnectionError
from victor_gui.sizing.architecture import ModelArchitecture, from_metadata, from_ollama_show
from victor_gui.sizing.gguf_header import GGUFHeader
from victor_gui.sizing.gguf_reader import read_gguf_file_sync, read_gguf_header
from victor_gui.sizing.header_cache import HeaderCache, file_key, url_key

if TYPE_CHECKING:
    import httpx

HF_DEFAULT_ENDPOINT = "https://huggingface.co"

_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


async def read_split_gguf(ref: str, *, client: httpx.AsyncClient | None = None,
                          first: GGUFHeader | None = None) -> tuple[GGUFHeader, list[str]]:
    """Read a GGUF header and, for a split model (``split.count`` > 1), every shard's tensor table.

    Shards are named ``<stem>-0000i-of-0000n.gguf`` (gguf-split, Hugging Face). The metadata
    comes from the first shard whatever shard ``ref`` names; the returned header's tensor list
    holds the tensors of all shards, and the second value lists the shards read. ``first`` is
    ``ref``'s header when the caller has read it already.
    """
    import asyncio

    header = first or await read_gguf_header(ref, client=client)
    count = int(header.metadata.get("split.count") or 1)
    if count <= 1:
        return header, [ref]
    base, _, query = ref.partition("?")
    m = _SHARD.search(base)
    if m is None or int(m.group(2)) != count:
        raise GGUFError(f"{ref} is shard of a {count}-part model, but its name is not "
                        "<name>-0000i-of-0000n.gguf, so the other parts cannot be found", reason="bad_value")
    names = [base[: m.start()] + f"-{i:05d}-of-{count:05d}.gguf" + (f"?{query}" if query else "")
             for i in range(1, count + 1)]
    here = int(header.metadata.get("split.no") or 0)
    others = await asyncio.gather(*(read_gguf_header(name, client=client)
                                    for i, name in enumerate(names) if i != here))
    shards = [*others[:here], header, *others[here:]]
    first = shards[0]
    first.tensors = [t for s in shards for t in s.tensors]
    first._by_name = {}
    return first, names


@dataclass(slots=True)
class ModelSource:
    """What was read and from where (``kind``: ``gguf``, ``url`` or ``ollama``)."""

    arch: ModelArchitecture
    kind: str
    label: str
    file_size: int | None = None


async def _ollama_show(name: str, base: str, client: httpx.AsyncClient) -> tuple[dict[str, Any], int]:
    import httpx

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


def hub_endpoint(endpoint: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The Hugging Face Hub's base URL: ``endpoint``, else ``HF_ENDPOINT`` (the variable
    huggingface_hub honours: mirrors, tests), else https://huggingface.co. The one rule the
    ``fit`` CLI, the Hub browser and the downloads share."""
    env = os.environ if env is None else env
    return (endpoint or env.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT).rstrip("/")


def hf_url(ref: str, env: Mapping[str, str] | None = None) -> str:
    """``hf:OWNER/REPO/PATH/FILE.gguf`` as the Hub's download URL on ``HF_ENDPOINT`` (the variable
    huggingface_hub honours; https://huggingface.co without it), main revision."""
    rest = ref.split(":", 1)[1].strip("/")
    parts = rest.split("/")
    if len(parts) < 3 or not all(parts) or ".." in parts:
        raise GGUFError(f"{ref!r} is not hf:OWNER/REPO/FILE.gguf", reason="bad_value")
    return f"{hub_endpoint(env=env)}/{parts[0]}/{parts[1]}/resolve/main/{'/'.join(parts[2:])}"


async def _etag(url: str, client: httpx.AsyncClient | None) -> str | None:
    """The ETag naming this file's bytes (the Hub's ``X-Linked-Etag`` on its redirect), or None."""
    import httpx

    from victor_gui.sizing.gguf_reader import header_client

    own = client is None
    http = client or header_client()
    try:
        resp = await http.head(url, follow_redirects=True)
    except httpx.HTTPError:
        return None
    finally:
        if own:
            await http.aclose()
    if resp.status_code >= 400:
        return None
    for r in (*resp.history, resp):
        linked = r.headers.get("x-linked-etag")
        if linked:
            return str(linked)
    etag = resp.headers.get("etag")
    return str(etag) if etag else None


async def _cached(cache: HeaderCache | None, key: str | None) -> tuple[ModelArchitecture, int | None] | None:
    import asyncio

    if cache is None or key is None:
        return None
    return await asyncio.to_thread(cache.get, key)


def _hf_token(env: Mapping[str, str] | None) -> str | None:
    """``HF_TOKEN`` (or the older ``HUGGING_FACE_HUB_TOKEN``), registered for redaction."""
    from victor_gui.core.redact import register_secret

    values = env if env is not None else os.environ
    token = (values.get("HF_TOKEN") or values.get("HUGGING_FACE_HUB_TOKEN") or "").strip()
    if token:
        register_secret(token)
    return token or None


async def load_model(ref: str, *, client: httpx.AsyncClient | None = None,
                     env: Mapping[str, str] | None = None, cache: HeaderCache | None = None) -> ModelSource:
    """Read enough of ``ref`` to describe the model; weights are never downloaded.

    With a ``cache``, a GGUF read before (same path, size and mtime; or same URL and ETag) is
    answered from it without reading the header again. ``hf:`` references send ``HF_TOKEN``
    (gated repositories) when no client is given.

    Raises :class:`~victor_gui.errors.GGUFError` for unreadable headers,
    :class:`~victor_gui.errors.ProviderConnectionError` when Ollama does not answer and
    :class:`~victor_gui.errors.ModelNotFoundError` when it does not know the model.
    """
    if ref.startswith("ollama:"):
        from victor_gui.providers.endpoints import parse_ollama_host
        from victor_gui.providers.http import PROBE_TIMEOUTS, make_client

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
    if ref.startswith("hf:"):
        url = hf_url(ref, env)
        token = _hf_token(env)
        if not token or client is not None:
            return await _load_gguf(ref, url, "hf", client, cache)
        from victor_gui.sizing.gguf_reader import header_client

        http = header_client({"Authorization": f"Bearer {token}"})  # httpx drops it off the origin
        try:
            return await _load_gguf(ref, url, "hf", http, cache)
        finally:
            await http.aclose()
    kind = "url" if ref.startswith(("http://", "https://")) else "gguf"
    return await _load_gguf(ref, ref, kind, client, cache)


def load_local_gguf(path: str, cache: HeaderCache | None = None) -> ModelSource | GGUFHeader:
    """A local GGUF described in the calling thread (blocking file I/O: for a one-shot command,
    or from a worker thread): from ``cache`` when it holds this very file (same path, size and
    mtime), else from its header, then stored in the cache.

    A split model is not described here: its first header is returned as read, and
    :func:`load_model` reads the other shards. Raises :class:`~victor_gui.errors.GGUFError`.
    """
    key = file_key(path) if cache is not None else None
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        return ModelSource(hit[0], "gguf", path, hit[1])
    header = read_gguf_file_sync(path)
    if int(header.metadata.get("split.count") or 1) > 1:
        return header
    arch = from_metadata(header.metadata, ((t.name, t.n_bytes) for t in header.tensors), source=path)
    if cache is not None:
        cache.put(key, arch, header.file_size)
    return ModelSource(arch, "gguf", path, header.file_size)


async def _load_gguf(ref: str, where: str, kind: str, client: httpx.AsyncClient | None,
                     cache: HeaderCache | None) -> ModelSource:
    """A GGUF at ``where`` (a path or URL), answered from ``cache`` when it holds this very file."""
    import asyncio

    key: str | None = None
    first: GGUFHeader | None = None
    if kind == "gguf":
        local = await asyncio.to_thread(load_local_gguf, where, cache)
        if isinstance(local, ModelSource):
            return local
        first = local  # a split model: its other shards are read below, and it is not cached
    else:
        key = url_key(where, await _etag(where, client)) if cache is not None else None
        hit = await _cached(cache, key)
        if hit is not None:
            return ModelSource(hit[0], kind, ref, hit[1])
    header, shards = await read_split_gguf(where, client=client, first=first)
    arch = from_metadata(header.metadata, ((t.name, t.n_bytes) for t in header.tensors), source=ref)
    label = ref if len(shards) == 1 else f"{ref} ({len(shards)} shards)"
    if cache is not None and key is not None and len(shards) == 1:  # a split model changes with its shards
        await asyncio.to_thread(cache.put, key, arch, header.file_size)
    return ModelSource(arch, kind, label, header.file_size)
