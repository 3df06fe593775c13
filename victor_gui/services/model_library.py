"""The model manager view's state (Qt-free): one endpoint's models, the selected model's fit
estimate at a chosen context, running pulls, and the outcome of load/unload/delete.

:class:`ModelLibraryService` owns all of it; the view calls methods and re-renders on events
(``subscribe(callback) -> unsubscribe``; callbacks get ``(event, payload)``): ``"models"``
(the list changed), ``"selection"``, ``"fit"`` (a new :class:`FitResult` or None),
``"pull"`` (a :class:`PullState`), ``"message"`` (a sentence: an action's outcome or error),
``"busy"``, ``"hardware"`` and ``"file"`` (a :class:`FileEstimate` of a GGUF file chosen by
hand, or None: it is on no server, so it is never a row of a server's list).

Facts come from each server's own API: Ollama ``/api/tags`` (size, quantization, family),
``/api/ps`` (what is loaded, ``size_vram`` — shown beside the estimate as *measured*) and
``/api/show`` (the architecture the estimate needs); LM Studio REST v1 and llama.cpp ``/models``
through :mod:`victor_gui.servers.models`; a local GGUF file through ``read_gguf_header`` in a
worker thread. The estimate itself is pure arithmetic (microseconds), so context changes are
recomputed on the loop, coalesced over ``debounce_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import httpx

from victor_gui.core.listeners import Listeners
from victor_gui.core.tasks import TaskSet
from victor_gui.errors import ProviderError, ProviderUnavailableError, VictorGuiError
from victor_gui.providers.http import parse_json_body, raise_for_status, transport_error
from victor_gui.servers.models import LlamaCppModels, LMStudioModels, OllamaModels, TransferProgress
from victor_gui.servers.status import DISPLAY_NAMES, EndpointStatus, LoadedModel, ServerKind
from victor_gui.services.ollama_context import choose_num_ctx
from victor_gui.sizing.architecture import ModelArchitecture, from_gguf, from_ollama_show
from victor_gui.sizing.fit import CTX_PAD, FitOptions, FitResult, Measured, estimate_fit
from victor_gui.sizing.gguf_reader import read_gguf_header
from victor_gui.sizing.gpu import detect_gpus
from victor_gui.sizing.hardware import GpuReport

log = logging.getLogger(__name__)

Listener = Callable[[str, Any], None]
DEFAULT_CTX = 8192
FALLBACK_MAX_CTX = 131072
NOT_SUPPORTED = "not supported by this server version"
UNLOAD_WAIT_S = 30.0  # a router stops a model's child within its stop-timeout (10 s by default)


@dataclass(frozen=True)
class ModelEntry:
    """One model on an endpoint, with what its server reports about it."""

    name: str
    size_bytes: int | None = None
    quantization: str | None = None
    parameter_size: str | None = None
    family: str | None = None
    context_length: int | None = None  # the loaded (or configured) context, when known
    max_context_length: int | None = None  # what the model was trained for, when known
    loaded: bool = False
    measured: Measured | None = None  # Ollama /api/ps figures of the loaded runner
    local_path: str | None = None  # a GGUF readable on this machine
    status: str | None = None  # a llama-server router's word: unloaded, loading, loaded, sleeping


@dataclass
class FileEstimate:
    """A GGUF file on this machine estimated by hand: it belongs to no server, so it has its own
    state (and panel) instead of a row in a server's list that Load could not act on."""

    path: str
    n_ctx: int = DEFAULT_CTX
    architecture: ModelArchitecture | None = None
    fit: FitResult | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def max_context(self) -> int:
        arch = self.architecture
        return arch.n_ctx_train if arch is not None and arch.n_ctx_train else FALLBACK_MAX_CTX


@dataclass
class PullState:
    """A pull (Ollama) or download (LM Studio) in progress or finished."""

    model: str
    progress: TransferProgress | None = None
    error: str | None = None
    done: bool = False
    cancelled: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return not (self.done or self.cancelled or self.error)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, VictorGuiError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _file_sizes(paths: list[str | None]) -> list[int | None]:
    """Each file's size, None where there is no readable file here (blocking: a thread)."""
    out: list[int | None] = []
    for path in paths:
        try:
            out.append(os.path.getsize(path) if path else None)
        except OSError:
            out.append(None)
    return out


class ModelLibraryService:
    """Models of one endpoint at a time, their fit on this machine, and actions on them."""

    def __init__(self, client: httpx.AsyncClient, *, gpu_report: GpuReport | None = None,
                 gpu_detector: Callable[[], Awaitable[GpuReport]] | None = detect_gpus,
                 debounce_s: float = 0.05, options: FitOptions | None = None) -> None:
        self._client = client
        self.gpu_report = gpu_report
        self._gpu_detector = gpu_detector if gpu_report is None else None
        self.debounce_s = debounce_s
        self.options = options or FitOptions()
        self._listeners: Listeners[[str, Any]] = Listeners(log, "model manager listener failed")
        self.endpoint: EndpointStatus | None = None
        self.models: list[ModelEntry] = []
        self.selected: str | None = None
        self.n_ctx: int = DEFAULT_CTX
        self.architecture: ModelArchitecture | None = None
        self.arch_error: str | None = None
        self.fit: FitResult | None = None
        self.message: str = ""
        self.busy: str | None = None
        self.pulls: dict[str, PullState] = {}
        self.file: FileEstimate | None = None  # a GGUF file estimated by hand (its own panel)
        self._file_recompute: asyncio.TimerHandle | None = None
        self._archs: dict[tuple[str, str], ModelArchitecture] = {}
        self._recompute: asyncio.TimerHandle | None = None
        self._tasks = TaskSet("model library")

    # -- observers ------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event, payload)`` on every change; returns the unsubscribe function."""
        return self._listeners.add(listener)

    def _emit(self, event: str, payload: Any = None) -> None:
        self._listeners.notify(event, payload)

    def _say(self, text: str) -> None:
        self.message = text
        self._emit("message", text)

    # -- reading --------------------------------------------------------------------------------

    @property
    def kind(self) -> ServerKind | None:
        return self.endpoint.kind if self.endpoint else None

    @property
    def base_url(self) -> str | None:
        return self.endpoint.base_url if self.endpoint else None

    def entry(self, name: str | None) -> ModelEntry | None:
        return next((m for m in self.models if m.name == name), None)

    @property
    def max_context(self) -> int:
        """The top of the context slider: the model's trained context, else 128k."""
        if self.architecture is not None and self.architecture.n_ctx_train:
            return self.architecture.n_ctx_train
        entry = self.entry(self.selected)
        return (entry.max_context_length if entry and entry.max_context_length else FALLBACK_MAX_CTX)

    async def ensure_hardware(self) -> None:
        """Detect GPUs once (off the loop) unless a report was given."""
        if self.gpu_report is None and self._gpu_detector is not None:
            try:
                self.gpu_report = await self._gpu_detector()
            except Exception as exc:
                self.gpu_report = GpuReport(notes=[f"GPU detection failed: {type(exc).__name__}"])
            self._emit("hardware", self.gpu_report)

    def set_gpu_report(self, report: GpuReport) -> None:
        """Estimate against ``report`` from now on (tests inject a known machine)."""
        self.gpu_report = report
        self._gpu_detector = None
        self._emit("hardware", report)
        self.estimate_now()

    async def set_endpoint(self, status: EndpointStatus) -> None:
        """Show ``status``'s endpoint: list its models and forget the old selection."""
        changed = self.endpoint is None or self.endpoint.base_url != status.base_url
        self.endpoint = status
        if changed:
            self.selected, self.architecture, self.fit, self.arch_error = None, None, None, None
            self.models = []
            self._emit("selection", None)
        await self.refresh()

    async def refresh(self) -> None:
        """List the endpoint's models again (and what is loaded)."""
        if self.endpoint is None:
            return
        try:
            self.models = await self._list_models(self.endpoint)
        except ProviderError as exc:
            self.models = []
            self._say(f"Cannot list the models of {self.endpoint.base_url}: {_error_text(exc)}")
        self._emit("models", self.models)
        if self.selected is not None and self.entry(self.selected) is None:
            self.selected, self.architecture, self.fit = None, None, None
            self._emit("selection", None)
        elif self.selected is not None:
            self.estimate_now()

    async def _get_json(self, method: str, path: str, body: Any = None) -> Any:
        assert self.endpoint is not None
        provider = self.endpoint.kind.value
        try:
            response = await self._client.request(method, self.endpoint.base_url + path, json=body)
        except httpx.HTTPError as exc:
            raise transport_error(exc, provider) from exc
        await raise_for_status(response, provider=provider)
        return parse_json_body(response.content, provider=provider, status=response.status_code)

    async def _list_models(self, status: EndpointStatus) -> list[ModelEntry]:
        if status.kind is ServerKind.OLLAMA:
            tags, ps = await asyncio.gather(self._get_json("GET", "/api/tags"),
                                            self._get_json("GET", "/api/ps"))
            running = {str(p.get("name")): p for p in (ps or {}).get("models") or [] if isinstance(p, dict)}
            out = []
            for tag in (tags or {}).get("models") or []:
                if not isinstance(tag, dict):
                    continue
                name = str(tag.get("name"))
                raw_details = tag.get("details")
                details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
                run = running.get(name)
                out.append(ModelEntry(
                    name=name, size_bytes=tag.get("size"), quantization=details.get("quantization_level"),
                    parameter_size=details.get("parameter_size"), family=details.get("family"),
                    context_length=run.get("context_length") if run else None, loaded=run is not None,
                    measured=Measured.from_ollama_ps(run) if run else None))
            return out
        if status.kind is ServerKind.LMSTUDIO:
            try:
                listed = await LMStudioModels(self._client, status.base_url).list()
            except ProviderUnavailableError:
                listed = list(status.models)
        elif status.kind is ServerKind.LLAMACPP:
            entries = await LlamaCppModels(self._client, status.base_url).entries()
            if any(e.status is not None for e in entries):  # router mode: its own file per model
                sizes = await asyncio.to_thread(_file_sizes, [e.path for e in entries])
                return [ModelEntry(name=e.name, size_bytes=size, context_length=e.context_length,
                                   loaded=e.loaded, local_path=e.path, status=e.status)
                        for e, size in zip(entries, sizes, strict=True)]
            listed = [LoadedModel(name=e.name, loaded=e.loaded, status=e.status) for e in entries]
        else:
            listed = list(status.models)
        known = {m.name: m for m in status.models}
        path = status.detail("model_path")
        out = []
        for m in listed:
            seen = known.get(m.name)
            out.append(ModelEntry(
                name=m.name, size_bytes=m.size_bytes or (seen.size_bytes if seen else None),
                context_length=m.context_length or (seen.context_length if seen else None),
                max_context_length=m.max_context_length or (seen.max_context_length if seen else None),
                loaded=m.loaded, local_path=path if isinstance(path, str) and len(listed) == 1 else None))
        return out

    # -- the fit estimate ---------------------------------------------------------------------------

    async def select(self, name: str | None) -> None:
        """Select a model and read its architecture (Ollama ``/api/show`` or a local GGUF)."""
        self.selected, self.architecture, self.fit, self.arch_error = name, None, None, None
        entry = self.entry(name)
        if entry is not None:
            self.n_ctx = self._default_ctx(entry)
        self._emit("selection", name)
        if entry is None or self.endpoint is None:
            return
        await self.ensure_hardware()
        try:
            arch = await self._architecture(entry)
        except (VictorGuiError, OSError) as exc:
            self.arch_error = f"No architecture for {entry.name}: {_error_text(exc)}"
            self._emit("fit", None)
            return
        if self.selected != name:  # the user moved on while we read
            return
        self.architecture = arch
        if entry.context_length is None:  # not loaded: the context the fit plan chooses
            self.n_ctx = self.planned_context(arch)
        self.estimate_now()

    def planned_context(self, arch: ModelArchitecture) -> int:
        """The context a load uses unless the user moves the slider: what fully offloads on this
        machine, capped by the trained context (the chat sends Ollama the same, as num_ctx)."""
        return choose_num_ctx(arch, self.gpu_report or GpuReport(), self.options).num_ctx

    async def attach_file(self, name: str, path: str | Path) -> None:
        """Tell the model manager which GGUF file server model ``name`` is (LM Studio does not
        say over HTTP): its architecture is read from the file, the plan sets the context a
        Load asks for (LM Studio ``context_length``)."""
        self.models = [replace(m, local_path=str(path)) if m.name == name else m for m in self.models]
        if self.endpoint is not None:
            self._archs.pop((self.endpoint.base_url, name), None)
        await self.select(name)

    async def use_gguf(self, path: str | Path) -> FileEstimate:
        """Estimate a local GGUF file (on no server): :attr:`file`, event ``"file"``. The
        server's list and selection are left as they are."""
        estimate = FileEstimate(str(path))
        self.file = estimate
        self._emit("file", estimate)
        await self.ensure_hardware()
        try:
            header = await read_gguf_header(str(path))
            estimate.architecture = from_gguf(header)
        except (VictorGuiError, OSError) as exc:
            estimate.error = f"Cannot read {estimate.name}: {_error_text(exc)}"
            self._emit("file", estimate)
            return estimate
        if self.file is not estimate:  # another file was chosen while this one was read
            return estimate
        estimate.n_ctx = min(DEFAULT_CTX, estimate.max_context)
        self.estimate_file_now()
        return estimate

    def set_file_context(self, n_ctx: int) -> None:
        """Like :meth:`set_context`, for the file estimate."""
        if self.file is None:
            return
        self.file.n_ctx = max(CTX_PAD, int(n_ctx))
        if self._file_recompute is not None:
            self._file_recompute.cancel()
        self._file_recompute = asyncio.get_running_loop().call_later(self.debounce_s, self.estimate_file_now)

    def estimate_file_now(self) -> FitResult | None:
        """Recompute the file's fit at its context."""
        self._file_recompute = None
        estimate = self.file
        if estimate is None or estimate.architecture is None:
            return None
        report = self.gpu_report or GpuReport()
        estimate.fit = estimate_fit(estimate.architecture, report.gpus, report.ram,
                                    replace(self.options, n_ctx=estimate.n_ctx))
        self._emit("file", estimate)
        return estimate.fit

    def close_file(self) -> None:
        """Put the file estimate away."""
        self.file = None
        self._emit("file", None)

    def _default_ctx(self, entry: ModelEntry) -> int:
        if entry.context_length:
            return entry.context_length
        return min(DEFAULT_CTX, entry.max_context_length or DEFAULT_CTX)

    async def _architecture(self, entry: ModelEntry) -> ModelArchitecture:
        assert self.endpoint is not None
        key = (self.endpoint.base_url, entry.name)
        if key in self._archs:
            return self._archs[key]
        local = entry.local_path
        is_file: bool = bool(local) and await asyncio.to_thread(os.path.isfile, str(local))
        if local and is_file:
            arch = from_gguf(await read_gguf_header(local))
        elif self.endpoint.kind is ServerKind.OLLAMA:
            show = await self._get_json("POST", "/api/show", {"model": entry.name, "verbose": True})
            arch = from_ollama_show(show if isinstance(show, dict) else {}, size_bytes=entry.size_bytes or 0)
        else:
            raise ProviderUnavailableError(
                f"{DISPLAY_NAMES[self.endpoint.kind]} does not describe its models' layers over HTTP; "
                "choose the GGUF file to estimate it", self.endpoint.kind.value)
        self._archs[key] = arch
        return arch

    def set_context(self, n_ctx: int) -> None:
        """Ask for the estimate at ``n_ctx`` tokens; recomputed once the slider rests ``debounce_s``."""
        self.n_ctx = max(CTX_PAD, int(n_ctx))
        if self._recompute is not None:
            self._recompute.cancel()
        self._recompute = asyncio.get_running_loop().call_later(self.debounce_s, self.estimate_now)

    def estimate_now(self) -> FitResult | None:
        """Recompute the fit of the selected model at ``n_ctx`` (microseconds: pure arithmetic)."""
        self._recompute = None
        if self.architecture is None:
            return None
        report = self.gpu_report or GpuReport()
        opts = replace(self.options, n_ctx=self.n_ctx)
        fit = estimate_fit(self.architecture, report.gpus, report.ram, opts)
        entry = self.entry(self.selected)
        if entry is not None and entry.measured is not None:
            fit.measured = entry.measured
        self.fit = fit
        self._emit("fit", fit)
        return fit

    # -- actions --------------------------------------------------------------------------------

    def start_pull(self, model: str) -> PullState | None:
        """Pull (Ollama) or download (LM Studio) ``model``; progress arrives as ``"pull"`` events."""
        model = model.strip()
        if not model or self.endpoint is None:
            return None
        if model in self.pulls and self.pulls[model].running:
            return self.pulls[model]
        if self.endpoint.kind not in (ServerKind.OLLAMA, ServerKind.LMSTUDIO):
            self._say(f"Downloading models is {NOT_SUPPORTED} "
                      f"({DISPLAY_NAMES[self.endpoint.kind]} has no pull over HTTP)")
            return None
        state = PullState(model)
        self.pulls[model] = state
        state.task = asyncio.create_task(self._pull(state), name=f"pull:{model}")
        self._emit("pull", state)
        return state

    async def _pull(self, state: PullState) -> None:
        assert self.endpoint is not None
        if self.endpoint.kind is ServerKind.OLLAMA:
            stream = OllamaModels(self._client, self.endpoint.base_url).pull(state.model)
        else:
            stream = LMStudioModels(self._client, self.endpoint.base_url).download(state.model)
        try:
            # Closing the generator closes the connection (pull/download are async generators).
            async with aclosing(cast(AsyncGenerator[TransferProgress, None], stream)) as progress:
                async for step in progress:
                    state.progress = step
                    self._emit("pull", state)
            state.done = True
            self._say(f"Pulled {state.model}")
        except asyncio.CancelledError:
            state.cancelled = True
            self._emit("pull", state)
            raise
        except ProviderError as exc:
            state.error = _error_text(exc)
            self._say(state.error)
        self._emit("pull", state)
        if state.done:
            await self.refresh()

    async def cancel_pull(self, model: str) -> None:
        """Stop a pull: the task is cancelled and the HTTP connection closed (pulling again resumes)."""
        state = self.pulls.get(model)
        if state is None or state.task is None or state.task.done():
            return
        state.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.task
        self._say(f"Pull of {model} cancelled (pulling again resumes where it stopped)")

    async def load(self, model: str) -> bool:
        """Load ``model`` into memory (Ollama preload, LM Studio load at the chosen context,
        llama.cpp router load); False with a message when the server cannot."""
        return await self._action("Loading", model, self._load)

    async def unload(self, model: str) -> bool:
        """Free ``model``'s memory (Ollama keep_alive 0, LM Studio / llama.cpp router unload)."""
        return await self._action("Unloading", model, self._unload)

    async def delete(self, model: str) -> bool:
        """Delete ``model`` from the server's disk (Ollama only). The view confirms first."""
        return await self._action("Deleting", model, self._delete)

    async def _action(self, verb: str, model: str, call: Callable[[str], Awaitable[None]]) -> bool:
        if self.endpoint is None:
            return False
        self.busy = f"{verb} {model}…"
        self._emit("busy", self.busy)
        try:
            await call(model)
        except ProviderUnavailableError as exc:
            self._say(f"{verb} is {NOT_SUPPORTED}: {_error_text(exc)}")
            return False
        except ProviderError as exc:
            self._say(f"{verb} {model} failed: {_error_text(exc)}")
            return False
        finally:
            self.busy = None
            self._emit("busy", None)
        self._say(f"{verb} {model}: done")
        await self.refresh()
        return True

    async def _load(self, model: str) -> None:
        assert self.endpoint is not None
        kind, url = self.endpoint.kind, self.endpoint.base_url
        if kind is ServerKind.OLLAMA:
            await OllamaModels(self._client, url).preload(model, num_ctx=self.n_ctx)
        elif kind is ServerKind.LMSTUDIO:
            await LMStudioModels(self._client, url).load(model, context_length=self.n_ctx)
        elif kind is ServerKind.LLAMACPP:
            await self._router_load(LlamaCppModels(self._client, url), model)
        else:
            raise ProviderUnavailableError(f"{DISPLAY_NAMES[kind]} loads one model at start-up", kind.value)

    async def _router_load(self, models: LlamaCppModels, model: str) -> None:
        """A router answers the load at once: the list shows ``loading`` meanwhile, and the
        action ends when the model is ``loaded`` (or its child failed)."""
        try:
            await models.load(model)
        except ProviderError as exc:
            if "already running" not in _error_text(exc):
                raise
        await self.refresh()
        try:
            await models.wait_loaded(model)
        except ProviderError:
            await self.refresh()  # the list must not keep saying "loading"
            raise

    async def _unload(self, model: str) -> None:
        assert self.endpoint is not None
        kind, url = self.endpoint.kind, self.endpoint.base_url
        if kind is ServerKind.OLLAMA:
            await OllamaModels(self._client, url).unload(model)
        elif kind is ServerKind.LMSTUDIO:
            await LMStudioModels(self._client, url).unload(model)
        elif kind is ServerKind.LLAMACPP:
            models = LlamaCppModels(self._client, url)
            await models.unload(model)
            await models.wait_status(model, ("unloaded",), timeout_s=UNLOAD_WAIT_S)
        else:
            raise ProviderUnavailableError(f"{DISPLAY_NAMES[kind]} cannot unload over HTTP", kind.value)

    async def _delete(self, model: str) -> None:
        assert self.endpoint is not None
        if self.endpoint.kind is not ServerKind.OLLAMA:
            name = DISPLAY_NAMES[self.endpoint.kind]
            raise ProviderUnavailableError(f"{name} cannot delete models over HTTP", self.endpoint.kind.value)
        await OllamaModels(self._client, self.endpoint.base_url).delete(model)
        if self.selected == model:
            self.selected, self.architecture, self.fit = None, None, None
            self._emit("selection", None)

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task the service keeps (and cancels on close); for views' buttons."""
        return self._tasks.spawn(coro)

    async def close(self) -> None:
        """Cancel pulls and pending work; the shared client stays open."""
        if self._recompute is not None:
            self._recompute.cancel()
        tasks = [*self._tasks, *(p.task for p in self.pulls.values() if p.task is not None)]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._listeners.clear()
