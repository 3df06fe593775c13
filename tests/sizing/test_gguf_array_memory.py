"""A GGUF header full of number arrays costs about its own size in memory (issue 16, finding 10).

Before: every array of up to ``keep_array_items`` numbers became a Python list of ints (8 bytes
of pointer plus a 28-byte int per 2-byte int16), and an array of arrays built all its inner
lists before summarising, so a header of int16 arrays took ~20x its size. Now at most
``keep_total_items`` items per header become Python objects; further number arrays are kept
compactly (``array.array``, the file's own bytes), and further string or nested arrays are
walked and counted, not built.
"""

from __future__ import annotations

import struct
import tracemalloc

from victor_gui.sizing.architecture import from_gguf
from victor_gui.sizing.gguf_header import GGUFArray, GGUFLimits
from victor_gui.sizing.gguf_parse import parse_gguf_header

T_INT16, T_UINT32, T_STRING, T_ARRAY = 3, 4, 8, 9
ITEMS = 4096  # each array just at the default keep_array_items


def _key(name: str) -> bytes:
    raw = name.encode()
    return struct.pack("<Q", len(raw)) + raw


def _int16_array(values: int) -> bytes:
    return struct.pack("<IQ", T_INT16, values) + struct.pack(f"<{values}h", *range(1000, 1000 + values))


def _header(kvs: list[bytes]) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs)


def _arch_kvs() -> list[bytes]:
    def u32(name: str, value: int) -> bytes:
        return _key(name) + struct.pack("<II", T_UINT32, value)

    arch = _key("general.architecture") + struct.pack("<I", T_STRING) + _key("llama")
    per_layer = _key("llama.attention.head_count_kv") + struct.pack("<I", T_ARRAY) \
        + struct.pack("<IQ", T_UINT32, 4) + struct.pack("<4I", 8, 8, 8, 2)
    return [arch, u32("llama.block_count", 4), u32("llama.embedding_length", 512),
            u32("llama.attention.head_count", 8), u32("llama.context_length", 2048), per_layer]


def _peak_while_parsing(data: bytes, limits: GGUFLimits | None = None) -> tuple[int, object]:
    tracemalloc.start()
    try:
        header = parse_gguf_header(data, limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, header


def test_many_int16_arrays_cost_about_their_bytes() -> None:
    # 1024 keys of 4096 int16 each (8 MiB of arrays), then the keys the estimator needs, whose
    # per-layer array comes after the budget is spent and must still be usable.
    arrays = [_key(f"junk.{i}") + struct.pack("<I", T_ARRAY) + _int16_array(ITEMS) for i in range(1024)]
    data = _header(arrays + _arch_kvs())
    array_bytes = 1024 * ITEMS * 2
    peak, header = _peak_while_parsing(data)
    assert peak <= 2 * array_bytes, f"peak {peak / 2**20:.1f} MiB for {array_bytes / 2**20:.0f} MiB of arrays"
    md = header.metadata  # type: ignore[attr-defined]
    assert list(md["junk.0"][:3]) == [1000, 1001, 1002] and len(md["junk.1023"]) == ITEMS
    assert list(md["junk.1023"][-2:]) == [1000 + ITEMS - 2, 1000 + ITEMS - 1]
    arch = from_gguf(header)  # type: ignore[arg-type]
    assert arch.n_head_kv == [8, 8, 8, 2]


def test_an_array_of_int16_arrays_is_not_built_past_the_budget() -> None:
    outer = 2048
    value = struct.pack("<I", T_ARRAY) + struct.pack("<IQ", T_ARRAY, outer) + _int16_array(ITEMS) * outer
    data = _header([_key("junk.nested") + value, *_arch_kvs()])
    array_bytes = outer * ITEMS * 2
    peak, header = _peak_while_parsing(data)
    assert peak <= 2 * array_bytes, f"peak {peak / 2**20:.1f} MiB for {array_bytes / 2**20:.0f} MiB of arrays"
    nested = header.metadata["junk.nested"]  # type: ignore[attr-defined]
    assert len(nested) == outer and list(nested[-1][:2]) == [1000, 1001] and len(nested[-1]) == ITEMS
    assert from_gguf(header).n_head_kv == [8, 8, 8, 2]  # type: ignore[arg-type]
    # An outer array longer than the budget is walked and counted, its inner arrays never built.
    peak, header = _peak_while_parsing(data, GGUFLimits(keep_total_items=1000))
    assert peak <= array_bytes // 4
    nested = header.metadata["junk.nested"]  # type: ignore[attr-defined]
    assert isinstance(nested, GGUFArray) and len(nested) == outer
