"""Deterministic tiny GGUF chat models for tests against a real ``llama-server``.

:func:`make_tiny_gguf` writes a sub-megabyte model with ggml's own ``gguf`` package; nothing is
downloaded. The default model: ``llama`` arch, 2 layers, ``n_embd`` 128, 4 query heads over 2
KV heads (head_dim 32 -- the minimum for q8_0/q4_0 KV caches), ``n_ff`` 256, a 283-token
byte-level vocabulary and a ChatML template with tool support (:mod:`tests.support.tiny_vocab`).
It loads in well under a second.

The weights are seeded random numbers except for a handful of hand-set "steering" channels
(``steer=True``, the default):

* every output token is printable ASCII or ``\\n`` (other bytes and most special tokens get a
  -30 logit bias), so streamed text is valid UTF-8 and fits in JSON assertions;
* when tools are offered and no tool result is in the context yet, the model writes
  ``<tool_call>``, and under the grammar llama-server builds from the tool schemas produces a
  valid call (empty-string / small-number arguments), ``</tool_call>`` and end-of-turn, so the
  reply has ``finish_reason: "tool_calls"``;
* after a ``<tool_response>`` it answers with plain (random) text.

Same arguments -> byte-identical file. The API (:func:`make_tiny_gguf`, :func:`tiny_dims`,
:data:`ARCHES`, :data:`FTYPES`) is what the memory ground truth
(``tests/data/llama_memory_ground_truth.json``) is regenerated from: keep it stable.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from tests.support.tiny_vocab import CHAT_TEMPLATE, MERGES, build_vocab

ARCHES = ("llama", "qwen2", "qwen3")
FTYPES = ("f16", "q8_0", "f32")

_FILE_TYPES = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
}

# Residual-stream channels reserved for steering; every other channel is random.
CONST, TC, FLAG, NL, FIRE, TCE, TR = range(7)
#   CONST 1 on every token -> lm_head column CONST is a per-token logit bias
#   TC    1 on <tool_call>          (attention key; bigram <tool_call> -> "\n")
#   FLAG  written by layer-0 attention: +B if <tool_call> is in the context (the tools system
#         prompt contains it), -B more if <tool_response> is (a tool result came back)
#   NL    1 on "\n"
#   FIRE  layer-0 FFN unit 0: FLAG AND current token is "\n" -> emit <tool_call>
#   TCE   1 on </tool_call>         (bigram </tool_call> -> <|im_end|>)
#   TR    1 on <tool_response>      (attention key)
N_RESERVED = 7
_FLAG_SCALE = 4.0  # B: size of the FLAG signal
_ATTN_SCALE = 12.0  # q.k magnitude of the two marker-finding heads
_GATE = 30.0  # steepness of the FIRE AND-gate


@dataclass(frozen=True)
class TinyDims:
    """Hyper-parameters of a tiny model (what the memory formulas need)."""

    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    n_head_kv: int = 2
    head_dim: int = 32
    n_ff: int = 256

    @property
    def n_q(self) -> int:
        return self.n_head * self.head_dim

    @property
    def n_kv(self) -> int:
        return self.n_head_kv * self.head_dim


def tiny_dims(*, n_layer: int = 2, n_embd: int = 128, n_head: int = 4, n_head_kv: int = 2,
              head_dim: int | None = None, n_ff: int = 256) -> TinyDims:
    """Dimensions :func:`make_tiny_gguf` uses for the same keyword arguments."""
    return TinyDims(n_layer, n_embd, n_head, n_head_kv, head_dim or n_embd // n_head, n_ff)


def make_tiny_gguf(
    path: str | Path,
    *,
    arch: str = "llama",
    ftype: str = "f16",
    n_ctx_train: int = 4096,
    seed: int = 0,
    steer: bool = True,
    eos_bias: float = 0.0,
    n_layer: int = 2,
    n_embd: int = 128,
    n_head: int = 4,
    n_head_kv: int = 2,
    head_dim: int | None = None,
    n_ff: int = 256,
) -> Path:
    """Write a tiny chat model to ``path`` and return it.

    ``arch``: ``llama``, ``qwen2`` (adds zero q/k/v biases) or ``qwen3`` (adds q/k norms).
    ``ftype``: storage type of the 2-D weight matrices (norms stay f32). ``n_ctx_train`` is the
    trained context (``<arch>.context_length``); keep it >= ~600 when tools are used, since the
    tools system prompt alone is ~530 tokens. ``steer=False`` gives plain random weights (no
    tool calls, unconstrained bytes). ``eos_bias`` is added to the end-of-turn logit: -30 makes
    plain-text replies run until ``max_tokens`` (the tool-call path still ends its turn).
    """
    if arch not in ARCHES:
        raise ValueError(f"arch must be one of {ARCHES}, not {arch!r}")
    if ftype not in FTYPES:
        raise ValueError(f"ftype must be one of {FTYPES}, not {ftype!r}")
    dims = tiny_dims(n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv,
                     head_dim=head_dim, n_ff=n_ff)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out), arch)
    _write_metadata(writer, arch, ftype, n_ctx_train, dims)
    _write_tensors(writer, arch, ftype, dims, np.random.default_rng(seed), steer, eos_bias)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _write_metadata(w: gguf.GGUFWriter, arch: str, ftype: str, n_ctx_train: int,
                    dims: TinyDims) -> None:
    vocab = build_vocab()
    w.add_name(f"tiny-{arch}-{dims.n_layer}L-{dims.n_embd}d")
    w.add_description("Random-weight test model from tests/support/tiny_gguf.py (not a real LLM)")
    w.add_block_count(dims.n_layer)
    w.add_context_length(n_ctx_train)
    w.add_embedding_length(dims.n_embd)
    w.add_feed_forward_length(dims.n_ff)
    w.add_head_count(dims.n_head)
    w.add_head_count_kv(dims.n_head_kv)
    w.add_key_length(dims.head_dim)
    w.add_value_length(dims.head_dim)
    w.add_rope_dimension_count(dims.head_dim)
    w.add_rope_freq_base(10000.0 if arch == "llama" else 1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(_FILE_TYPES[ftype])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(vocab.tokens)
    w.add_token_types(vocab.types)
    w.add_token_merges(list(MERGES))
    w.add_bos_token_id(vocab.special["<|endoftext|>"])
    w.add_eos_token_id(vocab.special["<|im_end|>"])
    w.add_pad_token_id(vocab.special["<|endoftext|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)


def _write_tensors(w: gguf.GGUFWriter, arch: str, ftype: str, d: TinyDims,
                   rng: np.random.Generator, steer: bool, eos_bias: float) -> None:
    vocab = build_vocab()
    sp = vocab.special
    reserved = N_RESERVED if steer else 1

    def mat(rows: int, cols: int, scale: float | None = None) -> np.ndarray:
        s = scale if scale is not None else 1.0 / np.sqrt(cols)
        return (rng.standard_normal((rows, cols)) * s).astype(np.float32)

    def put(name: str, arr: np.ndarray) -> None:
        # numpy shape (out, in) is ggml's ne [in, out]
        if arr.ndim == 1 or ftype == "f32":
            w.add_tensor(name, arr.astype(np.float32))
        elif ftype == "f16":
            w.add_tensor(name, arr.astype(np.float16))
        else:
            q = gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)

    emb = mat(vocab.size, d.n_embd, 1.0)
    emb[:, :reserved] = 0.0
    if steer:
        # Equal norms give every token the same RMSNorm scale, so the steering channels have
        # the same strength whatever token carries them.
        rest = emb[:, reserved:]
        emb[:, reserved:] = rest * np.sqrt(d.n_embd - reserved) / np.linalg.norm(rest, axis=1,
                                                                                 keepdims=True)
        emb[sp["<tool_call>"], TC] = 1.0
        emb[sp["</tool_call>"], TCE] = 1.0
        emb[sp["<tool_response>"], TR] = 1.0
        emb[ord("\n"), NL] = 1.0
    emb[:, CONST] = 1.0
    put("token_embd.weight", emb)

    for layer in range(d.n_layer):
        p = f"blk.{layer}."
        wq, wk, wv = mat(d.n_q, d.n_embd), mat(d.n_kv, d.n_embd), mat(d.n_kv, d.n_embd)
        wo = mat(d.n_embd, d.n_q)
        wg, wu, wd = mat(d.n_ff, d.n_embd), mat(d.n_ff, d.n_embd), mat(d.n_embd, d.n_ff)
        wo[:reserved, :] = 0.0  # random layers never write into the reserved channels
        wd[:reserved, :] = 0.0
        qk_norm = np.ones(d.head_dim, np.float32)
        if steer and layer == 0:
            _wire_layer0(arch, d, wq, wk, wv, wo, wg, wu, wd, qk_norm)
        put(p + "attn_norm.weight", np.ones(d.n_embd, np.float32))
        put(p + "attn_q.weight", wq)
        put(p + "attn_k.weight", wk)
        put(p + "attn_v.weight", wv)
        if arch == "qwen2":
            put(p + "attn_q.bias", np.zeros(d.n_q, np.float32))
            put(p + "attn_k.bias", np.zeros(d.n_kv, np.float32))
            put(p + "attn_v.bias", np.zeros(d.n_kv, np.float32))
        if arch == "qwen3":
            put(p + "attn_q_norm.weight", qk_norm)
            put(p + "attn_k_norm.weight", qk_norm.copy())
        put(p + "attn_output.weight", wo)
        put(p + "ffn_norm.weight", np.ones(d.n_embd, np.float32))
        put(p + "ffn_gate.weight", wg)
        put(p + "ffn_up.weight", wu)
        put(p + "ffn_down.weight", wd)

    put("output_norm.weight", np.ones(d.n_embd, np.float32))
    out = mat(vocab.size, d.n_embd)
    out[:, :reserved] = 0.0
    out[:, CONST] = np.where(vocab.allowed, 0.0, -30.0)
    out[sp["<|im_end|>"], CONST] = eos_bias
    if steer:
        out[sp["<tool_call>"], FIRE] = 20.0
        # While FLAG is on, JSON preferences (the tool grammar decides what is legal):
        # '"' > '}' > ']' > ','  -> empty strings, one-digit numbers, short arrays, and objects
        # closed as soon as the required keys are there.
        out[ord('"'), FLAG] = 8.0
        out[ord("}"), FLAG] = 6.5
        out[ord("]"), FLAG] = 5.0
        out[ord(","), FLAG] = 3.5
        out[sp["</tool_call>"], FLAG] = 14.0
        out[ord("\n"), TC] = 50.0
        out[sp["<|im_end|>"], TCE] = 50.0
    put("output.weight", out)


def _wire_layer0(arch: str, d: TinyDims, wq: np.ndarray, wk: np.ndarray, wv: np.ndarray,
                 wo: np.ndarray, wg: np.ndarray, wu: np.ndarray, wd: np.ndarray,
                 qk_norm: np.ndarray) -> None:
    """Hand-set layer 0: two marker-finding heads write FLAG, FFN unit 0 computes FIRE."""
    hd = d.head_dim
    # Put the q.k signal on the slowest-rotating RoPE pair so the score barely depends on the
    # distance between query and marker. llama uses NORM rope (pairs adjacent), qwen NEOX
    # (pairs half a head apart).
    sig = hd - 2 if arch == "llama" else hd // 2 - 1
    # Query head 0 (-> KV head 0) attends to <tool_call> and copies +B into FLAG.
    wq[0:hd, :] = 0.0
    wq[sig, CONST] = _ATTN_SCALE
    wk[sig, :] = 0.0
    wk[sig, TC] = _ATTN_SCALE
    wv[0, :] = 0.0
    wv[0, TC] = _FLAG_SCALE
    wo[FLAG, 0] = 1.0
    # Query head 2 (-> KV head 1) attends to <tool_response> and copies -B into FLAG.
    if d.n_head >= 4 and d.n_head_kv >= 2:
        h2 = 2 * hd
        kv1 = (2 // (d.n_head // d.n_head_kv)) * hd
        wq[h2:h2 + hd, :] = 0.0
        wq[h2 + sig, CONST] = _ATTN_SCALE
        wk[kv1 + sig, :] = 0.0
        wk[kv1 + sig, TR] = _ATTN_SCALE
        wv[kv1, :] = 0.0
        wv[kv1, TR] = -_FLAG_SCALE
        wo[FLAG, h2] = 1.0
    qk_norm[sig] = 2.5  # qwen3's q/k norms would otherwise shrink the marker score
    # FFN unit 0: FIRE = silu(G * (FLAG/B + NL - 1.5)) * 1 -> ~G/2 only when both are on.
    wg[0, :] = 0.0
    wg[0, FLAG], wg[0, NL], wg[0, CONST] = _GATE / _FLAG_SCALE, _GATE, -1.5 * _GATE
    wu[0, :] = 0.0
    wu[0, CONST] = 1.0
    wd[:, 0] = 0.0
    wd[FIRE, 0] = 1.0


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.support.tiny_gguf OUT.gguf [--arch ...] ...``: write one model by hand."""
    ap = argparse.ArgumentParser(prog="python -m tests.support.tiny_gguf", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--arch", default="llama", choices=ARCHES)
    ap.add_argument("--ftype", default="f16", choices=FTYPES)
    ap.add_argument("--n-ctx-train", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-steer", action="store_true")
    ap.add_argument("--eos-bias", type=float, default=0.0)
    for dim in ("n_layer", "n_embd", "n_head", "n_head_kv", "head_dim", "n_ff"):
        ap.add_argument("--" + dim.replace("_", "-"), type=int, default=None)
    a = ap.parse_args(argv)
    dims = {k: getattr(a, k) for k in ("n_layer", "n_embd", "n_head", "n_head_kv", "head_dim", "n_ff")
            if getattr(a, k) is not None}
    path = make_tiny_gguf(a.out, arch=a.arch, ftype=a.ftype, n_ctx_train=a.n_ctx_train, seed=a.seed,
                          steer=not a.no_steer, eos_bias=a.eos_bias, **dims)
    print(f"{path}: {path.stat().st_size} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
