"""A vocabulary is skipped, never decoded: the estimate comes from counts and the tensor table.

Issue 17 part 6: a header walk that skips token strings without decoding them. Two behaviours
show it without timing anything: a header whose 130,000 token strings are not UTF-8 at all
sizes exactly like the same header with readable tokens (nothing tried to decode them), and
parsing it allocates far less than one Python object per token would.
"""

from __future__ import annotations

import dataclasses
import struct
import tracemalloc
from pathlib import Path

from tests.sizing.gguf_factory import Spec, write_gguf
from victor_gui.sizing.fit import FitOptions, estimate_fit
from victor_gui.sizing.gguf_header import GGUFArray
from victor_gui.sizing.gguf_parse import parse_gguf_header
from victor_gui.sizing.gguf_strings import _short_strings
from victor_gui.sizing.hardware import GpuDevice, RamInfo
from victor_gui.sizing.sources import load_model

GiB = 1 << 30
N_TOKENS = 130_000  # a 128k-class vocabulary: past the size where the compiled walk takes over
N_MERGES = 20_000
KEY = b"tokenizer.ggml.tokens"


def _write(path: Path) -> bytes:
    spec = Spec(n_layer=4, n_embd=256, n_vocab=N_TOKENS, tokens=N_TOKENS,
                extra={"tokenizer.ggml.merges": [f"t{i} u{i}" for i in range(N_MERGES)]})
    return write_gguf(path, spec, header_only=True).read_bytes()


def _spoil_tokens(data: bytes) -> bytes:
    """Every token's bytes replaced by 0xFF (never valid UTF-8), lengths and layout unchanged."""
    out = bytearray(data)
    at = data.index(struct.pack("<Q", len(KEY)) + KEY) + 8 + len(KEY)
    vtype, itype, count = struct.unpack_from("<IIQ", data, at)
    assert (vtype, itype, count) == (9, 8, N_TOKENS)
    pos = at + 16
    for _ in range(count):
        (n,) = struct.unpack_from("<Q", data, pos)
        out[pos + 8:pos + 8 + n] = b"\xff" * n
        pos += 8 + n
    return bytes(out)


async def test_tokens_that_are_not_utf8_size_like_readable_ones(tmp_path: Path) -> None:
    readable = _write(tmp_path / "readable.gguf")
    spoiled = _spoil_tokens(readable)
    assert spoiled != readable and len(spoiled) == len(readable)
    with_bad = tmp_path / "not-utf8.gguf"
    with_bad.write_bytes(spoiled)
    good, bad = await load_model(str(tmp_path / "readable.gguf")), await load_model(str(with_bad))
    assert dataclasses.replace(bad.arch, source="") == dataclasses.replace(good.arch, source="")
    assert bad.arch.n_vocab == N_TOKENS
    gpus = [GpuDevice("nvidia", "24 GiB", 24 * GiB, 23 * GiB, index=0)]
    opts = FitOptions(n_ctx=8192)
    assert estimate_fit(bad.arch, gpus, RamInfo(64 * GiB, 48 * GiB), opts) \
        == estimate_fit(good.arch, gpus, RamInfo(64 * GiB, 48 * GiB), opts)
    tokens = parse_gguf_header(spoiled).metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, GGUFArray) and len(tokens) == N_TOKENS


def test_a_vocabulary_costs_no_python_object_per_token(tmp_path: Path) -> None:
    data = _write(tmp_path / "m.gguf")
    _short_strings()  # the compiled pattern is built once per process; not part of the parse
    tracemalloc.start()
    try:
        header = parse_gguf_header(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(header.metadata["tokenizer.ggml.merges"], GGUFArray)
    # 150,000 strings as bytes or str objects would take ~50 bytes each (7+ MiB); the parse
    # allocates a small fraction of that: the metadata, the tensor table, nothing per token.
    assert peak < 512 * 1024, f"{peak} bytes allocated while parsing"
