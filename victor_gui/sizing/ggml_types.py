"""ggml tensor types: block size and bytes per block, the only facts needed to size a tensor.

Numbers are ggml's own (``ggml.c`` type traits; the ``gguf`` package's ``GGML_QUANT_SIZES``
mirrors them and the tests cross-check every entry). Bytes of a tensor = elements / block size
× block bytes; a row whose length is not a multiple of the block size cannot exist in a valid
file, and :func:`tensor_bytes` rounds up rather than trusting it.
"""

from __future__ import annotations

from typing import NamedTuple


class GGMLType(NamedTuple):
    """One ggml type: id as stored in GGUF, name, elements per block, bytes per block."""

    id: int
    name: str
    block_size: int
    type_size: int


_TYPES = (
    GGMLType(0, "f32", 1, 4),
    GGMLType(1, "f16", 1, 2),
    GGMLType(2, "q4_0", 32, 18),
    GGMLType(3, "q4_1", 32, 20),
    GGMLType(6, "q5_0", 32, 22),
    GGMLType(7, "q5_1", 32, 24),
    GGMLType(8, "q8_0", 32, 34),
    GGMLType(9, "q8_1", 32, 36),
    GGMLType(10, "q2_K", 256, 84),
    GGMLType(11, "q3_K", 256, 110),
    GGMLType(12, "q4_K", 256, 144),
    GGMLType(13, "q5_K", 256, 176),
    GGMLType(14, "q6_K", 256, 210),
    GGMLType(15, "q8_K", 256, 292),
    GGMLType(16, "iq2_xxs", 256, 66),
    GGMLType(17, "iq2_xs", 256, 74),
    GGMLType(18, "iq3_xxs", 256, 98),
    GGMLType(19, "iq1_s", 256, 50),
    GGMLType(20, "iq4_nl", 32, 18),
    GGMLType(21, "iq3_s", 256, 110),
    GGMLType(22, "iq2_s", 256, 82),
    GGMLType(23, "iq4_xs", 256, 136),
    GGMLType(24, "i8", 1, 1),
    GGMLType(25, "i16", 1, 2),
    GGMLType(26, "i32", 1, 4),
    GGMLType(27, "i64", 1, 8),
    GGMLType(28, "f64", 1, 8),
    GGMLType(29, "iq1_m", 256, 56),
    GGMLType(30, "bf16", 1, 2),
    GGMLType(34, "tq1_0", 256, 54),
    GGMLType(35, "tq2_0", 256, 66),
    GGMLType(39, "mxfp4", 32, 17),
)

GGML_TYPES: dict[int, GGMLType] = {t.id: t for t in _TYPES}
GGML_TYPES_BY_NAME: dict[str, GGMLType] = {t.name.lower(): t for t in _TYPES}

# KV-cache element sizes in bytes (llama.cpp -ctk/-ctv accept these types).
CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl")


def cache_bytes_per_element(name: str) -> float:
    """Bytes per cached element for a KV cache type name (q8_0 -> 34/32 = 1.0625)."""
    t = GGML_TYPES_BY_NAME.get(name.lower())
    if t is None or name.lower() not in CACHE_TYPES:
        raise ValueError(f"unknown KV cache type {name!r}; expected one of {', '.join(CACHE_TYPES)}")
    return t.type_size / t.block_size


def tensor_bytes(type_id: int, n_elements: int) -> int:
    """Bytes a tensor of ``n_elements`` of ggml type ``type_id`` occupies (blocks rounded up)."""
    t = GGML_TYPES.get(type_id)
    if t is None:
        raise KeyError(type_id)
    return -(-n_elements // t.block_size) * t.type_size


def type_name(type_id: int) -> str:
    """The ggml name of a type id, or ``type<id>`` for ids this table does not know."""
    t = GGML_TYPES.get(type_id)
    return t.name if t else f"type{type_id}"
