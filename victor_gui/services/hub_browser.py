"""The Hugging Face browser's state (Qt-free): search results, the open repository's quants and
their fit verdicts at the chosen context, and the sentence to show.

:class:`HubBrowserService` owns all of it; the window calls methods and re-renders on events
(``subscribe(callback) -> unsubscribe``; callbacks get ``(event, payload)``): ``"results"``,
``"repo"`` (a repository opened, or None), ``"fits"`` (the quants' :class:`QuantFit` list),
``"busy"`` (a short word or None) and ``"message"`` (an error's or outcome's sentence).
A context change re-plans the cached headers after ``debounce_s`` (no request).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from victor_gui.core.listeners import Listeners
from victor_gui.core.tasks import TaskSet
from victor_gui.errors import VictorGuiError
from victor_gui.services.hf_fit import HubFitter, QuantFit
from victor_gui.services.hf_hub import HubClient, RepoFiles, RepoSummary, Sort
from victor_gui.sizing.fit import CTX_PAD, FitOptions
from victor_gui.sizing.gpu import detect_gpus
from victor_gui.sizing.hardware import GpuReport

log = logging.getLogger(__name__)

DEFAULT_CTX = 8192
MAX_CTX = 131072


class HubBrowserService:
    """Search → repository → quants with a fit verdict each, for one window."""

    def __init__(self, hub: HubClient | None = None, *, gpu_report: GpuReport | None = None,
                 gpu_detector: Callable[[], Awaitable[GpuReport]] | None = detect_gpus,
                 options: FitOptions | None = None, debounce_s: float = 0.05,
                 fitter: HubFitter | None = None) -> None:
        self.hub = hub or HubClient()
        self.fitter = fitter or HubFitter(self.hub)
        self.gpu_report = gpu_report
        self._gpu_detector = gpu_detector if gpu_report is None else None
        self.options = options or FitOptions()
        self.debounce_s = debounce_s
        self.results: list[RepoSummary] = []
        self.repo: RepoFiles | None = None
        self.fits: list[QuantFit] = []
        self.n_ctx = DEFAULT_CTX
        self.busy: str | None = None
        self.message = ""
        self._listeners: Listeners[[str, Any]] = Listeners(log, "hub browser listener failed")
        self._tasks = TaskSet("hub browser")
        self._refit: asyncio.TimerHandle | None = None
        self._generation = 0  # a repo opened later wins over a slower earlier one

    # -- observers ------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[str, Any], None]) -> Callable[[], None]:
        """Call ``callback(event, payload)`` on every change; returns the unsubscribe function."""
        return self._listeners.add(callback)

    def _emit(self, event: str, payload: Any = None) -> None:
        self._listeners.notify(event, payload)

    def _say(self, text: str) -> None:
        self.message = text
        self._emit("message", text)

    def _set_busy(self, word: str | None) -> None:
        self.busy = word
        self._emit("busy", word)

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run a method of this service as a task the service keeps (and cancels at close)."""
        return self._tasks.spawn(coro)

    # -- hardware -------------------------------------------------------------------------------

    async def hardware(self) -> GpuReport:
        """This machine's GPUs and RAM (detected once, unless given)."""
        if self.gpu_report is None:
            detector = self._gpu_detector
            self.gpu_report = await detector() if detector is not None else GpuReport()
        return self.gpu_report

    def set_gpu_report(self, report: GpuReport) -> None:
        """Use another machine report (the app shares one detection); re-plans what is shown."""
        self.gpu_report = report
        self._schedule_refit(0.0)

    # -- actions --------------------------------------------------------------------------------

    async def search(self, text: str, author: str = "", sort: Sort = "downloads", limit: int = 30) -> None:
        """Search GGUF repositories; results (or the error's sentence) are emitted."""
        self._set_busy("Searching…")
        try:
            self.results = await self.hub.search(text.strip(), author=author.strip() or None, sort=sort,
                                                 limit=limit)
        except VictorGuiError as exc:
            self.results = []
            self._say(exc.message)
        else:
            self._say(f"{len(self.results)} repositories" if self.results else "No GGUF repository matches.")
        finally:
            self._set_busy(None)
        self._emit("results", self.results)

    async def open_repo(self, repo_id: str) -> None:
        """List a repository's quants, then read their headers and emit each verdict."""
        self._generation += 1
        generation = self._generation
        self.repo, self.fits = None, []
        self._emit("repo", None)
        self._set_busy("Reading the file list…")
        try:
            repo = await self.hub.repo_files(repo_id)
        except VictorGuiError as exc:
            if generation == self._generation:
                self._set_busy(None)
                self._say(exc.message)
            return
        if generation != self._generation:
            return
        self.repo = repo
        self.fits = [QuantFit(q, self.n_ctx) for q in repo.quants]
        self._emit("repo", repo)
        self._emit("fits", self.fits)
        if not repo.quants:
            self._set_busy(None)
            self._say(f"{repo_id} has no GGUF model file.")
            return
        self._set_busy("Reading GGUF headers…")
        try:
            report = await self.hardware()
            fits = await self.fitter.fit_repo(repo, report, self.n_ctx, self.options)
        except VictorGuiError as exc:  # a gated repo without access: one sentence, every row locked
            if generation == self._generation:
                self.fits = [QuantFit(q, self.n_ctx, error=exc.message) for q in repo.quants]
                self._emit("fits", self.fits)
                self._say(exc.message)
            return
        finally:
            if generation == self._generation:
                self._set_busy(None)
        if generation != self._generation:
            return
        self.fits = self.fitter.refit(fits, report, self.n_ctx, self.options) if fits and \
            fits[0].n_ctx != self.n_ctx else fits
        self._say(self._summary())
        self._emit("fits", self.fits)

    def _summary(self) -> str:
        if self.repo is None:
            return ""
        errors = [f for f in self.fits if f.error]
        text = f"{self.repo.repo_id}: {len(self.repo.quants)} quants at {self.n_ctx:,} tokens"
        if errors:
            text += f"; {len(errors)} could not be read ({errors[0].error})"
        return text + "."

    def set_context(self, n_ctx: int) -> None:
        """Re-plan every quant at ``n_ctx`` tokens once the value rests for ``debounce_s``."""
        self.n_ctx = max(CTX_PAD, min(int(n_ctx), MAX_CTX * 8))
        self._schedule_refit(self.debounce_s)

    def _schedule_refit(self, delay: float) -> None:
        if self._refit is not None:
            self._refit.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._apply_refit()
            return
        self._refit = loop.call_later(delay, self._apply_refit)

    def _apply_refit(self) -> None:
        self._refit = None
        if not self.fits or self.gpu_report is None:
            return
        self.fits = self.fitter.refit(self.fits, self.gpu_report, self.n_ctx, self.options)
        if self.busy is None and self.repo is not None:
            self._say(self._summary())
        self._emit("fits", self.fits)

    @property
    def max_context(self) -> int:
        """The slider's top: the largest trained context of the open repo's models."""
        trained = [f.arch.n_ctx_train for f in self.fits if f.arch is not None and f.arch.n_ctx_train]
        return max(trained) if trained else MAX_CTX

    async def close(self) -> None:
        """Stop pending work and close the header client."""
        if self._refit is not None:
            self._refit.cancel()
        self._listeners.clear()
        await self._tasks.aclose()
        await self.fitter.aclose()
