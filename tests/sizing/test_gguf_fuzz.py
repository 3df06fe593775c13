"""Fuzz the GGUF header parser: mutated real headers raise GGUFError or parse, nothing else.

Bounds are asserted on what the parser may look at (bytes), not on wall time.
"""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sizing.gguf_factory import Spec, write_gguf
from victor_gui.errors import GGUFError
from victor_gui.sizing.gguf_header import GGUFLimits
from victor_gui.sizing.gguf_parse import parse_gguf_header
from victor_gui.sizing.gguf_strings import walk_strings

# keep_array_items=8: the 40-token vocabulary goes through the fast skipping walk too.
LIMITS = GGUFLimits(max_bytes=256 * 1024, max_array=1 << 16, max_string=1 << 16, max_tensors=4096,
                    keep_array_items=8)
_SEED: bytes | None = None


def seed() -> bytes:
    global _SEED
    if _SEED is None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = write_gguf(Path(tmp) / "seed.gguf",
                              Spec(arch="gemma3", n_layer=3, tokens=40, n_head_kv=[1, 2, 1],
                                   extra={"gemma3.attention.sliding_window": 128,
                                          "general.tags": ["a", "b"]}), header_only=True)
            _SEED = path.read_bytes()
    return _SEED


def check(data: bytes, complete: bool) -> None:
    try:
        header = parse_gguf_header(data, complete=complete, limits=LIMITS)
    except GGUFError as exc:
        assert exc.reason in {"truncated", "bad_magic", "version", "limit", "bad_type", "bad_value"}
        return
    assert header.bytes_read <= LIMITS.max_bytes
    assert len(header.tensors) <= LIMITS.max_tensors


mutation = st.tuples(st.integers(min_value=0, max_value=4095), st.binary(min_size=1, max_size=8))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=6), st.booleans())
def test_overwritten_bytes(mutations: list[tuple[int, bytes]], complete: bool) -> None:
    data = bytearray(seed())
    for offset, patch in mutations:
        offset %= len(data)
        data[offset:offset + len(patch)] = patch
    check(bytes(data), complete)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_truncated_anywhere(cut: int) -> None:
    data = seed()
    check(data[: cut % len(data)], True)


huge = st.sampled_from([0, 1, 255, 1 << 16, 1 << 31, (1 << 32) - 1, 1 << 40, (1 << 64) - 1])


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=4095), huge, st.sampled_from(["<Q", "<I"]))
def test_huge_counts_and_lengths(offset: int, value: int, fmt: str) -> None:
    data = bytearray(seed())
    size = struct.calcsize(fmt)
    offset %= len(data) - size
    data[offset:offset + size] = struct.pack(fmt, value % (1 << (8 * size)))
    check(bytes(data), True)


def _reference_walk(buf: bytes, pos: int, count: int) -> tuple[int, int]:
    for done in range(count):
        if pos + 8 > len(buf):
            return pos, done
        pos += 8 + struct.unpack_from("<Q", buf, pos)[0]
    return pos, count


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=40), st.integers(min_value=0, max_value=2000),
       st.integers(min_value=0, max_value=45))
def test_string_walk_matches_the_plain_loop(items: list[bytes], cut: int, count: int) -> None:
    buf = b"".join(struct.pack("<Q", len(i)) + i for i in items)
    buf = buf[: cut % (len(buf) + 1)]
    assert walk_strings(buf, 0, count) == _reference_walk(buf, 0, count)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_after_magic(tail: bytes) -> None:
    check(b"GGUF" + struct.pack("<I", 3) + tail, True)



# Lengths of every class the compiled pattern must tell apart: empty, short, just under and
# over 255 bytes (a length past one byte is walked by the plain loop); the bytes repeat
# b"\0\0\0\0\0\0\0\x05", so strings hold runs that look like length prefixes.
_FILL = (b"\0" * 7 + b"\x05") * 100


_SHORT_LENGTHS = [0, 1, 2, 3, 5, 7, 8, 9, 12, 200, 254, 255]
_LENGTHS = _SHORT_LENGTHS * 40 + [256, 300]  # a long one in ~1 of 240: most blocks match whole


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_LENGTHS), min_size=250, max_size=700),
       st.integers(min_value=0, max_value=1 << 20), st.integers(min_value=0, max_value=800),
       st.integers(min_value=0, max_value=7))
def test_block_walk_matches_the_plain_loop(lengths: list[int], cut: int, count: int, shift: int) -> None:
    # regex_min=0: the block pattern (256 strings per match) runs on these short arrays too.
    buf = b"".join(struct.pack("<Q", n) + _FILL[shift:shift + n] for n in lengths)
    buf = buf[: cut % (len(buf) + 1)]
    assert walk_strings(buf, 0, count, regex_min=0) == _reference_walk(buf, 0, count)
    assert walk_strings(buf, 0, len(lengths), regex_min=0) == _reference_walk(buf, 0, len(lengths))


def test_a_vocabulary_sized_array_walks_exactly() -> None:
    # 120,000 strings (past the default regex_min): realistic lengths with a long one now and
    # then, and the buffer cut inside the last block and inside the last string.
    lengths = [(i * 7919) % 23 for i in range(120_000)]
    for i in range(5, 120_000, 9973):
        lengths[i] = 256 + i % 500
    buf = b"".join(struct.pack("<Q", n) + _FILL[:n] for n in lengths)
    assert walk_strings(buf, 0, len(lengths)) == (len(buf), len(lengths))
    for cut in (len(buf) - 3, len(buf) - 4000, len(buf) // 2):
        assert walk_strings(buf[:cut], 0, len(lengths)) == _reference_walk(buf[:cut], 0, len(lengths))
