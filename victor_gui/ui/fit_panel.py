"""One fit estimate on screen: verdict badge, stacked bar of what goes where, the context as a
slider that steps on round values beside a box to type any value, and the estimate's wording.

Used twice by the model manager: for the selected model of a server, and for a GGUF file chosen
by hand (its own panel: a file on this machine is on no server, so Load cannot apply to it).
On a machine without a GPU it speaks of RAM and the CPU, never of "0 B on GPU" or "full
offload up to none".
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QSlider, QSpinBox, QVBoxLayout, QWidget

from victor_gui.sizing.fit import CTX_PAD, FitResult
from victor_gui.sizing.hardware import GpuReport
from victor_gui.ui.widgets.stacked_bar import Segment, StackedBar, human_bytes

BADGE = {  # verdict -> (colour, words)
    "full": ("#187a33", "Full GPU offload"),  # white on it ≥ 4.5:1, as the dashboard badges
    "partial": ("#9a5b00", "Partial offload"),
    "cpu": ("#44546a", "CPU only"),
    "no_fit": ("#b00020", "Won't fit"),
}
PART_COLORS = {"weights": "#3b6fc4", "KV cache": "#6aa84f", "compute": "#e69138",
               "overhead": "#999999", "in RAM (CPU layers)": "#c27ba0"}
# The slider moves in steps of this many tokens (round figures, not 90,955); the box beside it
# takes any value.
ROUND_STEP = 1024


def badge_text(fit: FitResult, has_gpu: bool = True) -> str:
    """Full / partial N of M / CPU only / won't fit."""
    words = BADGE[fit.verdict][1]
    if fit.verdict == "partial":
        return f"{words}: {fit.n_gpu_layers} of {fit.n_layers_total} layers on GPU"
    if fit.verdict == "cpu" and not has_gpu:
        return "CPU only (no GPU found)"
    return words


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
             Segment("overhead", fit.gpu.overhead, PART_COLORS["overhead"])]
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
        self.body = v  # owners add their action rows below

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
               measured_text: str = "") -> None:
        """Show ``fit`` (None: ``waiting_text`` instead) at ``n_ctx`` of at most ``max_ctx``."""
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
