"""The tiny GGUF generator: deterministic, valid, and with the metadata llama.cpp reads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import gguf
import pytest

from tests.support.tiny_gguf import ARCHES, FTYPES, make_tiny_gguf, tiny_dims


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _field(reader: gguf.GGUFReader, key: str) -> object:
    return reader.fields[key].contents()


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("ftype", FTYPES)
def test_same_arguments_give_byte_identical_files(tmp_path: Path, arch: str, ftype: str) -> None:
    a = make_tiny_gguf(tmp_path / "a.gguf", arch=arch, ftype=ftype, n_ctx_train=1024, seed=3)
    b = make_tiny_gguf(tmp_path / "b.gguf", arch=arch, ftype=ftype, n_ctx_train=1024, seed=3)
    assert _digest(a) == _digest(b)
    assert a.stat().st_size < 2_000_000
    c = make_tiny_gguf(tmp_path / "c.gguf", arch=arch, ftype=ftype, n_ctx_train=1024, seed=4)
    assert _digest(c) != _digest(a)


@pytest.mark.parametrize("arch", ARCHES)
def test_metadata_and_tensors_match_the_requested_model(tmp_path: Path, arch: str) -> None:
    path = make_tiny_gguf(tmp_path / "m.gguf", arch=arch, ftype="q8_0", n_ctx_train=2048)
    reader = gguf.GGUFReader(path)
    dims = tiny_dims()
    assert _field(reader, "general.architecture") == arch
    assert _field(reader, f"{arch}.context_length") == 2048
    assert _field(reader, f"{arch}.block_count") == dims.n_layer
    assert _field(reader, f"{arch}.attention.head_count_kv") == dims.n_head_kv
    assert _field(reader, f"{arch}.attention.key_length") == dims.head_dim == 32
    assert "<tool_call>" in _field(reader, "tokenizer.chat_template")
    tensors = {t.name: t for t in reader.tensors}
    assert tensors["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0
    assert tensors["blk.0.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert ("blk.0.attn_q.bias" in tensors) == (arch == "qwen2")
    assert ("blk.0.attn_q_norm.weight" in tensors) == (arch == "qwen3")


def test_dimensions_can_be_scaled_up(tmp_path: Path) -> None:
    path = make_tiny_gguf(tmp_path / "big.gguf", n_layer=3, n_embd=256, n_head=8, n_head_kv=4, n_ff=512)
    reader = gguf.GGUFReader(path)
    assert _field(reader, "llama.embedding_length") == 256
    assert _field(reader, "llama.attention.key_length") == tiny_dims(n_embd=256, n_head=8).head_dim == 32
    assert len([t for t in reader.tensors if t.name.startswith("blk.2.")]) == 9


def test_unknown_arch_or_ftype_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="arch"):
        make_tiny_gguf(tmp_path / "x.gguf", arch="mamba")
    with pytest.raises(ValueError, match="ftype"):
        make_tiny_gguf(tmp_path / "x.gguf", ftype="q4_k")
