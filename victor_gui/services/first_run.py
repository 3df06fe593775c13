"""The first-run offer (Qt-free, async): a machine where no server answers gets a way to chat.

After discovery and the first health round, when no configured or discovered endpoint works
(:func:`no_server_works`), :class:`FirstRunService` builds a :class:`FirstRunOffer`:

a. **Models already on disk** (the model folders and the libraries of LM Studio, llama.cpp and
   Hugging Face, :mod:`.model_folders`), each planned by the :class:`~.engine_runner.EngineRunner`
   (header read, fit verdict at the context it would start with) — "Run" opens the usual Run
   dialog;
b. **One recommended small model** that fits this machine, from a short curated list of
   well-known GGUF repositories (:data:`RECOMMENDED`; ``settings.first_run.recommended``
   replaces it, for mirrors and tests). Each repo's best quant (:data:`QUANT_PREFERENCE`,
   Q4_K_M first) is fitted from its header only (:class:`~.hf_fit.HubFitter`) against this
   machine's GPU report, largest model first; the first whose quant fully offloads wins (on a
   machine without a GPU: the first that fits in :data:`RAM_ROOM` of the available memory).
   :meth:`FirstRunService.download_and_run` queues it on the app's
   :class:`~.downloads.DownloadManager`, waits for the verified file, plans and starts a
   llama-server with the plan's flags (registered in the server registry, so the chat offers it);
c. **No llama-server binary**: :attr:`FirstRunOffer.engine_sentence` says how to get one, and
   :meth:`FirstRunService.install_engine` builds it with :mod:`.engine_install` (what
   ``victor-gui engine install`` runs), its progress as events.

"Don't show again" is ``settings.first_run.dismissed`` (the settings service owns it); the
window offers the panel again from its menus whatever that says.

Events (``subscribe(listener) -> unsubscribe``, ``listener(event, payload)``): ``"offer"`` (the
:class:`FirstRunOffer`, or None while it is being built), ``"progress"`` (a sentence: download
start, verification, start of the server), ``"download"`` (``(bytes done, bytes in all or
None)``) and ``"engine"`` (the started :class:`~.engine_runner.Engine`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from victor_gui.core.listeners import Listeners
from victor_gui.core.tasks import TaskSet
from victor_gui.errors import DownloadError, EngineError, VictorGuiError
from victor_gui.services.download_jobs import DownloadEvent, DownloadJob, JobState
from victor_gui.services.downloads import DownloadManager
from victor_gui.services.engine_binary import BinarySearch
from victor_gui.services.engine_runner import Engine, EnginePlan, EngineRunner
from victor_gui.services.hf_fit import HubFitter, QuantFit
from victor_gui.services.hf_hub import HubClient, QuantFile, RepoFiles
from victor_gui.services.model_folders import LocalModel, ModelFolders, is_runnable
from victor_gui.sizing.hardware import GpuReport

log = logging.getLogger(__name__)

# Small, well-known chat models in GGUF from their publishers (or llama.cpp's own org, or a
# long-standing quantizer), smallest first. Data: ``settings.first_run.recommended`` replaces it.
RECOMMENDED: tuple[str, ...] = (
    "Qwen/Qwen3-0.6B-GGUF",
    "ggml-org/gemma-3-1b-it-GGUF",
    "bartowski/Llama-3.2-1B-Instruct-GGUF",
    "Qwen/Qwen3-1.7B-GGUF",
    "bartowski/Llama-3.2-3B-Instruct-GGUF",
    "Qwen/Qwen3-4B-GGUF",
    "ggml-org/gemma-3-4b-it-GGUF",
    "Qwen/Qwen3-8B-GGUF",
)
# The quant taken from a repo, best first: Q4_K_M is the usual size/quality balance.
QUANT_PREFERENCE: tuple[str, ...] = ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "IQ4_XS", "Q5_0", "Q6_K",
                                     "Q8_0", "BF16", "F16")
FIT_CTX = 8192  # the context a recommendation is fitted at (a comfortable chat)
RAM_ROOM = 0.5  # without a GPU, a model may take this share of the available memory
MAX_LOCAL = 12  # local models offered (headers read) at most
LIST_LIMIT = 4  # repositories listed at once
ENGINE_COMMAND = "victor-gui engine install"
# Where the engine can be built here (the Windows bundle ships its llama-server.exe instead).
CAN_BUILD_ENGINE = sys.platform != "win32"


def no_server_works(targets: Iterable[Any]) -> bool:
    """True when none of the registry's chat targets answers (the offer's condition)."""
    return not any(getattr(t, "working", False) for t in targets)


def pick_quant(repo: RepoFiles) -> QuantFile | None:
    """The repo's quant to recommend: the first of :data:`QUANT_PREFERENCE` present (complete),
    else the smallest complete model file."""
    complete = [q for q in repo.quants if q.complete]
    by_name = {q.quant: q for q in complete}
    for name in QUANT_PREFERENCE:
        if name in by_name:
            return by_name[name]
    return complete[0] if complete else None


def memory_budget(report: GpuReport) -> int | None:
    """Bytes a recommended model may take: the GPUs' free memory, else :data:`RAM_ROOM` of the
    available RAM (None: unknown, then the smallest model is safest)."""
    if report.gpus:
        return sum(g.free for g in report.gpus)
    if report.ram is not None:
        return int(report.ram.available * RAM_ROOM)
    return None


def fits(fit: QuantFit, report: GpuReport) -> bool:
    """Good enough to recommend: fully on the GPUs (with a GPU), else in RAM with room."""
    if fit.fit is None:
        return False
    if report.gpus:
        return fit.fit.verdict == "full"
    budget = memory_budget(report)
    return fit.fit.verdict != "no_fit" and (budget is None or fit.fit.total.total <= budget)


@dataclass(frozen=True)
class Recommendation:
    """The model to download: ``repo_id``'s ``quant``, with its verdict at :data:`FIT_CTX`."""

    repo_id: str
    quant: QuantFile
    fit: QuantFit

    @property
    def files(self) -> list[str]:
        """What to download (every part of a split model)."""
        return self.quant.paths

    @property
    def size(self) -> int:
        """Bytes to download."""
        return self.quant.size


@dataclass(frozen=True)
class LocalChoice:
    """A GGUF on disk, planned as the Run dialog would start it (``plan`` None with ``error``)."""

    model: LocalModel
    plan: EnginePlan | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.model.path.name


@dataclass
class FirstRunOffer:
    """What the welcome panel shows (see the module doc)."""

    local: list[LocalChoice] = field(default_factory=list)
    recommendation: Recommendation | None = None
    recommendation_note: str = ""  # why there is none (offline, nothing fits), or ""
    binary: BinarySearch | None = None
    has_gpu: bool = False
    can_install: bool = False  # the engine installer is in this build

    @property
    def engine_missing(self) -> bool:
        """No llama-server to run a model with."""
        return self.binary is not None and self.binary.path is None

    @property
    def engine_sentence(self) -> str:
        """How to get a llama-server, or "" when there is one."""
        if not self.engine_missing:
            return ""
        if self.can_install:
            return ("No llama-server was found on this machine. \"Install the engine\" builds one from "
                    f"llama.cpp's sources (several minutes; the same as `{ENGINE_COMMAND}`), or set its "
                    "path in Settings.")
        return ("No llama-server was found on this machine. Install llama.cpp (its llama-server), or set "
                "its path in Settings.")


async def recommend(fitter: HubFitter, report: GpuReport, repos: Sequence[str],
                    n_ctx: int = FIT_CTX) -> tuple[Recommendation | None, str]:
    """The largest of ``repos`` whose best quant fits (see :func:`fits`), and "" — or None and
    the sentence why. Repositories are listed a few at once; headers are read largest first and
    only for quants whose file fits the memory budget, until one fits."""
    limit = asyncio.Semaphore(LIST_LIMIT)
    problems: list[str] = []

    async def listed(repo_id: str) -> RepoFiles | None:
        async with limit:
            try:
                return await fitter.hub.repo_files(repo_id)
            except VictorGuiError as exc:
                problems.append(exc.message)
                return None

    found = await asyncio.gather(*(listed(r) for r in repos))
    picks = [(repo, quant) for repo in found if repo is not None and not repo.gated
             for quant in [pick_quant(repo)] if quant is not None]
    if not picks:
        return None, problems[0] if problems else "None of the recommended repositories has a GGUF model."
    budget = memory_budget(report)
    # Largest first; with an unknown budget the smallest is the safe guess, so smallest first.
    picks.sort(key=lambda p: p[1].size, reverse=budget is not None)
    fallback: Recommendation | None = None
    # A file bigger than the budget cannot fit: its header is not even read.
    for repo, quant in [p for p in picks if budget is None or p[1].size <= budget]:
        fit = await fitter.fit_quant(repo.repo_id, quant, report, n_ctx)
        if fit.error is not None:
            problems.append(fit.error)
        elif fits(fit, report):
            return Recommendation(repo.repo_id, quant, fit), ""
        elif fallback is None and fit.fit is not None and fit.fit.verdict in ("partial", "cpu"):
            fallback = Recommendation(repo.repo_id, quant, fit)
    if fallback is None and report.gpus:  # a GPU smaller than every file: the smallest, partly on it
        repo, quant = min(picks, key=lambda p: p[1].size)
        fit = await fitter.fit_quant(repo.repo_id, quant, report, n_ctx)
        if fit.fit is not None and fit.fit.verdict != "no_fit":
            fallback = Recommendation(repo.repo_id, quant, fit)
    if fallback is not None:
        return fallback, ""
    return None, problems[0] if problems else "None of the recommended models fits this machine."


async def plan_local(runner: EngineRunner, models: Iterable[LocalModel],
                     limit: int = MAX_LOCAL) -> list[LocalChoice]:
    """Each model file (not vision projectors, not the later parts of a split model) planned by
    ``runner``, ``limit`` at most, largest first."""
    chosen = [m for m in models if is_runnable(m.path)]
    chosen.sort(key=lambda m: m.size, reverse=True)

    async def one(model: LocalModel) -> LocalChoice:
        try:
            return LocalChoice(model, await runner.plan(model.path))
        except EngineError as exc:
            return LocalChoice(model, error=exc.message)

    return list(await asyncio.gather(*(one(m) for m in chosen[:limit])))


class FirstRunService:
    """Builds the offer and runs its actions for one window (see the module doc).

    ``registry`` is the app's ServerRegistry (its targets say whether any server works; its GPU
    report is the machine's; None: no registry, the runner's report), ``runner`` the engines'
    owner, ``downloads`` the downloads' owner, ``settings`` the SettingsService. ``hub`` /
    ``fitter`` default to the Hub of ``HF_ENDPOINT``."""

    def __init__(self, *, registry: Any, runner: EngineRunner, downloads: DownloadManager,
                 settings: Any = None, hub: HubClient | None = None, fitter: HubFitter | None = None) -> None:
        self.registry = registry
        self.runner = runner
        self.downloads = downloads
        self.settings = settings
        self.hub = hub or (fitter.hub if fitter is not None else HubClient())
        self.fitter = fitter or HubFitter(self.hub)
        self.offer: FirstRunOffer | None = None
        self.busy = False
        self._listeners: Listeners[[str, Any]] = Listeners(log, "first-run listener failed")
        self._tasks = TaskSet("first run")

    def subscribe(self, listener: Callable[[str, Any], None]) -> Callable[[], None]:
        """Call ``listener(event, payload)`` on every change; returns the unsubscribe function."""
        return self._listeners.add(listener)

    def _emit(self, event: str, payload: Any = None) -> None:
        self._listeners.notify(event, payload)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` as a task this service keeps (cancelled at close); for the panel's buttons."""
        return self._tasks.spawn(coro)

    # -- settings ---------------------------------------------------------------------------------

    def _first_run_settings(self) -> Any:
        current = getattr(self.settings, "settings", None)
        return getattr(current, "first_run", None)

    @property
    def dismissed(self) -> bool:
        """The user chose "Don't show again"."""
        return bool(getattr(self._first_run_settings(), "dismissed", False))

    async def set_dismissed(self, value: bool = True) -> None:
        """Persist "Don't show again" (or undo it)."""
        current = self._first_run_settings()
        if self.settings is None or current is None:
            return
        await self.settings.update(first_run=current.model_copy(update={"dismissed": value}))

    def recommended_repos(self) -> tuple[str, ...]:
        """The curated list, or the settings' replacement."""
        override = getattr(self._first_run_settings(), "recommended", None)
        return tuple(override) if override else RECOMMENDED

    # -- the offer --------------------------------------------------------------------------------

    async def needed(self, limit_s: float = 10.0) -> bool:
        """After the first health round: True when no endpoint works (and not dismissed)."""
        if self.dismissed:
            return False
        await self.registry.first_cycle(limit_s)
        return no_server_works(self.registry.targets())

    async def hardware(self, limit_s: float = 15.0) -> GpuReport:
        """The registry's GPU report (detected at its start; awaited here while that runs)."""
        registry = self.registry
        if getattr(registry, "gpu_report", None) is None and getattr(registry, "hardware_busy", False):
            ready = asyncio.Event()
            unsubscribe = registry.subscribe(
                lambda event, _payload: ready.set() if event == "hardware" else None)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ready.wait(), limit_s)
            finally:
                unsubscribe()
        return self.runner.gpu_report()

    async def build(self) -> FirstRunOffer:
        """Scan the disk, list and fit the recommendations, look for the binary; emits ``offer``."""
        self._emit("offer", None)
        report = await self.hardware()
        folders = ModelFolders(self.settings)
        binary, models, (rec, note) = await asyncio.gather(
            self.runner.find_binary(), folders.scan(),
            recommend(self.fitter, report, self.recommended_repos()))
        offer = FirstRunOffer(await plan_local(self.runner, models), rec, note, binary, bool(report.gpus),
                              CAN_BUILD_ENGINE)
        self.offer = offer
        self._emit("offer", offer)
        return offer

    # -- actions ----------------------------------------------------------------------------------

    async def download_and_run(self, rec: Recommendation) -> Engine:
        """Download ``rec`` (verified), then start a llama-server for it with the plan's flags.
        Returns the running Engine; raises :class:`DownloadError` or :class:`EngineError` with
        the sentence to show. Progress arrives as ``progress`` events."""
        self.busy = True
        try:
            path = await self._download(rec)
            self._emit("progress", f"Starting llama-server with {path.name}…")
            plan = await self.runner.plan(path)
            engine = await self.runner.start(plan)
        finally:
            self.busy = False
        self._emit("progress", f"Running at {engine.url}.")
        self._emit("engine", engine)
        return engine

    def adopt(self, engine: Engine) -> None:
        """An engine started for the offer elsewhere (a local model's Run dialog): announced
        like a download's, so the chat switches to it."""
        self._emit("engine", engine)

    async def _download(self, rec: Recommendation) -> Path:
        jobs: list[DownloadJob] = await self.downloads.enqueue(rec.repo_id, rec.files)
        ids = {job.id for job in jobs}
        total = sum(job.size or 0 for job in jobs) or None
        done: dict[str, int] = {job.id: job.done_bytes for job in jobs}

        def progress(event: DownloadEvent) -> None:
            if event.job.id not in ids:
                return
            done[event.job.id] = event.job.done_bytes
            if event.job.state == JobState.VERIFYING:
                self._emit("progress", f"Checking the sha256 of {event.job.name}…")
            self._emit("download", (sum(done.values()), total))

        self._emit("progress", f"Downloading {rec.quant.name}…")
        unsubscribe = self.downloads.subscribe(progress)
        try:
            finals = [await self.downloads.wait(job.id) for job in jobs]
        except KeyError:  # cancelled (in the downloads panel): the job is gone
            raise DownloadError(f"The download of {rec.quant.name} was cancelled.",
                                reason="cancelled") from None
        finally:
            unsubscribe()
        for job in finals:
            if job.state not in (JobState.DONE, JobState.PRESENT):
                raise DownloadError(job.message or f"The download of {job.name} stopped ({job.state}).",
                                    reason=job.reason or "stopped")
        return Path(finals[0].dest)

    async def install_engine(self, **options: Any) -> Path | None:
        """Build and install llama-server (:func:`~.engine_install.install_engine`; ``options``
        go to it: a local ``sdist``, ``opt``, ``native``, ``jobs``), each step as a ``progress``
        sentence; then build the offer again (the binary is found now). Returns the binary.
        Raises :class:`~victor_gui.errors.EngineInstallError` (its sentence) when it cannot."""
        from victor_gui.services.engine_install import install_engine

        self.busy = True
        path: Path | None = None
        try:
            async for step in install_engine(**options):
                path = step.path or path
                share = f" ({step.percent:.0f} %)" if step.percent is not None else ""
                self._emit("progress", f"Installing the engine, {step.phase}{share}: {step.line}")
        finally:
            self.busy = False
        await self.build()
        return path

    async def close(self) -> None:
        """Cancel pending work and close the Hub header client."""
        self._listeners.clear()
        await self._tasks.aclose()
        await self.fitter.aclose()


__all__ = ["CAN_BUILD_ENGINE", "ENGINE_COMMAND", "FIT_CTX", "QUANT_PREFERENCE", "RAM_ROOM", "RECOMMENDED",
           "FirstRunOffer", "FirstRunService", "LocalChoice", "Recommendation", "fits", "memory_budget",
           "no_server_works", "pick_quant", "plan_local", "recommend"]
