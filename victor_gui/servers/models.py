"""Model management over HTTP, per server (servers.md §1.5, §2.5, §4.5).

* **Ollama**: ``pull`` streams NDJSON progress (bytes, speed and ETA computed here); cancelling
  is cancelling the task or closing the iterator, which closes the connection; pulling again
  resumes (Ollama keeps the partial blobs). ``delete``, ``preload`` (``/api/generate`` with the
  model and no prompt) and ``unload`` (the same with ``keep_alive: 0``).
* **LM Studio** REST v1 (0.4+): ``load``, ``unload``, ``download`` with progress from the job
  status route. Older servers answer 200 with ``{"error":"Unexpected endpoint or method..."}``:
  that becomes :class:`ProviderUnavailableError` ("not supported by this server version").
* **llama.cpp** router mode: ``load``/``unload`` through ``/models/load`` and ``/models/unload``
  when ``/models`` lists ``status`` objects (both answer at once: ``wait_loaded`` follows the
  status to ``loaded``, or to the child's failure); a single-model server gets "not supported".

vLLM has no HTTP model management (one base model per process): see :func:`manager_for`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

import httpx

from victor_gui.errors import (
    InvalidResponseError,
    ModelNotFoundError,
    ProviderError,
    ProviderUnavailableError,
)
from victor_gui.providers.bounded import LONG_TRANSFER
from victor_gui.providers.http import parse_json_body, raise_for_status, transport_error
from victor_gui.providers.json_guard import Shape
from victor_gui.providers.streaming import iter_ndjson
from victor_gui.servers.status import LoadedModel, ServerKind

# A pull can go quiet for minutes while Ollama verifies a large blob's digest.
PULL_TIMEOUT = httpx.Timeout(connect=3.0, read=900.0, write=30.0, pool=10.0)
# Loading a large model takes a while; LM Studio and Ollama answer only once it is in memory.
LOAD_TIMEOUT = httpx.Timeout(connect=3.0, read=600.0, write=30.0, pool=10.0)
SHORT_TIMEOUT = httpx.Timeout(connect=3.0, read=30.0, write=30.0, pool=10.0)


@dataclass(frozen=True)
class TransferProgress:
    """Progress of a pull or download. Byte counts add up every layer seen so far."""

    model: str
    status: str
    completed: int = 0
    total: int = 0
    bytes_per_s: float | None = None
    eta_s: float | None = None
    digest: str | None = None
    done: bool = False

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.completed / self.total) if self.total else None


class RateMeter:
    """Transfer speed over a sliding window (seconds), and the ETA it implies."""

    def __init__(self, window_s: float = 3.0, clock: Any = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, completed: int) -> float | None:
        now = self._clock()
        self._samples.append((now, completed))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 0.05 or c1 < c0:
            return None
        return (c1 - c0) / (t1 - t0)

    @staticmethod
    def eta(completed: int, total: int, rate: float | None) -> float | None:
        if not rate or not total or completed >= total:
            return 0.0 if total and completed >= total else None
        return (total - completed) / rate


async def _json_call(client: httpx.AsyncClient, method: str, url: str, *, provider: str,
                     model: str | None = None, body: Any = None,
                     limits: httpx.Timeout = SHORT_TIMEOUT) -> Any:
    """One JSON request: typed errors for transport failures and non-2xx replies."""
    try:
        response = await client.request(method, url, json=body, timeout=limits)
    except httpx.HTTPError as exc:
        raise transport_error(exc, provider, model=model) from exc
    await raise_for_status(response, provider=provider, model=model)
    if not response.content:
        return None
    return parse_json_body(response.content, provider=provider, status=response.status_code, model=model,
                           content_type=response.headers.get("content-type", ""))


# ---------------------------------------------------------------------------------------------
# Ollama
# ---------------------------------------------------------------------------------------------

class OllamaModels:
    """Pull, delete, preload and unload on an Ollama server at ``base_url`` (its root)."""

    provider = "ollama"

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self.base_url = base_url.rstrip("/")

    async def pull(self, model: str, *, insecure: bool = False) -> AsyncIterator[TransferProgress]:
        """Progress of ``POST /api/pull``, ending with ``done=True`` on ``success``.

        Stop it by cancelling the consuming task or closing the iterator (``aclosing``): the
        connection is closed and Ollama stops; calling ``pull`` again resumes the download.
        """
        body: dict[str, Any] = {"model": model, "stream": True}
        if insecure:
            body["insecure"] = True
        layers: dict[str, tuple[int, int]] = {}  # digest -> (completed, total)
        meter = RateMeter()
        try:
            async with self._client.stream("POST", f"{self.base_url}/api/pull", json=body,
                                           timeout=PULL_TIMEOUT, extensions=LONG_TRANSFER) as response:
                await raise_for_status(response, provider=self.provider, model=model)
                lines_iter = cast(AsyncGenerator[Any, None], iter_ndjson(response, provider=self.provider))
                async with aclosing(lines_iter) as lines:
                    async for line in lines:
                        if not isinstance(line, dict):
                            continue
                        if isinstance(line.get("error"), str):
                            raise _pull_error(line["error"], model)
                        status = str(line.get("status") or "")
                        digest = line.get("digest") if isinstance(line.get("digest"), str) else None
                        if digest is not None and isinstance(line.get("total"), int):
                            got = line.get("completed")
                            layers[digest] = (got if isinstance(got, int) else 0, line["total"])
                        completed = sum(c for c, _ in layers.values())
                        total = sum(t for _, t in layers.values())
                        rate = meter.add(completed) if digest is not None else None
                        yield TransferProgress(model, status, completed, total, rate,
                                               RateMeter.eta(completed, total, rate), digest,
                                               done=status == "success")
                        if status == "success":
                            return
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.provider, model=model) from exc
        raise InvalidResponseError("The pull stream ended before Ollama reported success", self.provider,
                                   model=model)

    async def delete(self, model: str) -> None:
        """``DELETE /api/delete``; :class:`ModelNotFoundError` when Ollama has no such model."""
        await _json_call(self._client, "DELETE", f"{self.base_url}/api/delete", provider=self.provider,
                         model=model, body={"model": model})

    async def preload(self, model: str, *, keep_alive: str | int | None = None,
                      num_ctx: int | None = None) -> None:
        """Load ``model`` into memory without generating (``done_reason: "load"``), at
        ``num_ctx`` when given (else Ollama's default context)."""
        body: dict[str, Any] = {"model": model, "stream": False}
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        if num_ctx:
            body["options"] = {"num_ctx": int(num_ctx)}
        await _json_call(self._client, "POST", f"{self.base_url}/api/generate", provider=self.provider,
                         model=model, body=body, limits=LOAD_TIMEOUT)

    async def unload(self, model: str) -> None:
        """Free ``model``'s memory now (``keep_alive: 0``, ``done_reason: "unload"``)."""
        await _json_call(self._client, "POST", f"{self.base_url}/api/generate", provider=self.provider,
                         model=model, body={"model": model, "keep_alive": 0, "stream": False})


def _pull_error(message: str, model: str) -> ProviderError:
    lowered = message.lower()
    if "file does not exist" in lowered or "not found" in lowered:
        return ModelNotFoundError(f"Ollama cannot pull {model!r}: {message}", "ollama", model=model)
    return ProviderError(f"Ollama failed to pull {model!r}: {message}", "ollama", model=model)


# ---------------------------------------------------------------------------------------------
# LM Studio (REST v1, 0.4+)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadResult:
    instance_id: str
    load_time_s: float | None = None
    status: str = "loaded"


class LMStudioModels:
    """Load, unload and download through LM Studio's REST v1 (0.4+) at ``base_url`` (its root)."""

    provider = "lmstudio"

    def __init__(self, client: httpx.AsyncClient, base_url: str, *, poll_interval: float = 0.5) -> None:
        self._client = client
        self.base_url = base_url.rstrip("/")
        self.poll_interval = poll_interval

    async def _call(self, method: str, path: str, *, model: str | None = None, body: Any = None,
                    limits: httpx.Timeout = SHORT_TIMEOUT) -> dict[str, Any]:
        data = await _json_call(self._client, method, self.base_url + path, provider=self.provider,
                                model=model, body=body, limits=limits)
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            # LM Studio's answer for routes it lacks: HTTP 200 and this body.
            if data["error"].startswith("Unexpected endpoint or method"):
                raise ProviderUnavailableError(
                    f"This LM Studio server does not support {path} (model management over HTTP needs "
                    "LM Studio 0.4 or later; use `lms load` / `lms get` instead)", self.provider, model=model)
            raise ProviderError(f"LM Studio refused {path}: {data['error']}", self.provider, model=model)
        if not isinstance(data, dict):
            raise InvalidResponseError(f"LM Studio's reply to {path} is not a JSON object", self.provider)
        return data

    async def list(self) -> list[LoadedModel]:
        """Downloaded models with their loaded instances (``GET /api/v1/models``)."""
        data = await self._call("GET", "/api/v1/models")
        shape = Shape("LM Studio /api/v1/models", self.provider)
        out = []
        for i, entry in enumerate(shape.objects(data, "models")):
            at = f"models[{i}]"
            instances = shape.objects(entry, "loaded_instances", at)
            first = instances[0] if instances else {}
            config = shape.opt_obj(first, "config", f"{at}.loaded_instances[0]") or {}
            out.append(LoadedModel(name=shape.req_str(entry, "key", at), loaded=bool(instances),
                                   context_length=shape.opt_count(config, "context_length",
                                                                  f"{at}.loaded_instances[0].config"),
                                   max_context_length=shape.opt_count(entry, "max_context_length", at),
                                   size_bytes=shape.opt_count(entry, "size_bytes", at),
                                   status="loaded" if instances else "not-loaded"))
        return out

    async def load(self, model: str, *, context_length: int | None = None, **config: Any) -> LoadResult:
        """``POST /api/v1/models/load``; extra ``config`` keys (``flash_attention``...) pass through."""
        body: dict[str, Any] = {"model": model, **config}
        if context_length is not None:
            body["context_length"] = context_length
        data = await self._call("POST", "/api/v1/models/load", model=model, body=body, limits=LOAD_TIMEOUT)
        shape = Shape("LM Studio /api/v1/models/load", self.provider, model=model)
        took = shape.opt_fraction(data, "load_time_seconds")
        status = shape.opt_str(data, "status") or "loaded"
        return LoadResult(shape.opt_str(data, "instance_id") or model, took, status)

    async def unload(self, instance_id: str) -> None:
        """``POST /api/v1/models/unload`` with the instance id ``load`` returned."""
        await self._call("POST", "/api/v1/models/unload", model=instance_id,
                         body={"instance_id": instance_id})

    async def download(self, model: str, *,
                       quantization: str | None = None) -> AsyncIterator[TransferProgress]:
        """Start a download and follow its job until it completes (``done=True``) or fails."""
        body: dict[str, Any] = {"model": model}
        if quantization:
            body["quantization"] = quantization
        data = await self._call("POST", "/api/v1/models/download", model=model, body=body)
        shape = Shape("LM Studio /api/v1/models/download", self.provider, model=model)
        status = shape.opt_str(data, "status") or ""
        job_id = shape.opt_str(data, "job_id")
        if status in ("already_downloaded", "completed") or not job_id:
            total = shape.opt_count(data, "total_size_bytes") or 0
            yield TransferProgress(model, status or "completed", total, total, done=True)
            return
        meter = RateMeter()
        while True:
            data = await self._call("GET", f"/api/v1/models/download/status/{job_id}", model=model)
            shape = Shape("LM Studio /api/v1/models/download/status", self.provider, model=model)
            status = shape.opt_str(data, "status") or ""
            completed = shape.opt_count(data, "downloaded_bytes") or 0
            total = shape.opt_count(data, "total_size_bytes") or 0
            measured = meter.add(completed)
            reported = shape.opt_fraction(data, "bytes_per_second")
            rate = reported if reported is not None else measured
            if status == "failed":
                raise ProviderError(f"LM Studio could not download {model!r}", self.provider, model=model)
            done = status == "completed"
            yield TransferProgress(model, status, total if done else completed, total, rate,
                                   RateMeter.eta(total if done else completed, total, rate), done=done)
            if done:
                return
            await asyncio.sleep(self.poll_interval)


# ---------------------------------------------------------------------------------------------
# llama.cpp router mode
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RouterEntry:
    """One model in a llama-server's ``GET /models``. In router mode ``status`` is its
    ``status.value`` and ``args`` (the child's command line) give its file and context."""

    name: str
    status: str | None = None  # None: a single-model server (no status objects)
    path: str | None = None
    context_length: int | None = None  # the -c it is (or will be) loaded with
    failed: bool = False  # the last load ended with an error
    exit_code: int | None = None

    @property
    def loaded(self) -> bool:
        return self.status in (None, "loaded")


def _flag_value(args: list[str], *names: str) -> str | None:
    """The value after the first of ``names`` in a command line."""
    for i, arg in enumerate(args[:-1]):
        if arg in names:
            return args[i + 1]
    return None


# How long a router load may take before the wait gives up (a large model from a slow disk).
ROUTER_LOAD_WAIT_S = 600.0


class LlamaCppModels:
    """Load and unload on a llama-server in router mode at ``base_url`` (its root)."""

    provider = "llamacpp"

    def __init__(self, client: httpx.AsyncClient, base_url: str, *, poll_interval: float = 0.25) -> None:
        self._client = client
        self.base_url = base_url.rstrip("/")
        self.poll_interval = poll_interval

    async def entries(self) -> list[RouterEntry]:
        """``GET /models`` read in full: status, file, context and last failure per model."""
        data = await _json_call(self._client, "GET", f"{self.base_url}/models", provider=self.provider)
        shape = Shape("llama.cpp /models", self.provider)
        out = []
        for i, card in enumerate(shape.objects(shape.obj(data) if data is not None else {}, "data")):
            at = f"data[{i}]"
            status = shape.opt_obj(card, "status", at)
            where = f"{at}.status"
            raw_args = status.get("args") if status is not None else None
            args = [a for a in raw_args if isinstance(a, str)] if isinstance(raw_args, list) else []
            ctx = _flag_value(args, "--ctx-size", "-c")
            code = shape.opt_fraction(status, "exit_code", where) if status is not None else None
            out.append(RouterEntry(
                name=shape.req_str(card, "id", at),
                status=shape.opt_str(status, "value", where) if status is not None else None,
                path=shape.opt_str(card, "path", at) or _flag_value(args, "--model", "-m"),
                context_length=int(ctx) if ctx is not None and ctx.isdigit() and int(ctx) > 0 else None,
                failed=bool(status is not None and shape.opt_bool(status, "failed", where)),
                exit_code=int(code) if code is not None else None))
        return out

    async def list(self) -> list[LoadedModel]:
        """``GET /models``: in router mode every entry carries ``status.value``."""
        return [LoadedModel(name=e.name, loaded=e.loaded, status=e.status) for e in await self.entries()]

    async def is_router(self) -> bool:
        return any(m.status is not None for m in await self.list())

    async def _router_call(self, path: str, model: str) -> None:
        if not await self.is_router():
            raise ProviderUnavailableError(
                "This llama-server runs a single model (started with -m): loading and unloading need "
                "router mode (start llama-server without -m, with --models-dir)", self.provider, model=model)
        await _json_call(self._client, "POST", self.base_url + path, provider=self.provider, model=model,
                         body={"model": model}, limits=LOAD_TIMEOUT)

    async def load(self, model: str) -> None:
        """``POST /models/load``; the model's status turns ``loading``, then ``loaded``
        (:meth:`wait_loaded` waits for that)."""
        await self._router_call("/models/load", model)

    async def unload(self, model: str) -> None:
        await self._router_call("/models/unload", model)

    async def wait_status(self, model: str, wanted: tuple[str, ...], *, timeout_s: float = ROUTER_LOAD_WAIT_S,
                          fail_on_unloaded: bool = False) -> RouterEntry:
        """Poll ``GET /models`` until ``model``'s status is one of ``wanted``. With
        ``fail_on_unloaded`` (after a load was accepted) a return to ``unloaded`` is the child's
        failure: :class:`ProviderError` with its exit code (its log is the router's)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            entry = next((e for e in await self.entries() if e.name == model), None)
            if entry is None:
                raise ModelNotFoundError(f"llama-server no longer lists {model!r}", self.provider,
                                         model=model)
            if entry.status in wanted:
                return entry
            if fail_on_unloaded and entry.status == "unloaded":
                code = f" (exit code {entry.exit_code})" if entry.exit_code is not None else ""
                raise ProviderError(f"llama-server could not load {model!r}{code}: its log says why",
                                    self.provider, model=model)
            if loop.time() > deadline:
                raise ProviderError(f"{model!r} was still {entry.status} after {timeout_s:.0f} s",
                                    self.provider, model=model)
            await asyncio.sleep(self.poll_interval)

    async def wait_loaded(self, model: str, *, timeout_s: float = ROUTER_LOAD_WAIT_S) -> RouterEntry:
        """After :meth:`load`: wait until ``model`` is ``loaded`` (or fails)."""
        return await self.wait_status(model, ("loaded", "sleeping"), timeout_s=timeout_s,
                                      fail_on_unloaded=True)


ModelManager = OllamaModels | LMStudioModels | LlamaCppModels


def manager_for(kind: ServerKind, client: httpx.AsyncClient, base_url: str) -> ModelManager:
    """The model manager for a server kind; vLLM and others raise ProviderUnavailableError."""
    if kind is ServerKind.OLLAMA:
        return OllamaModels(client, base_url)
    if kind is ServerKind.LMSTUDIO:
        return LMStudioModels(client, base_url)
    if kind is ServerKind.LLAMACPP:
        return LlamaCppModels(client, base_url)
    raise ProviderUnavailableError(
        f"{kind.value} has no model management over HTTP (vLLM serves one model per process: "
        "restart it with another model)", kind.value)
