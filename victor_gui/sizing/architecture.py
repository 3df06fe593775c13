"""``ModelArchitecture``: the engine-independent description of a model the estimator works on.

Built from a GGUF header (:func:`from_gguf`), an Ollama ``/api/show`` reply
(:func:`from_ollama_show`, same ``{arch}.*`` keys) or a Hugging Face config plus safetensors
headers (:mod:`victor_gui.sizing.hf_reader`). Everything is per layer where real models vary
per layer (KV heads, sliding window, recurrent layers, weights); see vram.md §1.1-§1.2, §5.
"""

from __future__ import annotations

import array
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from victor_gui.errors import GGUFError
from victor_gui.sizing.ggml_types import GGML_TYPES_BY_NAME, tensor_bytes
from victor_gui.sizing.gguf_header import GGUFArray, GGUFHeader

# Archs whose GGUFs carry only ``sliding_window``: llama.cpp hard-codes the pattern
# (hparams.set_swa_pattern(n): layer il is SWA when il % n < n - 1, the last of each group global).
SWA_PATTERNS = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "gemma-embedding": 6, "cohere2": 4,
                "llama4": 4, "gpt-oss": 2, "exaone4": 4}
# Archs whose layers are all recurrent (state per sequence, no KV cache).
RECURRENT_ARCHS = {"mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"}
# Hybrids whose llama.cpp loader falls back to "every 4th layer attends" when the GGUF carries
# neither recurrent_layers nor full_attention_interval (src/models/qwen35*.cpp, qwen3next).
INTERVAL_ARCHS = {"qwen3next", "qwen35", "qwen35moe"}

_BLK = re.compile(r"^blk\.(\d+)\.")
_INPUT_PREFIXES = ("token_embd", "position_embd", "token_types")


@dataclass(slots=True)
class ModelArchitecture:
    """Hyper-parameters and weight sizes, per layer where models vary per layer.

    ``n_head_kv[l] == 0`` marks a layer without KV (recurrent or attention-free). Weight bytes:
    ``layer_weight_bytes`` per repeating block, ``token_embd_bytes`` (input, stays in host RAM),
    ``output_bytes`` (output.weight, or a duplicate of token_embd when tied, plus output_norm and
    other non-repeating tensors).
    """

    arch: str
    n_layer: int
    n_embd: int = 0
    n_ff: int = 0
    n_head: list[int] = field(default_factory=list)
    n_head_kv: list[int] = field(default_factory=list)
    head_dim_k: int = 0
    head_dim_v: int = 0
    head_dim_k_swa: int = 0
    head_dim_v_swa: int = 0
    n_ctx_train: int = 0
    n_vocab: int = 0
    sliding_window: int = 0
    swa_layers: list[bool] = field(default_factory=list)
    recurrent_layers: list[bool] = field(default_factory=list)
    recurrent_state_bytes: int = 0  # f32 state per recurrent layer per sequence
    n_layer_nextn: int = 0  # MTP/NextN blocks at the end of block_count: not run, no KV, not loaded
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    mla: bool = False  # cache holds the compressed latent (K = kv_lora_rank + rope dim, no V)
    n_expert: int = 0
    n_expert_used: int = 0
    n_ff_exp: int = 0
    tied_embeddings: bool = False
    causal: bool = True
    layer_weight_bytes: list[int] = field(default_factory=list)
    layer_expert_bytes: list[int] = field(default_factory=list)  # the *_exps tensors within each layer
    token_embd_bytes: int = 0
    output_bytes: int = 0
    weights_exact: bool = True  # False when weights were spread from a file size
    source: str = ""

    @property
    def weight_bytes(self) -> int:
        """Bytes the engine allocates for weights (a tied output counted as its GPU copy)."""
        return sum(self.layer_weight_bytes) + self.token_embd_bytes + self.output_bytes

    def kv_heads(self, layer: int) -> int:
        return self.n_head_kv[layer] if layer < len(self.n_head_kv) else 0


# A kept GGUF number array: a list, or an array.array once the header's budget of Python
# objects is spent (see GGUFLimits.keep_total_items).
_ARRAY = (list, array.array)


def _per_layer(value: Any, n_layer: int, default: int, key: str) -> list[int]:
    if value is None:
        return [default] * n_layer
    if isinstance(value, GGUFArray):  # longer than any real per-layer array, so not kept
        raise GGUFError(f"{key} has {len(value)} entries for {n_layer} layers", reason="bad_value")
    if isinstance(value, _ARRAY):
        if len(value) != n_layer:
            raise GGUFError(f"{key} has {len(value)} entries for {n_layer} layers", reason="bad_value")
        return [int(v) for v in value]
    return [int(value)] * n_layer


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, _ARRAY):
        return max((int(v) for v in value), default=default)
    if isinstance(value, bool) or value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _swa_layers(md: Mapping[str, Any], arch: str, n_layer: int, window: int) -> list[bool]:
    pattern = md.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(pattern, _ARRAY):
        if len(pattern) != n_layer:
            raise GGUFError("sliding_window_pattern length differs from block_count", reason="bad_value")
        return [bool(v) for v in pattern]
    if window <= 0:
        return [False] * n_layer
    n = _int(pattern, SWA_PATTERNS.get(arch, 0))
    if n <= 0:
        return [False] * n_layer  # unknown pattern: count every layer as global (an overestimate)
    return [il % n < n - 1 for il in range(n_layer)]


def _recurrent(md: Mapping[str, Any], arch: str, n_layer: int, n_nextn: int, n_head_kv: list[int],
               kv_is_array: bool) -> list[bool]:
    """Which layers keep a recurrent state instead of a KV cache, read as llama.cpp reads them.

    Qwen3-Next / Qwen3.5 (``llama_model_qwen35::load_arch_hparams``): the per-layer
    ``{arch}.attention.recurrent_layers`` first (``get_key_or_arr``: an array, or one value for
    every layer), else ``{arch}.full_attention_interval`` with a default of 4; the MTP blocks at
    the end of ``block_count`` are never recurrent.
    """
    if arch in RECURRENT_ARCHS:
        return [True] * n_layer
    listed = md.get(f"{arch}.attention.recurrent_layers")
    if isinstance(listed, GGUFArray):  # longer than any real per-layer array, so not kept
        raise GGUFError(f"{arch}.attention.recurrent_layers has {len(listed)} entries for {n_layer} layers",
                        reason="bad_value")
    if isinstance(listed, _ARRAY):
        if len(listed) != n_layer:
            raise GGUFError(f"{arch}.attention.recurrent_layers has {len(listed)} entries for {n_layer} "
                            "layers", reason="bad_value")
        return [bool(v) for v in listed]
    if isinstance(listed, bool | int):
        return [bool(listed)] * n_layer
    interval_key = f"{arch}.full_attention_interval"
    if interval_key in md or arch in INTERVAL_ARCHS:
        interval = _int(md.get(interval_key), 4) or 4  # 0 would divide by zero in llama.cpp too
        trunk = n_layer - n_nextn
        return [il < trunk and (il + 1) % interval != 0 for il in range(n_layer)]
    if kv_is_array:  # hybrids (Jamba, Nemotron-H, LFM2, granitehybrid): 0 KV heads = recurrent
        return [h == 0 for h in n_head_kv]
    return [False] * n_layer


def _state_bytes(md: Mapping[str, Any], arch: str, n_embd: int) -> int:
    d_conv = _int(md.get(f"{arch}.ssm.conv_kernel"))
    d_inner = _int(md.get(f"{arch}.ssm.inner_size"))
    d_state = _int(md.get(f"{arch}.ssm.state_size"))
    n_group = _int(md.get(f"{arch}.ssm.group_count"), 1) or 1
    if d_inner or d_state:
        # Mamba: conv state + SSM state, both f32 (vram.md §1.2).
        return ((max(d_conv - 1, 0)) * (d_inner + 2 * n_group * d_state) + d_state * d_inner) * 4
    head_size = _int(md.get(f"{arch}.wkv.head_size"))
    if head_size:
        shifts = _int(md.get(f"{arch}.token_shift_count"), 2)
        return (shifts * n_embd + head_size * n_embd) * 4
    shortconv = _int(md.get(f"{arch}.shortconv.l_cache"))
    if shortconv:  # LFM2 short convolution: (L_cache - 1) × n_embd f32
        return (shortconv - 1) * n_embd * 4
    return 0


def from_metadata(md: Mapping[str, Any], tensors: Iterable[tuple[str, int]], *, source: str = "gguf",
                  fallback_weight_bytes: int = 0) -> ModelArchitecture:
    """Build a description from GGUF-style keys and ``(tensor name, bytes)`` pairs.

    With no tensors, ``fallback_weight_bytes`` (a file size) is spread evenly over the layers and
    ``weights_exact`` is False.
    """
    arch = str(md.get("general.architecture") or "")
    if not arch:
        raise GGUFError("metadata has no general.architecture", reason="bad_value")
    a = arch + "."
    n_layer = _int(md.get(a + "block_count"))
    if n_layer <= 0 or n_layer > 4096:
        raise GGUFError(f"{a}block_count is {md.get(a + 'block_count')!r}", reason="bad_value")
    n_embd = _int(md.get(a + "embedding_length"))
    n_head = _per_layer(md.get(a + "attention.head_count"), n_layer, 0, a + "attention.head_count")
    kv_raw = md.get(a + "attention.head_count_kv")
    n_head_kv = _per_layer(kv_raw, n_layer, 0, a + "attention.head_count_kv") if kv_raw is not None \
        else list(n_head)
    max_head = max(n_head, default=0)
    fallback_dim = n_embd // max_head if max_head else 0  # only when key/value_length are absent
    head_k = _int(md.get(a + "attention.key_length"), fallback_dim)
    head_v = _int(md.get(a + "attention.value_length"), fallback_dim)
    kv_lora = _int(md.get(a + "attention.kv_lora_rank"))
    rope_dim = _int(md.get(a + "rope.dimension_count"))
    mla = kv_lora > 0 and a + "attention.key_length_mla" in md
    window = _int(md.get(a + "attention.sliding_window"))
    # MTP/NextN blocks are counted in block_count (llama.cpp: n_layer_all); the main pass never
    # runs them, they get no KV cell (n_layer_kv_from_start) and their tensors are skipped
    # unless MTP is asked for (TENSOR_SKIP).
    n_nextn = min(max(_int(md.get(a + "nextn_predict_layers")), 0), n_layer - 1)
    recurrent = _recurrent(md, arch, n_layer, n_nextn, n_head_kv, isinstance(kv_raw, _ARRAY))
    if any(recurrent):
        n_head_kv = [0 if r else h for r, h in zip(recurrent, n_head_kv, strict=True)]
    if n_nextn:
        n_head_kv = n_head_kv[: n_layer - n_nextn] + [0] * n_nextn
    vocab = _int(md.get(a + "vocab_size"))
    tokens = md.get("tokenizer.ggml.tokens")
    if not vocab and isinstance(tokens, (*_ARRAY, GGUFArray)):
        vocab = len(tokens)

    layers = [0] * n_layer
    experts = [0] * n_layer
    token_embd = output = 0
    has_output = False
    seen = False
    for name, size in tensors:
        seen = True
        m = _BLK.match(name)
        if m:
            il = int(m.group(1))
            if il < n_layer - n_nextn:
                layers[il] += size
                if "_exps." in name:  # routed experts (ffn_*_exps); shared experts (_shexp) are dense
                    experts[il] += size
            elif il >= n_layer:
                output += size  # blocks past block_count: loaded with the output, not repeated
            # else: an MTP block inside block_count, skipped at load (TENSOR_SKIP)
        elif name.startswith(_INPUT_PREFIXES):
            token_embd += size
        else:
            has_output = has_output or name == "output.weight"
            output += size
    tied = seen and not has_output
    if tied:
        output += token_embd  # llama.cpp duplicates token_embd as the output layer (vram.md §1.1)
    exact = seen
    if not seen and fallback_weight_bytes > 0:
        layers = [fallback_weight_bytes // (n_layer + 1)] * n_layer
        output = fallback_weight_bytes - sum(layers)

    arch_obj = ModelArchitecture(
        arch=arch, n_layer=n_layer, n_embd=n_embd, n_ff=_int(md.get(a + "feed_forward_length")),
        n_head=n_head, n_head_kv=n_head_kv, head_dim_k=head_k, head_dim_v=0 if mla else head_v,
        head_dim_k_swa=_int(md.get(a + "attention.key_length_swa"), head_k),
        head_dim_v_swa=_int(md.get(a + "attention.value_length_swa"), head_v),
        n_ctx_train=_int(md.get(a + "context_length")), n_vocab=vocab, sliding_window=window,
        swa_layers=_swa_layers(md, arch, n_layer, window), recurrent_layers=recurrent,
        recurrent_state_bytes=_state_bytes(md, arch, n_embd) if any(recurrent) else 0,
        n_layer_nextn=n_nextn,
        kv_lora_rank=kv_lora, qk_rope_head_dim=rope_dim, mla=mla,
        n_expert=_int(md.get(a + "expert_count")), n_expert_used=_int(md.get(a + "expert_used_count")),
        n_ff_exp=_int(md.get(a + "expert_feed_forward_length")), tied_embeddings=tied,
        causal=md.get(a + "attention.causal", True) is not False,
        layer_weight_bytes=layers, layer_expert_bytes=experts, token_embd_bytes=token_embd,
        output_bytes=output, weights_exact=exact, source=source,
    )
    if mla and not arch_obj.head_dim_k:
        arch_obj.head_dim_k = kv_lora + rope_dim
    return arch_obj


def from_gguf(header: GGUFHeader) -> ModelArchitecture:
    """Describe the model in a parsed GGUF header."""
    return from_metadata(header.metadata, ((t.name, t.n_bytes) for t in header.tensors),
                         source=header.source or "gguf")


def _ollama_tensor_bytes(entry: Mapping[str, Any]) -> tuple[str, int] | None:
    name, kind, shape = entry.get("name"), str(entry.get("type", "")).lower(), entry.get("shape")
    t = GGML_TYPES_BY_NAME.get(kind)
    if not isinstance(name, str) or t is None or not isinstance(shape, list):
        return None
    n = 1
    for d in shape:
        n *= int(d)
    return name, tensor_bytes(t.id, n)


def from_ollama_show(show: Mapping[str, Any], *, size_bytes: int = 0) -> ModelArchitecture:
    """Describe a model from an Ollama ``/api/show`` reply (``model_info`` + optional ``tensors``).

    ``size_bytes`` (the model's size from ``/api/tags``) stands in for the tensor table when the
    server does not list tensors; the weights are then spread evenly and marked inexact.
    """
    info = show.get("model_info")
    if not isinstance(info, Mapping):
        raise GGUFError("Ollama /api/show reply has no model_info", reason="bad_value")
    tensors = [p for e in show.get("tensors") or [] if isinstance(e, Mapping)
               if (p := _ollama_tensor_bytes(e)) is not None]
    return from_metadata(info, tensors, source="ollama", fallback_weight_bytes=size_bytes)
