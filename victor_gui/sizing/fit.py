"""Will it fit? The llama.cpp-family memory estimate of vram.md §1, against free memory.

Model (per device d): weights of the layers placed on d (+ the output layer if it sits on d) +
their KV cache + a compute buffer + the runtime reserve + a safety margin ≤ free(d). Host RAM
holds token_embd, the CPU layers, their KV, the CPU compute and output buffers, and the
tokenizer. Layers are offloaded from the last block down, as ``-ngl`` does; the output layer
is offloaded last (``ngl = n_layer + 1`` means full offload).

Everything here is pure arithmetic on :class:`ModelArchitecture` and :class:`GpuDevice`: no I/O,
microseconds per evaluation, so the largest context that fits is found by binary search.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from victor_gui.sizing.architecture import ModelArchitecture
from victor_gui.sizing.ggml_types import GGML_TYPES_BY_NAME, cache_bytes_per_element
from victor_gui.sizing.hardware import GpuDevice, RamInfo

MiB = 1 << 20
CTX_PAD = 256  # llama.cpp pads the KV cache to a multiple of 256 cells (ggml-org/llama.cpp#17046)
HOST_FOOTPRINT = 150 * MiB  # gguf-parser-go --platform-footprint default (RAM side)
DEFAULT_MARGIN = 256 * MiB  # safety margin per GPU, on top of the backend's reserve (see FitOptions)

Verdict = Literal["full", "partial", "cpu", "no_fit"]
VERDICT_TEXT = {
    "full": "full GPU offload",
    "partial": "partial GPU offload",
    "cpu": "fits in RAM without GPU",
    "no_fit": "too large for this machine",
}


@dataclass(frozen=True, slots=True)
class FitOptions:
    """Engine settings the estimate depends on (llama-server flag names in comments).

    Every GPU keeps its backend's runtime reserve (CUDA context and the like, measured per
    backend: :data:`~victor_gui.sizing.hardware.BACKEND_RESERVE_MIB`; ``runtime_reserve_bytes``
    overrides it) and, apart from it, ``margin_bytes`` of safety margin, shown on its own in the
    result. A 24 GiB card that really loaded Mistral-Small-22B Q6_K at 49,152 cells with a q8_0
    cache had about 0.8 GiB left for both, so the default margin is 256 MiB, not llama.cpp's
    ``--fit-target`` of 1 GiB (which is measured after the context exists and is a target for
    its automatic sizing, not a limit of what loads).

    Several GPUs share the layers like llama.cpp's default ``--split-mode layer``: in proportion
    to each device's free memory, or to ``tensor_split`` (``-ts``, one weight per GPU in index
    order). ``main_gpu`` (``-sm none -mg N``) puts the whole model on that one GPU.
    """

    n_ctx: int = 4096  # -c: total cells across all sequences
    cache_type_k: str = "f16"  # -ctk
    cache_type_v: str = "f16"  # -ctv; quantized V needs flash attention
    flash_attention: bool = True  # -fa (on by default in current llama.cpp)
    n_ubatch: int = 512  # -ub
    n_seq: int = 1  # -np
    swa_full: bool = False  # --swa-full
    mla_v_less: bool = True  # MLA caches only K (llama.cpp since Jan 2026, #19067); False: K + V
    cpu_moe: bool = False  # --cpu-moe / -ot "exps=CPU": expert tensors stay in RAM, the rest offloads
    margin_bytes: int = DEFAULT_MARGIN
    runtime_reserve_bytes: int | None = None  # None: the backend's measured reserve per device
    tensor_split: tuple[float, ...] = ()  # -ts; empty or all zero: by free memory
    main_gpu: int | None = None  # -sm none -mg N: everything on GPU N (its GpuDevice.index)


@dataclass(slots=True)
class Breakdown:
    """Bytes by kind."""

    weights: int = 0
    kv: int = 0
    compute: int = 0
    overhead: int = 0  # the backend's runtime reserve (GPU), tokenizer and buffers (host)
    margin: int = 0  # the safety margin kept free on a GPU, apart from the reserve

    @property
    def total(self) -> int:
        return self.weights + self.kv + self.compute + self.overhead + self.margin


@dataclass(slots=True)
class DeviceUse:
    """What the plan puts on one GPU, next to what it has free."""

    device: GpuDevice
    layers: int = 0
    has_output: bool = False
    use: Breakdown = field(default_factory=Breakdown)


@dataclass(slots=True)
class Measured:
    """Figures reported after a real load (Ollama ``/api/ps`` ``size_vram``/``size``)."""

    vram_bytes: int | None = None
    total_bytes: int | None = None
    source: str = ""

    @classmethod
    def from_ollama_ps(cls, entry: Mapping[str, Any]) -> Measured:
        """From one ``/api/ps`` ``models[]`` entry (``size`` and ``size_vram`` in bytes)."""
        def num(key: str) -> int | None:
            value = entry.get(key)
            return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        return cls(vram_bytes=num("size_vram"), total_bytes=num("size"), source="ollama /api/ps")


@dataclass(slots=True)
class FitResult:
    """The estimate: verdict, per-kind breakdown, per-device plan, largest full-offload context."""

    verdict: Verdict
    n_gpu_layers: int  # like -ngl: repeating blocks on GPUs + 1 when the output layer is too
    n_layers_total: int  # n_layer + 1 (the output layer)
    n_ctx: int
    n_ctx_eff: int
    total: Breakdown  # GPU + host
    gpu: Breakdown
    host: Breakdown
    devices: list[DeviceUse]
    ram_available: int
    max_full_offload_ctx: int | None = None  # None: not even CTX_PAD cells fit on the GPUs
    warnings: list[str] = field(default_factory=list)
    measured: Measured | None = None
    tensor_split: list[float] = field(default_factory=list)  # per GPU (index order), as -ts takes
    main_gpu: int | None = None  # set: -sm none -mg N
    options: FitOptions = field(default_factory=lambda: FitOptions())

    @property
    def margin(self) -> int:
        """The safety margin kept free in all, summed over the GPUs used."""
        return self.gpu.margin

    @property
    def summary(self) -> str:
        if self.verdict == "partial":
            return f"{VERDICT_TEXT['partial']} ({self.n_gpu_layers} of {self.n_layers_total} layers)"
        return VERDICT_TEXT[self.verdict]


def _pad(n: int, to: int = CTX_PAD) -> int:
    return -(-max(n, 1) // to) * to


def _row_bytes(cache_type: str, n: int) -> int:
    """Bytes of one cache row of ``n`` elements (whole ggml blocks)."""
    t = GGML_TYPES_BY_NAME[cache_type.lower()]
    return -(-n // t.block_size) * t.type_size


def _v_type(opts: FitOptions) -> str:
    # Without flash attention a quantized V cache falls back to f16 (vram.md §1.2).
    if not opts.flash_attention and opts.cache_type_v.lower() not in ("f16", "f32", "bf16"):
        return "f16"
    return opts.cache_type_v


def kv_bytes_per_layer(arch: ModelArchitecture, opts: FitOptions, n_ctx: int) -> list[int]:
    """KV (or recurrent state) bytes of every layer at ``n_ctx`` total cells."""
    cache_bytes_per_element(opts.cache_type_k)  # validates names
    cache_bytes_per_element(opts.cache_type_v)
    v_type = _v_type(opts)
    cells = _pad(n_ctx)
    swa_cells = min(cells, _pad(arch.sliding_window * opts.n_seq + opts.n_ubatch))
    out = []
    for il in range(arch.n_layer):
        if il < len(arch.recurrent_layers) and arch.recurrent_layers[il]:
            out.append(arch.recurrent_state_bytes * max(opts.n_seq, 1))
            continue
        h = arch.kv_heads(il)
        swa = (not opts.swa_full and arch.sliding_window > 0 and il < len(arch.swa_layers)
               and arch.swa_layers[il])
        k_dim = arch.head_dim_k_swa if swa else arch.head_dim_k
        if arch.mla:  # the latent: K = kv_lora_rank + rope dim; older engines also kept a V of kv_lora_rank
            v_dim = 0 if opts.mla_v_less else arch.kv_lora_rank
        else:
            v_dim = arch.head_dim_v_swa if swa else arch.head_dim_v
        n = swa_cells if swa else cells
        row = _row_bytes(opts.cache_type_k, h * k_dim) + (_row_bytes(v_type, h * v_dim) if v_dim else 0)
        out.append(n * row if h else 0)
    return out


def compute_bytes(arch: ModelArchitecture, opts: FitOptions, n_ctx: int, *, with_output: bool) -> int:
    """Compute (graph) buffer of one device (vram.md §1.4), in bytes.

    KQ mask (n_kv·ub; f16 with flash attention, f32 without) + the largest phase of the graph,
    with E = n_embd, F = n_ff, Q = n_head·head_dim, all per token of the ubatch, f32:

    * attention without FA: the scores n_kv·n_head + activations 3·E + 2·Q;
    * FFN: 3·F + 4·E (less 2·E when F ≤ 2·E: ggml-alloc then reuses a freed hole for the third
      F-wide tensor) + E/4;
    * output: the logits n_vocab (only on the device holding the output layer).

    Fitted to llama-server's own reports (llama.cpp of llama-cpp-python 0.3.36; 131 runs on
    generated models: at most 8.2 % off, median 2 %) and within 5 % of published buffers
    (Mistral-7B FA off: 164 MiB at 2k, 2,144 MiB at 32k; Mistral-Small-22B FA on: 192 MiB).
    """
    ub = min(opts.n_ubatch, _pad(n_ctx))
    n_kv = _pad(n_ctx)
    elem = 2 if opts.flash_attention else 4
    mask = n_kv * ub * elem
    if arch.sliding_window and any(arch.swa_layers) and not opts.swa_full:
        mask += min(n_kv, _pad(arch.sliding_window * opts.n_seq + opts.n_ubatch)) * ub * elem
    n_head = max(arch.n_head, default=0)
    attn = 0
    if not opts.flash_attention:
        attn = n_kv * ub * n_head * 4 + ub * 4 * (3 * arch.n_embd + 2 * n_head * arch.head_dim_k)
    n_ff = max(arch.n_ff, arch.n_ff_exp * max(arch.n_expert_used, 1)) if arch.n_expert else arch.n_ff
    width = 3 * n_ff + 4 * arch.n_embd - (2 * arch.n_embd if n_ff <= 2 * arch.n_embd else 0)
    ffn = ub * 4 * width + ub * arch.n_embd
    logits = ub * arch.n_vocab * 4 if with_output else 0
    return mask + max(attn, ffn, logits)


def host_overhead(arch: ModelArchitecture, opts: FitOptions) -> int:
    """Tokenizer/metadata (gguf-parser: 5 MiB + vocab × 96 B), output buffer, platform footprint."""
    return 5 * MiB + arch.n_vocab * 96 + arch.n_vocab * max(opts.n_seq, 1) * 4 + HOST_FOOTPRINT


@dataclass(slots=True)
class _Plan:
    devices: list[DeviceUse]
    layers_on_gpu: int
    output_on_gpu: bool
    host: Breakdown
    fits: bool = True


def _devices(gpus: Sequence[GpuDevice], opts: FitOptions) -> list[GpuDevice]:
    """The GPUs llama.cpp would use, in its order (device index)."""
    ordered = sorted(gpus, key=lambda g: g.index)
    if opts.main_gpu is not None:
        return [g for g in ordered if g.index == opts.main_gpu][:1]
    return ordered


def split_points(gpus: Sequence[GpuDevice], opts: FitOptions) -> list[float]:
    """llama.cpp's cumulative split points (``llama_model::load_tensors``): ``tensor_split`` if any
    weight is set, else each device's free memory; summed, then divided by the sum."""
    weights = [float(w) for w in opts.tensor_split[: len(gpus)]]
    weights += [0.0] * (len(gpus) - len(weights))
    if not any(w > 0 for w in weights):
        weights = [float(max(g.free, 0)) for g in gpus]
    total = sum(weights)
    if total <= 0:
        weights, total = [1.0] * len(gpus), float(len(gpus))
    points, acc = [], 0.0
    for w in weights:
        acc += w
        points.append(acc / total)
    return points


def _device_of(points: Sequence[float], fraction: float) -> int:
    """``std::upper_bound(splits, fraction)``: the first device whose split point exceeds it."""
    for d, p in enumerate(points):
        if p > fraction:
            return d
    return len(points) - 1


def _plan(arch: ModelArchitecture, gpus: Sequence[GpuDevice], opts: FitOptions, n_ctx: int,
          ngl: int, kv: Sequence[int] | None = None) -> _Plan:
    """Place ``ngl`` layers as llama.cpp does (``-ngl`` offloads the last blocks; with
    ``ngl > n_layer`` the output layer too) and say whether every device has room.

    Layer ``il`` of the offloaded run goes to the device whose split point first exceeds
    ``(il - i_gpu_start) / act_gpu_layers``; the output layer counts as layer ``n_layer``, so it
    lands on the last device of the split."""
    kv = kv if kv is not None else kv_bytes_per_layer(arch, opts, n_ctx)
    experts = arch.layer_expert_bytes if opts.cpu_moe and arch.layer_expert_bytes else [0] * arch.n_layer
    devs = _devices(gpus, opts)
    ngl = max(0, min(ngl, arch.n_layer + 1)) if devs else 0
    points = split_points(devs, opts) if devs else []
    i_gpu_start = max(arch.n_layer - ngl, 0)
    act = min(ngl, arch.n_layer + 1)
    uses = [DeviceUse(dev) for dev in devs]
    for il in range(i_gpu_start, arch.n_layer):
        u = uses[_device_of(points, (il - i_gpu_start) / act)]
        u.layers += 1
        u.use.weights += arch.layer_weight_bytes[il] - experts[il]
        u.use.kv += kv[il]
    output_on_gpu = bool(devs) and arch.n_layer - i_gpu_start < act
    if output_on_gpu:
        holder = uses[_device_of(points, (arch.n_layer - i_gpu_start) / act)]
        holder.has_output = True
        holder.use.weights += arch.output_bytes
    fits = True
    for u in uses:
        if not (u.layers or u.has_output):
            continue
        u.use.compute = compute_bytes(arch, opts, n_ctx, with_output=u.has_output)
        u.use.overhead = (u.device.runtime_overhead if opts.runtime_reserve_bytes is None
                          else opts.runtime_reserve_bytes)
        u.use.margin = opts.margin_bytes
        fits = fits and u.use.total <= u.device.free
    used = [u for u in uses if u.layers or u.has_output]
    on_gpu = arch.n_layer - i_gpu_start if devs else 0
    cpu_layers = arch.n_layer - on_gpu
    host = Breakdown(weights=arch.token_embd_bytes + sum(arch.layer_weight_bytes[:cpu_layers])
                     + sum(experts[cpu_layers:]), kv=sum(kv[:cpu_layers]), overhead=host_overhead(arch, opts))
    if not output_on_gpu:
        host.weights += arch.output_bytes
    if cpu_layers or not output_on_gpu or any(experts):  # CPU layers, CPU output or CPU experts
        host.compute = compute_bytes(arch, opts, n_ctx, with_output=not output_on_gpu)
    return _Plan(used, on_gpu, output_on_gpu, host, fits)


def _is_full(plan: _Plan, arch: ModelArchitecture) -> bool:
    return plan.fits and plan.layers_on_gpu == arch.n_layer and plan.output_on_gpu


def _best_plan(arch: ModelArchitecture, gpus: Sequence[GpuDevice], opts: FitOptions, n_ctx: int) -> _Plan:
    """The most layers that fit: full offload if it fits, else a binary search on ``-ngl``.

    Fewer layers need less memory in all, but the split points move with ``-ngl``, so one device
    can gain a layer while the total shrinks: "fits" is monotonic only up to a layer or two. The
    search's answer is therefore checked against the next two counts up."""
    kv = kv_bytes_per_layer(arch, opts, n_ctx)
    full = _plan(arch, gpus, opts, n_ctx, arch.n_layer + 1, kv)
    if full.fits or not _devices(gpus, opts):
        return full
    lo, hi = 0, arch.n_layer  # ngl = lo fits (0 always does); ngl = n_layer + 1 does not
    best = _plan(arch, gpus, opts, n_ctx, 0, kv)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        plan = _plan(arch, gpus, opts, n_ctx, mid, kv)
        if plan.fits:
            lo, best = mid, plan
        else:
            hi = mid - 1
    for ngl in range(best.layers_on_gpu + 2, best.layers_on_gpu, -1):
        if ngl <= arch.n_layer:
            plan = _plan(arch, gpus, opts, n_ctx, ngl, kv)
            if plan.fits:
                return plan
    return best


def max_full_offload_ctx(arch: ModelArchitecture, gpus: Sequence[GpuDevice], opts: FitOptions,
                         limit: int | None = None) -> int | None:
    """Largest context (a multiple of 256, ≤ n_ctx_train) that still offloads fully, or None."""
    if not _devices(gpus, opts):
        return None

    def full(n_ctx: int) -> bool:
        return _is_full(_plan(arch, gpus, opts, n_ctx, arch.n_layer + 1), arch)

    hi = _pad(limit or arch.n_ctx_train or 131072)
    if not full(CTX_PAD):
        return None
    lo = 1  # in units of CTX_PAD; memory grows with context, so the predicate is monotonic
    top = hi // CTX_PAD
    if full(top * CTX_PAD):
        return min(top * CTX_PAD, limit or arch.n_ctx_train or top * CTX_PAD)
    while top - lo > 1:
        mid = (lo + top) // 2
        if full(mid * CTX_PAD):
            lo = mid
        else:
            top = mid
    return lo * CTX_PAD


def _sum(parts: Sequence[Breakdown]) -> Breakdown:
    return Breakdown(*(sum(getattr(p, f) for p in parts)
                       for f in ("weights", "kv", "compute", "overhead", "margin")))


def estimate_fit(arch: ModelArchitecture, gpus: Sequence[GpuDevice], ram: RamInfo | None,
                 opts: FitOptions | None = None) -> FitResult:
    """Plan ``arch`` at ``opts.n_ctx`` on these GPUs and RAM and say whether, and how, it fits.

    Unified-memory devices (Apple Silicon, APUs) share RAM: what is placed on them is also
    counted against RAM (Apple rule of thumb, vram.md §1.6/§7).
    """
    opts = opts or FitOptions()
    plan = _best_plan(arch, gpus, opts, opts.n_ctx)
    gpu = _sum([u.use for u in plan.devices])
    host = plan.host
    ram_available = ram.available if ram else 0
    ram_need = host.total + sum(u.use.total for u in plan.devices if u.device.unified)
    if ram is not None and ram_need > ram_available:
        verdict: Verdict = "no_fit"
    elif _is_full(plan, arch):
        verdict = "full"
    elif plan.layers_on_gpu or plan.output_on_gpu:
        verdict = "partial"
    else:
        verdict = "cpu"
    n_gpu_layers = plan.layers_on_gpu + (1 if plan.output_on_gpu else 0)
    warnings = []
    if not arch.weights_exact:
        warnings.append("no tensor table: weights spread evenly from the file size")
    for u in plan.devices:
        if u.device.vendor == "nvidia" and u.use.total > 0.95 * u.device.total:
            warnings.append(f"{u.device.name}: plan uses over 95% of VRAM; Windows drivers may spill to "
                            "shared memory (slow) instead of failing")
    if ram is None:
        warnings.append("system RAM unknown: host side not checked")
    return FitResult(
        verdict=verdict, n_gpu_layers=n_gpu_layers, n_layers_total=arch.n_layer + 1, n_ctx=opts.n_ctx,
        n_ctx_eff=_pad(opts.n_ctx), total=_sum([gpu, host]), gpu=gpu, host=host, devices=plan.devices,
        ram_available=ram_available, max_full_offload_ctx=max_full_offload_ctx(arch, gpus, opts),
        warnings=warnings, tensor_split=_split_weights(gpus, opts, plan), main_gpu=opts.main_gpu,
        options=opts,
    )


def _split_weights(gpus: Sequence[GpuDevice], opts: FitOptions, plan: _Plan) -> list[float]:
    """The ``-ts`` a server should get to reproduce the plan: the layers per GPU (index order)
    when several GPUs are used, else empty (nothing to split)."""
    devs = _devices(gpus, opts)
    if len(devs) < 2:
        return []
    by_index = {u.device.index: u.layers + (1 if u.has_output else 0) for u in plan.devices}
    return [float(by_index.get(g.index, 0)) for g in devs]
