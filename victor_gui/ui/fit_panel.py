"""One fit estimate on screen: verdict badge, stacked bar of what goes where, the context as a
slider that steps on round values beside a box to type any value, and the estimate's wording.

Used twice by the model manager: for the selected model of a server, and for a GGUF file chosen
by hand (its own panel: a file on this machine is on no server, so Load cannot apply to it).
On a machine without a GPU it speaks of RAM and the CPU, never of "0 B on GPU" or "full
offload up to none". The safety margin kept free on each GPU is a part of its own, apart from
the backend's runtime reserve ("overhead").

The engine row switches the answer to vLLM's rule (vram.md §4): the user picks the tensor
parallel size and ``gpu_memory_utilization``, and the panel states the KV memory per GPU, the
KV token capacity and the longest single request, computed here from the model's description
(pure arithmetic, microseconds: no service round trip).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from victor_gui.sizing.architecture import ModelArchitecture
from victor_gui.sizing.fit import CTX_PAD, FitResult
from victor_gui.sizing.fit_vllm import VllmFit, VllmOptions, estimate_vllm
from victor_gui.sizing.hardware import GpuReport
from victor_gui.ui.fit_badges import BADGE, badge_text
from victor_gui.ui.widgets.stacked_bar import Segment, StackedBar, human_bytes

PART_COLORS = {"weights": "#3b6fc4", "KV cache": "#6aa84f", "compute": "#e69138",
               "overhead": "#999999", "margin": "#d9d9d9", "in RAM (CPU layers)": "#c27ba0",
               "activation": "#e69138", "non-torch": "#999999", "CUDA graphs": "#b4a7d6"}
ENGINES = ("llama.cpp, Ollama, LM Studio", "vLLM")
# The slider moves in steps of this many tokens (round figures, not 90,955); the box beside it
# takes any value.
ROUND_STEP = 1024


def fit_segments(fit: FitResult, has_gpu: bool = True) -> list[Segment]:
    """What the plan puts on the GPUs by kind, then what spills to RAM (drawn past free VRAM).
    Without a GPU: what the model needs in RAM, by kind."""
    if not has_gpu:
        host = fit.total
        return [Segment("weights", host.weights, PART_COLORS["weights"]),
                Segment("KV cache", host.kv, PART_COLORS["KV cache"]),
                Segment("compute", host.compute, PART_COLORS["compute"]),
                Segment("overhead", host.overhead, PART_COLORS["overhead"])]
    parts = [Segment("weights", fit.gpu.weights, PART_COLORS["weights"]),
             Segment("KV cache", fit.gpu.kv, PART_COLORS["KV cache"]),
             Segment("compute", fit.gpu.compute, PART_COLORS["compute"]),
             Segment("overhead", fit.gpu.overhead, PART_COLORS["overhead"]),
             Segment("margin", fit.gpu.margin, PART_COLORS["margin"])]
    spill = fit.host.weights + fit.host.kv
    if fit.verdict != "full" and spill:
        parts.append(Segment("in RAM (CPU layers)", spill, PART_COLORS["in RAM (CPU layers)"]))
    return parts


def context_text(fit: FitResult, has_gpu: bool) -> str:
    """What the context means for this machine, in words."""
    if not has_gpu:
        return "no GPU: runs on the CPU from RAM"
    best = fit.max_full_offload_ctx
    if best is None:
        return "does not fit fully on the GPU at any context"
    return f"full offload up to {best:,}"


def estimate_words(fit: FitResult, has_gpu: bool) -> str:
    """``estimated at 8,192: 2.1 GiB on GPU, 2.9 GiB in all`` (without a GPU: ``… in RAM``)."""
    if not has_gpu:
        return f"estimated at {fit.n_ctx:,}: {human_bytes(fit.total.total)} in RAM"
    gpu, total = human_bytes(fit.gpu.total), human_bytes(fit.total.total)
    return f"estimated at {fit.n_ctx:,}: {gpu} on GPU, {total} in all"


def vllm_segments(fit: VllmFit) -> list[Segment]:
    """One GPU's share under vLLM: what it holds before the KV cache, then the KV cache."""
    return [Segment("weights", fit.weights, PART_COLORS["weights"]),
            Segment("activation", fit.activation, PART_COLORS["activation"]),
            Segment("non-torch", fit.non_torch, PART_COLORS["non-torch"]),
            Segment("CUDA graphs", fit.cuda_graphs, PART_COLORS["CUDA graphs"]),
            Segment("KV cache", fit.kv_available, PART_COLORS["KV cache"])]


def vllm_words(fit: VllmFit) -> str:
    """``KV cache 8.1 GiB per GPU: 178,880 tokens; longest request 178,880 tokens``."""
    return (f"KV cache {human_bytes(fit.kv_available)} per GPU: {fit.kv_tokens:,} tokens; "
            f"longest request {fit.max_model_len:,} tokens")


def snap(value: int) -> int:
    """``value`` on the slider's round steps (never below the smallest cache llama.cpp makes)."""
    return max(CTX_PAD, round(value / ROUND_STEP) * ROUND_STEP)


def context_controls() -> tuple[QSlider, QSpinBox]:
    """The context slider (round steps) and the box beside it that takes any value."""
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setAccessibleName("Context length")
    slider.setSingleStep(ROUND_STEP)
    slider.setPageStep(8 * ROUND_STEP)
    spin = QSpinBox()
    spin.setAccessibleName("Context length in tokens")
    spin.setSingleStep(ROUND_STEP)
    spin.setGroupSeparatorShown(True)
    spin.setKeyboardTracking(False)  # one estimate when typing ends, not per digit
    spin.setSuffix(" tokens")
    return slider, spin


class FitPanel(QGroupBox):
    """A fit estimate and its context control. ``context_requested(n)`` asks for an estimate at
    ``n`` tokens (the owner's service recomputes, then :meth:`show_fit` again)."""

    context_requested = Signal(int)

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        v = QVBoxLayout(self)
        head = QHBoxLayout()
        self.model_title = QLabel("Choose a model")
        self.model_title.setStyleSheet("font-weight: bold;")
        self.badge = QLabel()
        self.badge.setAccessibleName("Fit verdict")
        head.addWidget(self.model_title)
        head.addStretch(1)
        head.addWidget(self.badge)
        v.addLayout(head)
        self.bar = StackedBar(name="Estimated memory against what is free")
        self.bar.setMinimumHeight(22)
        v.addWidget(self.bar)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        v.addWidget(self.legend)
        ctx_row = QHBoxLayout()
        ctx_row.addWidget(QLabel("Context"))
        self.slider, self.ctx_spin = context_controls()
        self.slider.valueChanged.connect(self._slider_moved)
        ctx_row.addWidget(self.slider, 1)
        self.ctx_spin.valueChanged.connect(self._typed)
        ctx_row.addWidget(self.ctx_spin)
        self.ctx_label = QLabel()
        self.ctx_label.setMinimumWidth(220)
        ctx_row.addWidget(self.ctx_label)
        v.addLayout(ctx_row)
        self.measured_label = QLabel()
        self.measured_label.setWordWrap(True)
        v.addWidget(self.measured_label)
        v.addLayout(self._build_engine_row())
        self.vllm_label = QLabel()
        self.vllm_label.setWordWrap(True)
        self.vllm_label.setAccessibleName("vLLM estimate")
        v.addWidget(self.vllm_label)
        self.body = v  # owners add their action rows below
        self._arch: ModelArchitecture | None = None
        self._report: GpuReport | None = None
        self._n_ctx = 0
        self._fit: FitResult | None = None
        self.vllm_fit: VllmFit | None = None
        self._sync_engine_controls()

    def _build_engine_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Engine"))
        self.engine = QComboBox()
        self.engine.setAccessibleName("Engine the estimate is for")
        self.engine.addItems(ENGINES)
        row.addWidget(self.engine)
        row.addWidget(QLabel("Tensor parallel"))
        self.tp_spin = QSpinBox()
        self.tp_spin.setAccessibleName("vLLM tensor parallel size")
        self.tp_spin.setRange(1, 64)
        row.addWidget(self.tp_spin)
        row.addWidget(QLabel("GPU memory utilization"))
        self.util_spin = QDoubleSpinBox()
        self.util_spin.setAccessibleName("vLLM gpu_memory_utilization")
        self.util_spin.setRange(0.05, 1.0)
        self.util_spin.setSingleStep(0.01)
        self.util_spin.setDecimals(2)
        self.util_spin.setValue(VllmOptions().gpu_memory_utilization)
        row.addWidget(self.util_spin)
        row.addStretch(1)
        self.engine.currentIndexChanged.connect(lambda _i: self._render())
        self.tp_spin.valueChanged.connect(lambda _v: self._render())
        self.util_spin.valueChanged.connect(lambda _v: self._render())
        self._tp_touched = False
        self.tp_spin.editingFinished.connect(self._tp_edited)
        return row

    def _tp_edited(self) -> None:
        self._tp_touched = True

    @property
    def vllm_mode(self) -> bool:
        """True when the user asked for vLLM's answer."""
        return self.engine.currentIndex() == 1

    def _sync_engine_controls(self) -> None:
        for control in (self.tp_spin, self.util_spin):
            control.setEnabled(self.vllm_mode)
        self.vllm_label.setVisible(self.vllm_mode)

    def _slider_moved(self, value: int) -> None:
        snapped = snap(value) if value < self.slider.maximum() else value
        if snapped != value:
            self.slider.blockSignals(True)
            self.slider.setValue(snapped)
            self.slider.blockSignals(False)
        self._set_spin(snapped)
        self.ctx_label.setText(f"{snapped:,} tokens …")
        self.context_requested.emit(snapped)

    def _typed(self, value: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(value)
        self.slider.blockSignals(False)
        self.ctx_label.setText(f"{value:,} tokens …")
        self.context_requested.emit(value)

    def _set_spin(self, value: int) -> None:
        self.ctx_spin.blockSignals(True)
        self.ctx_spin.setValue(value)
        self.ctx_spin.blockSignals(False)

    def show_fit(self, title: str, fit: FitResult | None, n_ctx: int, max_ctx: int, *,
               report: GpuReport | None, ready: bool, waiting_text: str = "",
               measured_text: str = "", arch: ModelArchitecture | None = None) -> None:
        """Show ``fit`` (None: ``waiting_text`` instead) at ``n_ctx`` of at most ``max_ctx``.

        ``arch`` (the model's description) lets the panel answer for vLLM when that engine is
        chosen; without it the vLLM choice says it needs the model read first."""
        self._arch, self._report, self._n_ctx, self._fit = arch, report, n_ctx, fit
        gpus = report.gpus if report is not None else []
        if gpus and not self._tp_touched:
            self.tp_spin.blockSignals(True)
            self.tp_spin.setValue(len(gpus))
            self.tp_spin.blockSignals(False)
        self.model_title.setText(title)
        top = max(CTX_PAD, max_ctx)
        for control in (self.slider, self.ctx_spin):
            control.blockSignals(True)
            control.setRange(CTX_PAD, top)
            control.setValue(n_ctx)
            control.blockSignals(False)
            control.setEnabled(ready)
        if fit is None:
            self.badge.setText("")
            self.badge.setStyleSheet("")
            self.bar.set_parts([], 0)
            self.legend.setText(waiting_text)
            self.ctx_label.setText("")
            self.measured_label.setText("")
            return
        gpus = report.gpus if report is not None else []
        has_gpu = bool(gpus)
        color, _ = BADGE[fit.verdict]
        self.badge.setText(badge_text(fit, has_gpu))
        self.badge.setStyleSheet(f"background: {color}; color: white; border-radius: 4px; padding: 3px 8px; "
                                 "font-weight: bold;")
        segments = fit_segments(fit, has_gpu)
        if has_gpu:
            free = sum(d.free for d in gpus)
            self.bar.set_parts(segments, free, "free VRAM")
            tail = f" &nbsp;|&nbsp; <b>free VRAM {human_bytes(free)}</b>"
        else:
            ram = fit.ram_available
            self.bar.set_parts(segments, ram, "free RAM")
            tail = f" &nbsp;|&nbsp; <b>free RAM {human_bytes(ram)}</b> (no GPU found)"
        legend = " ".join(f"<span style='color:{seg.color}'>■</span> {seg.label} {human_bytes(seg.value)}"
                          for seg in segments if seg.value or has_gpu)
        self.legend.setText(legend + tail)
        self.ctx_label.setText(context_text(fit, has_gpu))
        self.measured_label.setText(measured_text)
        self._render_vllm()

    def _render(self) -> None:
        """Redraw for a changed engine choice: the llama.cpp answer comes back as it was given."""
        self._sync_engine_controls()
        if self.vllm_mode:
            self._render_vllm()
        elif self._fit is not None:
            self._llama_bar(self._fit)
            self.vllm_label.setText("")

    def _llama_bar(self, fit: FitResult) -> None:
        gpus = self._report.gpus if self._report is not None else []
        color, _ = BADGE[fit.verdict]
        self._set_badge(badge_text(fit, bool(gpus)), color)
        segments = fit_segments(fit, bool(gpus))
        self.bar.set_parts(segments, sum(d.free for d in gpus) if gpus else fit.ram_available,
                           "free VRAM" if gpus else "free RAM")

    def _set_badge(self, text: str, color: str) -> None:
        self.badge.setText(text)
        self.badge.setStyleSheet(f"background: {color}; color: white; border-radius: 4px; padding: 3px 8px; "
                                 "font-weight: bold;")

    def _render_vllm(self) -> None:
        """vLLM's answer for one GPU of the tensor-parallel group, shown when vLLM is chosen."""
        self._sync_engine_controls()
        self.vllm_fit = None
        if not self.vllm_mode:
            return
        gpus = self._report.gpus if self._report is not None else []
        if self._arch is None or not gpus:
            self.vllm_label.setText("vLLM needs a GPU" if self._arch is not None
                                    else "vLLM: waiting for the model's description")
            return
        tp = self.tp_spin.value()
        ranks = gpus[:tp]
        total, free = min(g.total for g in ranks), min(g.free for g in ranks)
        opts = VllmOptions(max_model_len=max(self._n_ctx, 1), tensor_parallel_size=tp,
                           gpu_memory_utilization=round(self.util_spin.value(), 2))
        fit = estimate_vllm(self._arch, total, free, opts)
        self.vllm_fit = fit
        self._set_badge("Fits in vLLM" if fit.fits else "Won't fit in vLLM",
                        BADGE["full" if fit.fits else "no_fit"][0])
        segments = vllm_segments(fit)
        self.bar.set_parts(segments, fit.pool, "vLLM pool")
        legend = " ".join(f"<span style='color:{seg.color}'>■</span> {seg.label} {human_bytes(seg.value)}"
                          for seg in segments)
        self.legend.setText(legend + f" &nbsp;|&nbsp; <b>pool {human_bytes(fit.pool)} per GPU</b>")
        extra = "" if tp <= len(gpus) else f" (only {len(gpus)} GPU found: figures for one of {tp} alike)"
        verdict = "" if fit.fits else f" — {fit.reason}"
        self.vllm_label.setText(vllm_words(fit) + extra + verdict)
