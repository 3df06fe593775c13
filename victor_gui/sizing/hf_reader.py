"""Hugging Face models: ``config.json`` plus safetensors headers into a :class:`ModelArchitecture`.

A safetensors file starts with a little-endian u64 N and N bytes of JSON naming every tensor's
dtype, shape and byte range, so exact weight sizes need only the header (vram.md §4). The
header is bounded (64 MiB by default; the format's own cap is 100 MB) and validated; every
problem is a :class:`~victor_gui.errors.GGUFError`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from victor_gui.errors import GGUFError
from victor_gui.sizing.architecture import RECURRENT_ARCHS, ModelArchitecture
from victor_gui.sizing.gguf_reader import header_client, open_regular_file

MAX_HEADER = 64 << 20
DTYPE_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
               "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I8": 1, "U8": 1, "BOOL": 1}
HF_SWA_PATTERNS = {"gemma2": 2, "gemma3": 6, "gemma3_text": 6, "cohere2": 4, "gpt_oss": 2, "llama4": 4}
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")


def parse_safetensors_header(data: bytes, *, max_header: int = MAX_HEADER) -> dict[str, int]:
    """Tensor name -> bytes, from the start of a safetensors file (at least 8 + N bytes)."""
    if len(data) < 8:
        raise GGUFError("safetensors file shorter than its 8-byte length prefix", reason="truncated")
    (n,) = struct.unpack_from("<Q", data)
    if n > max_header:
        raise GGUFError(f"safetensors header claims {n} bytes (limit {max_header})", reason="limit")
    if len(data) < 8 + n:
        raise GGUFError(f"safetensors header needs {8 + n} bytes, have {len(data)}", reason="truncated")
    try:
        table = json.loads(data[8:8 + n])
    except (ValueError, UnicodeDecodeError) as exc:
        raise GGUFError(f"safetensors header is not JSON: {exc}", reason="bad_value") from None
    if not isinstance(table, dict):
        raise GGUFError("safetensors header is not a JSON object", reason="bad_value")
    sizes: dict[str, int] = {}
    for name, entry in table.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise GGUFError(f"safetensors entry {name!r} is not an object", reason="bad_value")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        item = DTYPE_BYTES.get(str(dtype))
        if item is None:
            raise GGUFError(f"safetensors tensor {name!r} has unknown dtype {dtype!r}", reason="bad_type")
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(isinstance(d, int) and 0 <= d < 1 << 40 for d in shape)):
            raise GGUFError(f"safetensors tensor {name!r} has a bad shape", reason="bad_value")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and o >= 0 for o in offsets) or offsets[1] < offsets[0]):
            raise GGUFError(f"safetensors tensor {name!r} has bad data_offsets", reason="bad_value")
        count = 1
        for d in shape:
            count *= d
        if count * item != offsets[1] - offsets[0]:
            raise GGUFError(f"safetensors tensor {name!r}: shape and byte range disagree", reason="bad_value")
        sizes[name] = count * item
    return sizes


def _read_local(path: Path, max_header: int) -> dict[str, int]:
    try:
        fd, _ = open_regular_file(path)  # a FIFO would block the open for good
        with os.fdopen(fd, "rb") as fh:
            head = fh.read(8)
            if len(head) == 8:
                (n,) = struct.unpack("<Q", head)
                head += fh.read(min(n, max_header))
            return parse_safetensors_header(head, max_header=max_header)
    except OSError as exc:
        raise GGUFError(f"cannot read {path}: {exc.strerror or exc}", reason="io") from exc


async def _get_range(client: httpx.AsyncClient, url: str, start: int, end: int) -> bytes:
    async with client.stream("GET", url, headers={"Range": f"bytes={start}-{end - 1}"}) as resp:
        if resp.status_code not in (200, 206):
            raise GGUFError(f"HTTP {resp.status_code} fetching safetensors header from {url}", reason="io")
        skip = start if resp.status_code == 200 else 0
        chunks, got = [], 0
        async for chunk in resp.aiter_bytes():
            chunks.append(chunk)
            got += len(chunk)
            if got >= skip + end - start:
                break
        return b"".join(chunks)[skip:skip + end - start]


async def read_safetensors_header(source: str | Path, *, client: httpx.AsyncClient | None = None,
                                  max_header: int = MAX_HEADER) -> dict[str, int]:
    """Tensor name -> bytes of a local or http(s) safetensors file (header only)."""
    text = str(source)
    if not text.startswith(("http://", "https://")):
        return await asyncio.to_thread(_read_local, Path(text), max_header)
    own = client is None
    http = client or header_client()
    try:
        head = await _get_range(http, text, 0, 8)
        if len(head) == 8:
            (n,) = struct.unpack("<Q", head)
            if n > max_header:
                raise GGUFError(f"safetensors header claims {n} bytes (limit {max_header})", reason="limit")
            head += await _get_range(http, text, 8, 8 + n)
        return await asyncio.to_thread(parse_safetensors_header, head, max_header=max_header)
    except httpx.HTTPError as exc:
        raise GGUFError(f"cannot fetch {text}: {type(exc).__name__}", reason="io") from exc
    finally:
        if own:
            await http.aclose()


def _get(cfg: Mapping[str, Any], *names: str, default: Any = 0) -> Any:
    for name in names:
        value = cfg.get(name)
        if value is not None:
            return value
    return default


def from_hf_config(config: Mapping[str, Any], tensors: Mapping[str, int] | None = None) -> ModelArchitecture:
    """Describe a Hugging Face model from its config (``text_config`` of multimodal models) and
    its safetensors tensor sizes (tensor name -> bytes, all shards merged)."""
    cfg: Mapping[str, Any] = config.get("text_config") or config
    model_type = str(cfg.get("model_type") or config.get("model_type") or "")
    n_layer = int(_get(cfg, "num_hidden_layers", "n_layer", "num_layers"))
    if n_layer <= 0:
        raise GGUFError("config.json has no num_hidden_layers", reason="bad_value")
    n_embd = int(_get(cfg, "hidden_size", "n_embd", "d_model"))
    n_head = int(_get(cfg, "num_attention_heads", "n_head"))
    n_head_kv = int(_get(cfg, "num_key_value_heads", default=n_head))
    head_dim = int(_get(cfg, "head_dim", default=n_embd // n_head if n_head else 0))
    kv_lora = int(_get(cfg, "kv_lora_rank"))
    rope_dim = int(_get(cfg, "qk_rope_head_dim"))
    window = int(_get(cfg, "sliding_window")) if cfg.get("use_sliding_window", True) is not False else 0
    layer_types = cfg.get("layer_types") or cfg.get("layers_block_type")
    if isinstance(layer_types, list) and len(layer_types) == n_layer:
        kinds = [str(t) for t in layer_types]
        swa = [k in ("sliding_attention", "local") for k in kinds]
        recurrent = [k in ("mamba", "linear_attention", "conv", "recurrent") for k in kinds]
    else:
        pattern = int(_get(cfg, "sliding_window_pattern", default=HF_SWA_PATTERNS.get(model_type, 0)))
        swa = [pattern > 0 and il % pattern < pattern - 1 for il in range(n_layer)] if window else \
            [False] * n_layer
        recurrent = [model_type in RECURRENT_ARCHS] * n_layer
        interval = int(_get(cfg, "full_attention_interval"))
        if interval > 0:  # Qwen3-Next / Qwen3.5 without layer_types: every interval-th layer attends
            recurrent = [(il + 1) % interval != 0 for il in range(n_layer)]
    n_kv = [0 if r else n_head_kv for r in recurrent]

    layers, token_embd, output, has_head = [0] * n_layer, 0, 0, False
    for name, size in (tensors or {}).items():
        m = _LAYER.search(name)
        if m and int(m.group(1)) < n_layer:
            layers[int(m.group(1))] += size
        elif "embed_tokens" in name or name.endswith(("wte.weight", "word_embeddings.weight")):
            token_embd += size
        else:
            has_head = has_head or "lm_head" in name
            output += size
    tied = bool(cfg.get("tie_word_embeddings", config.get("tie_word_embeddings", False))) or \
        (bool(tensors) and not has_head)
    if tied:
        output += token_embd  # counted as llama.cpp would; the vLLM estimate removes the duplicate
    return ModelArchitecture(
        arch=model_type or "hf", n_layer=n_layer, n_embd=n_embd, n_ff=int(_get(cfg, "intermediate_size")),
        n_head=[n_head] * n_layer, n_head_kv=n_kv, head_dim_k=kv_lora + rope_dim if kv_lora else head_dim,
        head_dim_v=0 if kv_lora else int(_get(cfg, "v_head_dim", default=head_dim)),
        head_dim_k_swa=head_dim, head_dim_v_swa=head_dim,
        n_ctx_train=int(_get(cfg, "max_position_embeddings")), n_vocab=int(_get(cfg, "vocab_size")),
        sliding_window=window, swa_layers=swa, recurrent_layers=recurrent, kv_lora_rank=kv_lora,
        qk_rope_head_dim=rope_dim, mla=kv_lora > 0,
        n_expert=int(_get(cfg, "num_local_experts", "n_routed_experts", "num_experts")),
        n_expert_used=int(_get(cfg, "num_experts_per_tok")), n_ff_exp=int(_get(cfg, "moe_intermediate_size")),
        tied_embeddings=tied, layer_weight_bytes=layers, token_embd_bytes=token_embd, output_bytes=output,
        weights_exact=bool(tensors), source="hf",
    )
