"""Write GGUF files with ggml's own ``gguf.GGUFWriter`` (so our reader is checked against theirs).

The tensor data is never written: the file is extended with ``truncate`` (sparse zeros), or cut
right after the header for ``header_only`` files. Either way the header is the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES


@dataclass
class Spec:
    arch: str = "llama"
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 8
    n_head_kv: int | list[int] = 2
    head_dim: int | None = None  # written as key_length/value_length when set
    n_ff: int = 512
    n_vocab: int = 1000
    n_ctx_train: int = 4096
    wtype: GGMLQuantizationType = GGMLQuantizationType.F16
    tied: bool = False
    n_expert: int = 0
    n_expert_used: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    tokens: int = 0  # write a tokenizer.ggml.tokens array of this many strings


def _add_kv(w: GGUFWriter, key: str, value: Any) -> None:
    if isinstance(value, bool):
        w.add_bool(key, value)
    elif isinstance(value, int):
        w.add_uint32(key, value)
    elif isinstance(value, float):
        w.add_float32(key, value)
    elif isinstance(value, str):
        w.add_string(key, value)
    else:
        w.add_array(key, list(value))


def tensor_table(spec: Spec) -> list[tuple[str, tuple[int, ...], GGMLQuantizationType]]:
    """(name, numpy-order shape, type) of a llama-style model."""
    hd = spec.head_dim or spec.n_embd // spec.n_head
    kvh = spec.n_head_kv if isinstance(spec.n_head_kv, int) else max(spec.n_head_kv)
    f32 = GGMLQuantizationType.F32
    out: list[tuple[str, tuple[int, ...], GGMLQuantizationType]] = [
        ("token_embd.weight", (spec.n_vocab, spec.n_embd), spec.wtype)]
    for i in range(spec.n_layer):
        p = f"blk.{i}."
        out += [
            (p + "attn_norm.weight", (spec.n_embd,), f32),
            (p + "attn_q.weight", (spec.n_head * hd, spec.n_embd), spec.wtype),
            (p + "attn_k.weight", (kvh * hd, spec.n_embd), spec.wtype),
            (p + "attn_v.weight", (kvh * hd, spec.n_embd), spec.wtype),
            (p + "attn_output.weight", (spec.n_embd, spec.n_head * hd), spec.wtype),
            (p + "ffn_norm.weight", (spec.n_embd,), f32),
        ]
        if spec.n_expert:
            out += [
                (p + "ffn_gate_inp.weight", (spec.n_expert, spec.n_embd), f32),
                (p + "ffn_gate_exps.weight", (spec.n_expert, spec.n_ff, spec.n_embd), spec.wtype),
                (p + "ffn_up_exps.weight", (spec.n_expert, spec.n_ff, spec.n_embd), spec.wtype),
                (p + "ffn_down_exps.weight", (spec.n_expert, spec.n_embd, spec.n_ff), spec.wtype),
            ]
        else:
            out += [
                (p + "ffn_gate.weight", (spec.n_ff, spec.n_embd), spec.wtype),
                (p + "ffn_up.weight", (spec.n_ff, spec.n_embd), spec.wtype),
                (p + "ffn_down.weight", (spec.n_embd, spec.n_ff), spec.wtype),
            ]
    out.append(("output_norm.weight", (spec.n_embd,), f32))
    if not spec.tied:
        out.append(("output.weight", (spec.n_vocab, spec.n_embd), spec.wtype))
    return out


def nbytes(shape: tuple[int, ...], qtype: GGMLQuantizationType) -> int:
    block, size = GGML_QUANT_SIZES[qtype]
    return int(np.prod(shape)) // block * size


def write_gguf(path: Path, spec: Spec, *, header_only: bool = False, split_max_tensors: int = 0) -> Path:
    """Write ``spec`` as a GGUF at ``path``; returns the path.

    ``split_max_tensors`` writes shards ``<stem>-0000i-of-0000n.gguf`` next to ``path`` (headers
    only) the way ``gguf-split`` does; the first shard's path is returned.
    """
    a = spec.arch
    w = GGUFWriter(path, a, split_max_tensors=split_max_tensors)
    w.add_uint32(f"{a}.block_count", spec.n_layer)
    w.add_uint32(f"{a}.context_length", spec.n_ctx_train)
    w.add_uint32(f"{a}.embedding_length", spec.n_embd)
    w.add_uint32(f"{a}.feed_forward_length", spec.n_ff)
    w.add_uint32(f"{a}.attention.head_count", spec.n_head)
    if isinstance(spec.n_head_kv, int):
        w.add_uint32(f"{a}.attention.head_count_kv", spec.n_head_kv)
    else:
        w.add_array(f"{a}.attention.head_count_kv", spec.n_head_kv)
    if spec.head_dim:
        w.add_uint32(f"{a}.attention.key_length", spec.head_dim)
        w.add_uint32(f"{a}.attention.value_length", spec.head_dim)
    w.add_uint32(f"{a}.vocab_size", spec.n_vocab)
    if spec.n_expert:
        w.add_uint32(f"{a}.expert_count", spec.n_expert)
        w.add_uint32(f"{a}.expert_used_count", spec.n_expert_used)
    w.add_string("general.name", f"test-{a}")
    w.add_uint32("general.file_type", 1)
    if spec.tokens:
        w.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(spec.tokens)])
    for key, value in spec.extra.items():
        _add_kv(w, key, value)
    for name, shape, qtype in tensor_table(spec):
        w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes(shape, qtype), raw_dtype=qtype)
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    if split_max_tensors:
        return w.format_shard_names(path)[0]
    if not header_only:
        size = path.stat().st_size
        align = 32
        data_start = -(-size // align) * align
        total = 0
        for _, shape, qtype in tensor_table(spec):
            total = -(-total // align) * align + nbytes(shape, qtype)
        with path.open("r+b") as fh:
            fh.truncate(data_start + total)
    return path
