"""vLLM's memory rule (vram.md §4): weights + activation peak + KV for one ``max_model_len``
request must fit in ``gpu_memory_utilization × total``, and that pool must be free at start-up.

vLLM reserves the whole pool whatever the model size, so "fits" is about the pool, not about
free memory after loading (§8.9). Per GPU (weights and KV heads divided by tensor parallelism):

    KV available = pool − weights − activation peak − non-torch memory − CUDA graphs

and from it the KV token capacity ("GPU KV cache size: N tokens": whole blocks of
``block_size`` tokens over every attention layer) and the largest ``max_model_len`` one request
can have (vLLM's ``estimate_max_model_len``), neither capped by the model's trained length.

Checked against published logs: Llama-3-8B on an H100 (vllm-project/vllm#10511: 53.29 GiB
available at TP 1) and Qwen3-235B-A22B-FP8 at TP 4 on H100 80 GB (vllm-project/vllm#21348:
"Available KV cache memory: 8.11 GiB", "GPU KV cache size: 178,880 tokens").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from victor_gui.sizing.architecture import ModelArchitecture

MiB = 1 << 20
GiB = 1 << 30
# vLLM's defaults grow on big GPUs (engine/arg_utils.py): ≥ 70 GiB and not an A100 → 8,192
# batched tokens and 1,024 sequences for the API server; otherwise 2,048 and 256.
BIG_GPU = 70 * GiB
# Memory outside torch's allocator (CUDA context, cuBLAS workspaces, NCCL and custom all-reduce
# buffers) per GPU, as vLLM's profiler logged it on H100s: 1.79 GiB at TP 1 and 3.58 GiB at
# TP 2 (vllm-project/vllm#10511). Taken as 1.79 GiB per TP rank: at TP 4 that gives
# Qwen3-235B-FP8 7.89 GiB of KV where vLLM logged 8.11 (vllm-project/vllm#21348). Eager mode
# measured 0.13-0.20 GiB (#12126, #14447): set ``non_torch_bytes`` for such setups.
NON_TORCH_PER_RANK = 1833 * MiB  # 1.79 GiB
KV_DTYPE_BYTES = {"auto": 2, "bfloat16": 2, "float16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}


@dataclass(frozen=True, slots=True)
class VllmOptions:
    """vLLM engine arguments the estimate depends on (names as on the command line)."""

    max_model_len: int = 8192
    gpu_memory_utilization: float = 0.9
    kv_cache_dtype: str = "auto"
    block_size: int = 16
    tensor_parallel_size: int = 1
    max_num_batched_tokens: int | None = None  # profiling batch; None: 8,192 on ≥ 70 GiB GPUs, else 2,048
    max_num_seqs: int | None = None  # None: 1,024 on ≥ 70 GiB GPUs, else 256
    non_torch_bytes: int | None = None  # None: NON_TORCH_PER_RANK × tensor_parallel_size
    cuda_graph_bytes: int = 0  # set to reserve CUDA graphs (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS)

    def resolved(self, gpu_total: int) -> VllmOptions:
        """These options with vLLM's GPU-size-dependent defaults filled in."""
        big = gpu_total >= BIG_GPU
        tp = max(self.tensor_parallel_size, 1)
        return replace(
            self, tensor_parallel_size=tp,
            max_num_batched_tokens=self.max_num_batched_tokens or (8192 if big else 2048),
            max_num_seqs=self.max_num_seqs or (1024 if big else 256),
            non_torch_bytes=NON_TORCH_PER_RANK * tp if self.non_torch_bytes is None else self.non_torch_bytes)


@dataclass(slots=True)
class VllmFit:
    """Per-GPU figures in bytes and the verdict."""

    fits: bool
    reason: str
    pool: int
    weights: int
    activation: int
    non_torch: int
    kv_available: int
    kv_needed: int
    max_model_len: int  # largest length whose KV fits in kv_available (0: none), not capped
    kv_tokens: int = 0  # "GPU KV cache size": tokens the pool holds (whole blocks, all layers)
    cuda_graphs: int = 0
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9

    @property
    def max_concurrency(self) -> float:
        """vLLM's "Maximum concurrency for N tokens per request" at ``max_model_len`` = kv_needed."""
        return self.kv_available / self.kv_needed if self.kv_needed else 0.0


def _kv_per_token(arch: ModelArchitecture, opts: VllmOptions, layer: int) -> int:
    dtype = KV_DTYPE_BYTES.get(opts.kv_cache_dtype, 2)
    if arch.mla:  # the latent is cached once and replicated across TP ranks
        return (arch.kv_lora_rank + arch.qk_rope_head_dim) * dtype
    heads = arch.kv_heads(layer)
    per_rank = max(1, heads // max(opts.tensor_parallel_size, 1)) if heads else 0
    return per_rank * (arch.head_dim_k + arch.head_dim_v) * dtype


def kv_bytes_for_len(arch: ModelArchitecture, opts: VllmOptions, length: int) -> int:
    """KV bytes one request of ``length`` tokens holds, per GPU (whole blocks per layer)."""
    blk = opts.block_size
    batched = opts.max_num_batched_tokens or 2048
    total = 0
    for il in range(arch.n_layer):
        if il < len(arch.recurrent_layers) and arch.recurrent_layers[il]:
            total += arch.recurrent_state_bytes  # one fixed state page per sequence
            continue
        tokens = length
        if arch.sliding_window and il < len(arch.swa_layers) and arch.swa_layers[il]:
            tokens = min(arch.sliding_window - 1 + batched, length) + blk
        total += -(-tokens // blk) * blk * _kv_per_token(arch, opts, il)
    return total


def kv_token_capacity(arch: ModelArchitecture, opts: VllmOptions, available: int) -> int:
    """vLLM's "GPU KV cache size" in tokens: blocks = available ÷ (one block in every attention
    layer), times ``block_size`` (``kv_cache_utils``: integer division, uniform page size)."""
    per_block = sum(opts.block_size * _kv_per_token(arch, opts, il) for il in range(arch.n_layer)
                    if not (il < len(arch.recurrent_layers) and arch.recurrent_layers[il]))
    if per_block <= 0 or available <= 0:
        return 0
    return available // per_block * opts.block_size


def activation_bytes(arch: ModelArchitecture, opts: VllmOptions) -> int:
    """Rough torch activation peak of the profiling run (bf16 hidden states, f32 logits)."""
    width = max(arch.n_ff, arch.n_ff_exp * max(arch.n_expert_used, 1))
    batched = opts.max_num_batched_tokens or 2048
    hidden = batched * (4 * arch.n_embd + 2 * width) * 2
    logits = min(opts.max_num_seqs or 256, batched) * arch.n_vocab * 4
    return hidden + logits


def _longest(arch: ModelArchitecture, opts: VllmOptions, available: int) -> int:
    """Largest length whose KV fits in ``available``: a doubling search, then bisection, so the
    answer is the memory's, not capped by max_model_len or the trained context."""
    if available <= 0 or kv_bytes_for_len(arch, opts, 1) > available:
        return 0
    hi = 1
    while kv_bytes_for_len(arch, opts, hi * 2) <= available:
        hi *= 2
        if hi >= 1 << 40:  # attention-free model: state only, any length fits
            return hi
    lo, hi = hi, hi * 2 - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if kv_bytes_for_len(arch, opts, mid) <= available:
            lo = mid
        else:
            hi = mid - 1
    return lo


def estimate_vllm(arch: ModelArchitecture, gpu_total: int, gpu_free: int,
                  opts: VllmOptions | None = None) -> VllmFit:
    """Would vLLM start this model with these options on GPUs of ``gpu_total``/``gpu_free``
    each (tensor parallel ranks are alike)? Figures are per GPU."""
    opts = (opts or VllmOptions()).resolved(gpu_total)
    tp = opts.tensor_parallel_size
    pool = int(-(-gpu_total * opts.gpu_memory_utilization // 1))
    # vLLM keeps one embedding matrix when embeddings are tied; the GGUF-style duplicate is not loaded.
    dup = arch.token_embd_bytes if arch.tied_embeddings else 0
    weights = (arch.weight_bytes - dup) // tp
    act = activation_bytes(arch, opts)
    non_torch = opts.non_torch_bytes or 0
    available = pool - weights - act - non_torch - opts.cuda_graph_bytes
    needed = kv_bytes_for_len(arch, opts, opts.max_model_len)
    best = _longest(arch, opts, available)
    if gpu_free < pool:
        fits, reason = False, (f"vLLM needs {pool / GiB:.1f} GiB free at start-up "
                               f"(gpu_memory_utilization × total); only {gpu_free / GiB:.1f} GiB is free")
    elif available <= 0:
        fits, reason = False, "weights and activations alone exceed the memory pool"
    elif needed > available:
        fits, reason = False, f"KV for max_model_len {opts.max_model_len} needs {needed / GiB:.2f} GiB; " \
            f"{available / GiB:.2f} GiB available (estimated maximum model length is {best})"
    else:
        fits, reason = True, "fits"
    return VllmFit(fits, reason, pool, weights, act, non_torch, max(available, 0), needed, best,
                   kv_tokens=kv_token_capacity(arch, opts, available), cuda_graphs=opts.cuda_graph_bytes,
                   tensor_parallel_size=tp, gpu_memory_utilization=opts.gpu_memory_utilization)
