"""The context Ollama is asked to run a model with (``options.num_ctx``), chosen from the fit plan,
and the context it really loaded (Qt-free).

Ollama runs a model at its own default context unless a request sends ``options.num_ctx``, and
past that context it drops the oldest part of the prompt without a word. The chat therefore
sends a ``num_ctx`` of its own, :func:`choose_num_ctx`:

* with a GPU: the largest context at which the model still fully offloads (the estimator's
  ``max_full_offload_ctx``), capped by the trained context and never below Ollama's old default
  (4,096, or the trained context when smaller): a model that only partly fits would run at that
  default anyway;
* without a GPU: 8,192 (capped by the trained context), the model manager's default;
* the chat's own context length, when set, wins (it already reaches the wire as ``num_ctx``).

After a load, :func:`loaded_context` reads back what runs (``/api/ps`` ``context_length``):
Ollama caps ``num_ctx`` at the trained context, and another client may have loaded the model
differently. The chat trims to the smaller of the two and says so in its trim note.

:class:`ContextPlanner` owns the machine's GPU report the plans are made for (detected once,
or given) and the plans per endpoint and model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from victor_gui.errors import GGUFError, ProviderError
from victor_gui.services.context_window import OLLAMA_DEFAULT_CONTEXT
from victor_gui.sizing.architecture import ModelArchitecture, from_ollama_show
from victor_gui.sizing.fit import FitOptions, FitResult, estimate_fit, max_full_offload_ctx
from victor_gui.sizing.hardware import GpuReport

log = logging.getLogger(__name__)

CPU_CONTEXT = 8192  # without a GPU (the model manager's default context)


@dataclass(frozen=True)
class NumCtxPlan:
    """The ``num_ctx`` chosen for a model on this machine, and why."""

    num_ctx: int
    trained: int | None
    full_offload: int | None  # the largest fully offloading context (None: no GPU / never full)
    reason: str
    architecture: ModelArchitecture | None = None

    def estimate(self, report: GpuReport, options: FitOptions | None = None) -> FitResult | None:
        """The fit estimate at the planned context (for "estimated vs measured" after load)."""
        if self.architecture is None:
            return None
        opts = replace(options or FitOptions(), n_ctx=self.num_ctx)
        return estimate_fit(self.architecture, report.gpus, report.ram, opts)


def choose_num_ctx(arch: ModelArchitecture, report: GpuReport,
                   options: FitOptions | None = None) -> NumCtxPlan:
    """The ``num_ctx`` to send for ``arch`` on this machine (see the module doc)."""
    opts = options or FitOptions()
    trained = arch.n_ctx_train or None
    floor = min(OLLAMA_DEFAULT_CONTEXT, trained) if trained else OLLAMA_DEFAULT_CONTEXT
    if not report.gpus:
        num = min(CPU_CONTEXT, trained) if trained else CPU_CONTEXT
        return NumCtxPlan(num, trained, None, "no GPU: the default CPU context", arch)
    best = max_full_offload_ctx(arch, report.gpus, opts, limit=trained)
    if best is None or best < floor:
        return NumCtxPlan(floor, trained, best, "does not fully offload: Ollama's default context", arch)
    if trained and best >= trained:
        return NumCtxPlan(trained, trained, best, "the whole trained context fits on the GPU", arch)
    return NumCtxPlan(best, trained, best, "the largest context that fits fully on the GPU", arch)


def _same(listed: str, wanted: str) -> bool:
    return listed == wanted or listed.removesuffix(":latest") == wanted.removesuffix(":latest")


async def loaded_context(provider: Any, model: str) -> int | None:
    """The context Ollama runs ``model`` with now (``/api/ps``), None when not loaded/unknown."""
    try:
        listed = await provider.list_models()
    except (ProviderError, NotImplementedError):
        return None
    for info in listed:
        if _same(info.id, model):
            value = (info.model_extra or {}).get("loaded_context_length")
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
            return None
    return None


class ContextPlanner:
    """``num_ctx`` plans for Ollama models on this machine (see the module doc).

    ``report``: the GPUs and RAM to plan for (None: ``detector`` is awaited once, at the first
    plan). ``options``: the estimator's settings (cache types, flash attention)."""

    def __init__(self, report: GpuReport | None = None, *,
                 detector: Callable[[], Awaitable[GpuReport]] | None = None,
                 options: FitOptions | None = None) -> None:
        self._report = report
        self._detector = detector
        self.options = options or FitOptions()
        self._plans: dict[tuple[str, str], NumCtxPlan | None] = {}
        self._lock = asyncio.Lock()

    async def report(self) -> GpuReport:
        """The machine's GPU report (detected once; an empty report when detection fails)."""
        async with self._lock:
            if self._report is None:
                detector = self._detector
                if detector is None:
                    from victor_gui.sizing.gpu import detect_gpus

                    detector = detect_gpus
                try:
                    self._report = await detector()
                except Exception:  # detection fails soft: plan as without a GPU
                    log.exception("GPU detection for the Ollama context plan failed")
                    self._report = GpuReport()
            return self._report

    def set_report(self, report: GpuReport) -> None:
        """Plan for ``report`` from now on (the dashboard detected the GPUs again)."""
        self._report = report
        self._plans.clear()

    async def plan(self, provider: Any, model: str) -> NumCtxPlan | None:
        """The plan for ``model`` on an Ollama ``provider`` (None: not Ollama, or its
        ``/api/show`` does not describe the model; the chat then sends no ``num_ctx``)."""
        show = getattr(provider, "show_raw", None)
        if show is None:
            return None
        key = (str(getattr(provider, "base_url", "")), model)
        if key in self._plans:
            return self._plans[key]
        try:
            body = await show(model)
            size = next((i.size_bytes or 0 for i in await provider.list_models() if _same(i.id, model)), 0)
            arch = from_ollama_show(body, size_bytes=size)
        except (ProviderError, GGUFError) as exc:
            log.info("no num_ctx plan for %s: %s", model, exc)
            self._plans[key] = None
            return None
        plan = choose_num_ctx(arch, await self.report(), self.options)
        self._plans[key] = plan
        return plan


_default: ContextPlanner | None = None


def default_planner() -> ContextPlanner:
    """The process's planner (GPUs detected once) for sessions not given one."""
    global _default
    if _default is None:
        _default = ContextPlanner()
    return _default


__all__ = ["CPU_CONTEXT", "OLLAMA_DEFAULT_CONTEXT", "ContextPlanner", "NumCtxPlan", "choose_num_ctx",
           "default_planner", "loaded_context"]
