"""The GGUF header reader, cross-checked against ggml's own ``gguf.GGUFReader``."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES

from tests.sizing.gguf_factory import Spec, write_gguf
from victor_gui.errors import GGUFError
from victor_gui.sizing.ggml_types import GGML_TYPES, cache_bytes_per_element, tensor_bytes
from victor_gui.sizing.gguf_header import GGUFArray, GGUFLimits
from victor_gui.sizing.gguf_parse import parse_gguf_header
from victor_gui.sizing.gguf_reader import read_gguf_file

SPECS = {
    "llama-f16": Spec(),
    "qwen2-q4_0-tokens": Spec(arch="qwen2", wtype=Q.Q4_0, tokens=300, n_head_kv=4),
    "gemma3-q8_0-headdim": Spec(arch="gemma3", wtype=Q.Q8_0, head_dim=64, n_head=4, n_head_kv=1, tied=True,
                                extra={"gemma3.attention.sliding_window": 512}),
    "moe-q4_K": Spec(arch="qwen3moe", wtype=Q.Q4_K, n_expert=4, n_expert_used=2),
    "q6_K-bf16": Spec(arch="llama", wtype=Q.Q6_K, extra={"llama.rope.freq_base": 10000.0}),
    "bf16-arrays": Spec(arch="jamba", wtype=Q.BF16, n_head_kv=[0, 2, 0, 2]),
    "iq4_xs": Spec(wtype=Q.IQ4_XS),
    "mxfp4-big-vocab": Spec(arch="gpt-oss", wtype=Q.MXFP4, tokens=5000),
}


def test_type_table_matches_ggml() -> None:
    for t in GGML_TYPES.values():
        if t.name == "q8_1":
            # gguf-py still lists the old two-float layout (40 B); ggml's block_q8_1 is a half2 +
            # 32 int8 = 36 B. q8_1 is an activation type and never appears in model files.
            assert GGML_QUANT_SIZES[Q(t.id)] == (32, 40) and t.type_size == 36
            continue
        assert GGML_QUANT_SIZES[Q(t.id)] == (t.block_size, t.type_size), t.name
    assert tensor_bytes(Q.Q4_K, 4096 * 4096) == 4096 * 4096 // 256 * 144
    assert cache_bytes_per_element("q8_0") == 34 / 32 and cache_bytes_per_element("q4_0") == 18 / 32
    with pytest.raises(ValueError):
        cache_bytes_per_element("q4_K")  # not a KV cache type


def _theirs(field: object) -> object:
    return field.contents()  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(SPECS))
async def test_matches_gguf_reader(tmp_path: Path, name: str) -> None:
    path = write_gguf(tmp_path / f"{name}.gguf", SPECS[name])
    ours = await read_gguf_file(path)
    theirs = GGUFReader(path)
    assert ours.data_offset == theirs.data_offset
    assert ours.file_size == path.stat().st_size
    assert ours.bytes_read < 100_000  # the header only, never the (sparse) weights
    for key, field in theirs.fields.items():
        if key.startswith("GGUF."):
            continue  # the reader's pseudo-fields (version, counts)
        value = ours.metadata[key]
        if isinstance(value, GGUFArray):
            assert len(value) == len(field.data), key
        elif isinstance(value, float):
            assert value == pytest.approx(_theirs(field), rel=1e-6), key
        else:
            assert value == _theirs(field), key
    assert set(ours.metadata) == {k for k in theirs.fields if not k.startswith("GGUF.")}
    assert len(ours.tensors) == len(theirs.tensors)
    for mine, t in zip(ours.tensors, theirs.tensors, strict=True):
        assert (mine.name, mine.ggml_type, mine.n_elements, mine.n_bytes) == \
            (t.name, int(t.tensor_type), int(t.n_elements), int(t.n_bytes))
        assert list(mine.shape) == [int(d) for d in t.shape]
        assert ours.data_offset + mine.offset == t.data_offset


async def test_header_only_file_describes_more_than_it_holds(tmp_path: Path) -> None:
    spec = Spec(n_layer=8, n_embd=4096, n_ff=14336, n_head=32, n_head_kv=8, n_vocab=32000, wtype=Q.Q4_K)
    path = write_gguf(tmp_path / "h.gguf", spec, header_only=True)
    header = await read_gguf_file(path, initial_bytes=1024)  # forces several growing reads
    assert header.tensor_bytes > 100 * path.stat().st_size
    assert header.tensor("blk.7.ffn_down.weight").shape == (14336, 4096)


def _minimal(n_tensors: int = 0, n_kv: int = 1, version: int = 3) -> bytes:
    key = b"general.architecture"
    body = struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, 5) + b"llama"
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + body


def test_minimal_header_parses() -> None:
    header = parse_gguf_header(_minimal())
    # 24 (magic, version, counts) + 28 (key) + 17 (type, length, "llama") = 69 -> aligned to 32: 96
    assert header.bytes_read == 69
    assert header.architecture == "llama" and header.tensors == [] and header.data_offset == 96


@pytest.mark.parametrize(("data", "reason", "words"), [
    (b"GGML" + bytes(20), "bad_magic", "not a GGUF"),
    (_minimal(version=1), "version", "version 1"),
    (b"GGUF" + struct.pack(">I", 3) + bytes(16), "version", "big-endian"),
    (_minimal(n_tensors=1 << 40), "limit", "tensors"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1 << 50), "limit", "metadata keys"),
    (_minimal()[:-3], "truncated", "truncated"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 60), "limit", "metadata key"),
    (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<I", 99), "bad_type", "value type"),
    (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<IIQ", 9, 4, 1 << 40),
     "limit", "items"),
    (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<IIQIQIQ", 9, 9, 1, 9, 1, 9, 1),
     "limit", "deeper"),
    (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<IQ", 8, 1 << 40), "limit", "string"),
])
def test_hostile_headers_raise_typed_errors(data: bytes, reason: str, words: str) -> None:
    with pytest.raises(GGUFError) as info:
        parse_gguf_header(data)
    assert info.value.reason == reason and words in info.value.message


def _tensor_entry(name: bytes, dims: list[int], ggml_type: int) -> bytes:
    return (struct.pack("<Q", len(name)) + name + struct.pack("<I", len(dims))
            + struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", ggml_type, 0))


def test_bad_tensor_entries() -> None:
    with pytest.raises(GGUFError, match="unknown ggml type 77") as info:
        parse_gguf_header(_minimal(n_tensors=1) + _tensor_entry(b"t", [4], 77))
    assert info.value.reason == "bad_type"
    with pytest.raises(GGUFError, match="dimensions"):
        parse_gguf_header(_minimal(n_tensors=1) + _tensor_entry(b"t", [1] * 9, 0))
    with pytest.raises(GGUFError, match="elements"):
        parse_gguf_header(_minimal(n_tensors=1) + _tensor_entry(b"t", [1 << 40, 1 << 40], 0))


def test_total_bytes_bound_stops_a_huge_but_valid_claim() -> None:
    # A string array whose strings are each legal but together exceed the 64 KiB bound below.
    key = b"tokenizer.ggml.tokens"
    item = struct.pack("<Q", 1000) + b"x" * 1000
    data = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
            + struct.pack("<IIQ", 9, 8, 100) + item * 100)
    limits = GGUFLimits(max_bytes=64 * 1024, keep_array_items=10)
    with pytest.raises(GGUFError) as info:
        parse_gguf_header(data, limits=limits)
    assert info.value.reason == "limit"
    assert len(parse_gguf_header(data, limits=GGUFLimits(keep_array_items=10)).metadata[key.decode()]) == 100


async def test_missing_file_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(GGUFError) as info:
        await read_gguf_file(tmp_path / "absent.gguf")
    assert info.value.reason == "io"


async def test_truncated_file_is_reported(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "t.gguf", Spec(), header_only=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(GGUFError) as info:
        await read_gguf_file(path)
    assert info.value.reason == "truncated"
