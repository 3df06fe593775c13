"""vLLM's memory rule (vram.md §4): weights + activation peak + KV for one ``max_model_len``
request must fit in ``gpu_memory_utilization × total``, and that pool must be free at start-up.

vLLM reserves the whole pool whatever the model size, so "fits" is about the pool, not about
free memory after loading (§8.9). The largest ``max_model_len`` is found by binary search, as
vLLM's own ``estimate_max_model_len`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from victor_gui.sizing.architecture import ModelArchitecture

MiB = 1 << 20
GiB = 1 << 30
KV_DTYPE_BYTES = {"auto": 2, "bfloat16": 2, "float16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}


@dataclass(frozen=True, slots=True)
class VllmOptions:
    """vLLM engine arguments the estimate depends on (names as on the command line)."""

    max_model_len: int = 8192
    gpu_memory_utilization: float = 0.9
    kv_cache_dtype: str = "auto"
    block_size: int = 16
    tensor_parallel_size: int = 1
    max_num_batched_tokens: int = 2048  # profiling batch; 8192 on ≥70 GiB non-A100 GPUs
    max_num_seqs: int = 256
    non_torch_bytes: int = 512 * MiB  # CUDA context, NCCL, workspaces (0.2-0.5 GiB observed)
    cuda_graph_bytes: int = 0  # counted only with VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS


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
    max_model_len: int  # largest length whose KV fits in kv_available (0: none)


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
    total = 0
    for il in range(arch.n_layer):
        if il < len(arch.recurrent_layers) and arch.recurrent_layers[il]:
            total += arch.recurrent_state_bytes  # one fixed state page per sequence
            continue
        tokens = length
        if arch.sliding_window and il < len(arch.swa_layers) and arch.swa_layers[il]:
            tokens = min(arch.sliding_window - 1 + opts.max_num_batched_tokens, length) + blk
        total += -(-tokens // blk) * blk * _kv_per_token(arch, opts, il)
    return total


def activation_bytes(arch: ModelArchitecture, opts: VllmOptions) -> int:
    """Rough torch activation peak of the profiling run (bf16 hidden states, f32 logits)."""
    width = max(arch.n_ff, arch.n_ff_exp * max(arch.n_expert_used, 1))
    hidden = opts.max_num_batched_tokens * (4 * arch.n_embd + 2 * width) * 2
    logits = min(opts.max_num_seqs, opts.max_num_batched_tokens) * arch.n_vocab * 4
    return hidden + logits


def estimate_vllm(arch: ModelArchitecture, gpu_total: int, gpu_free: int,
                  opts: VllmOptions | None = None) -> VllmFit:
    """Would vLLM start this model with these options on a GPU of ``gpu_total``/``gpu_free``?"""
    opts = opts or VllmOptions()
    tp = max(opts.tensor_parallel_size, 1)
    pool = int(-(-gpu_total * opts.gpu_memory_utilization // 1))
    # vLLM keeps one embedding matrix when embeddings are tied; the GGUF-style duplicate is not loaded.
    dup = arch.token_embd_bytes if arch.tied_embeddings else 0
    weights = (arch.weight_bytes - dup) // tp
    act = activation_bytes(arch, opts)
    available = pool - weights - act - opts.non_torch_bytes - opts.cuda_graph_bytes
    needed = kv_bytes_for_len(arch, opts, opts.max_model_len)
    best = 0
    lo, hi = 0, max(opts.max_model_len, arch.n_ctx_train or 0)
    while lo < hi:  # largest length with kv ≤ available
        mid = (lo + hi + 1) // 2
        if kv_bytes_for_len(arch, opts, mid) <= available:
            lo = mid
        else:
            hi = mid - 1
    best = lo if available > 0 else 0
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
    return VllmFit(fits, reason, pool, weights, act, opts.non_torch_bytes + opts.cuda_graph_bytes,
                   max(available, 0), needed, best)
