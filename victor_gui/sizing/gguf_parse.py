"""The binary walk of a GGUF header: magic and version, metadata keys and values, the tensor
table, every count, length and nesting depth checked against :class:`~.gguf_header.GGUFLimits`
*before* anything is allocated. The parser is resumable: when its buffer ends inside the header
it raises :class:`NeedMore` and goes on from the entry it was reading when fed a longer prefix
(:mod:`.gguf_reader` grows its reads that way).
"""

from __future__ import annotations

import array
import math
import struct
import sys
from typing import Any

from victor_gui.errors import GGUFError
from victor_gui.sizing.ggml_types import GGML_TYPES
from victor_gui.sizing.gguf_header import (
    DEFAULT_ALIGNMENT,
    MAGIC,
    GGUFArray,
    GGUFHeader,
    GGUFLimits,
    TensorInfo,
)
from victor_gui.sizing.gguf_strings import walk_strings

# GGUF metadata value types.
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL = range(8)
T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = 8, 9, 10, 11, 12

_SCALARS: dict[int, struct.Struct] = {
    T_UINT8: struct.Struct("<B"), T_INT8: struct.Struct("<b"), T_UINT16: struct.Struct("<H"),
    T_INT16: struct.Struct("<h"), T_UINT32: struct.Struct("<I"), T_INT32: struct.Struct("<i"),
    T_FLOAT32: struct.Struct("<f"), T_BOOL: struct.Struct("<?"), T_UINT64: struct.Struct("<Q"),
    T_INT64: struct.Struct("<q"), T_FLOAT64: struct.Struct("<d"),
}
_FMT = {k: s.format[-1] for k, s in _SCALARS.items()}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_U32U64U64 = struct.Struct("<IQQ")
_U32U64 = struct.Struct("<IQ")
# The dimensions of a tensor entry, by their count (ggml has at most 4; the default bound is 8).
_DIMS = tuple(struct.Struct(f"<{n}Q") for n in range(9))
# array.array type codes of the GGUF number types, where the sizes agree (bool kept as bytes).
_COMPACT = {t: code for t, code in ((T_UINT8, "B"), (T_INT8, "b"), (T_UINT16, "H"), (T_INT16, "h"),
                                    (T_UINT32, "I"), (T_INT32, "i"), (T_FLOAT32, "f"), (T_BOOL, "B"),
                                    (T_UINT64, "Q"), (T_INT64, "q"), (T_FLOAT64, "d"))
            if array.array(code).itemsize == _SCALARS[t].size}


class NeedMore(Exception):
    """The buffer ended inside the header; ``needed`` is the smallest total length to retry with."""

    def __init__(self, needed: int) -> None:
        self.needed = needed


class HeaderParser:
    """A resumable parser: when the buffer runs out it rewinds to the start of the entry it was
    reading, so :meth:`feed` with more bytes continues there instead of starting over (the
    vocabulary of a big model is walked once, not once per growing read)."""

    __slots__ = ("buf", "complete", "counts", "kept", "limits", "metadata", "pos", "tensors", "version")

    def __init__(self, buf: bytes, complete: bool, limits: GGUFLimits) -> None:
        self.limits = limits
        self.pos = 0
        self.kept = 0  # array items made Python objects so far (see GGUFLimits.keep_total_items)
        self.version = 0
        self.counts: tuple[int, int] | None = None
        self.metadata: dict[str, Any] = {}
        self.tensors: list[TensorInfo] = []
        self.buf = b""
        self.complete = False
        self.feed(buf, complete)

    def feed(self, buf: bytes, complete: bool) -> None:
        """Replace the buffer with a longer prefix of the same file."""
        if len(buf) > self.limits.max_bytes:  # never look past the bound, however much was handed in
            buf, complete = buf[: self.limits.max_bytes], False
        self.buf = buf
        self.complete = complete

    def need(self, n: int) -> None:
        """Make sure ``n`` more bytes are in the buffer: :class:`NeedMore` when they may follow,
        a :class:`GGUFError` past the bound or the end of a complete file."""
        end = self.pos + n
        if end <= len(self.buf):
            return
        if end > self.limits.max_bytes:
            raise GGUFError(f"GGUF header is larger than the {self.limits.max_bytes} byte bound "
                            f"(needs at least {end})", reason="limit")
        if self.complete:
            raise GGUFError(f"GGUF file is truncated: header needs {end} bytes, file has {len(self.buf)}",
                            reason="truncated")
        raise NeedMore(end)

    def u32(self) -> int:
        """The next little-endian uint32."""
        self.need(4)
        (v,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def u64(self) -> int:
        """The next little-endian uint64."""
        self.need(8)
        (v,) = _U64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(v)

    def string(self, limit: int, what: str) -> str:
        """The next length-prefixed string (at most ``limit`` bytes; ``what`` names it in errors)."""
        n = self.u64()
        if n > limit:
            raise GGUFError(f"GGUF {what} claims {n} bytes (limit {limit})", reason="limit")
        self.need(n)
        raw = self.buf[self.pos:self.pos + n]
        self.pos += n
        return raw.decode("utf-8", "replace")

    def value(self, vtype: int, depth: int, key: str) -> Any:
        """The next metadata value of type ``vtype`` (the value of ``key``)."""
        s = _SCALARS.get(vtype)
        if s is not None:
            self.need(s.size)
            (v,) = s.unpack_from(self.buf, self.pos)
            self.pos += s.size
            return v
        if vtype == T_STRING:
            return self.string(self.limits.max_string, f"string value of {key!r}")
        if vtype == T_ARRAY:
            return self.array(depth + 1, key)
        raise GGUFError(f"GGUF key {key!r} has unknown value type {vtype}", reason="bad_type")

    def _keep(self, count: int) -> bool:
        """Charge ``count`` items to the header's budget of kept Python objects, if it has room."""
        if self.kept + count > self.limits.keep_total_items:
            return False
        self.kept += count
        return True

    def _numbers(self, itype: int, count: int, start: int) -> Any:
        """A kept number array: a list while the budget lasts, then the file's bytes as an array."""
        if self._keep(count):
            return list(struct.unpack_from(f"<{count}{_FMT[itype]}", self.buf, start))
        code = _COMPACT.get(itype)
        if code is None:
            return GGUFArray(itype, count)
        numbers = array.array(code)
        numbers.frombytes(self.buf[start:start + count * _SCALARS[itype].size])
        if sys.byteorder == "big":
            numbers.byteswap()
        return numbers

    def array(self, depth: int, key: str, keep: bool = True) -> Any:
        """An array value; ``keep=False`` walks it (bounds checked) and returns only its count."""
        if depth > self.limits.max_depth:
            raise GGUFError(f"GGUF key {key!r} nests arrays deeper than {self.limits.max_depth}",
                            reason="limit")
        itype = self.u32()
        count = self.u64()
        if count > self.limits.max_array:
            raise GGUFError(f"GGUF array {key!r} claims {count} items (limit {self.limits.max_array})",
                            reason="limit")
        keep = keep and count <= self.limits.keep_array_items  # longer: counted (tokens, scores)
        s = _SCALARS.get(itype)
        if s is not None:
            size = s.size * count
            self.need(size)
            self.pos += size
            return self._numbers(itype, count, self.pos - size) if keep else GGUFArray(itype, count)
        if itype == T_STRING:
            if not (keep and self._keep(count)):
                self._skip_strings(count, key)
                return GGUFArray(T_STRING, count)
            return [self.string(self.limits.max_string, f"string in {key!r}") for _ in range(count)]
        if itype == T_ARRAY:
            if keep and self._keep(count):
                return [self.array(depth + 1, key) for _ in range(count)]
            for _ in range(count):  # walked, never built: a list of 16M summaries is no summary
                self.array(depth + 1, key, keep=False)
            return GGUFArray(itype, count)
        raise GGUFError(f"GGUF array {key!r} has unknown item type {itype}", reason="bad_type")

    def _skip_strings(self, count: int, key: str) -> None:
        # The hot loop of a real header (~400k tokens and merges): exact u64 lengths, no bounds
        # test per item; running off the buffer raises struct.error, handled once, below.
        start = self.pos
        pos, done = walk_strings(self.buf, start, count)
        if done == count and pos <= len(self.buf):
            self.pos = pos
            return
        if done and pos < len(self.buf) + self.limits.max_bytes:
            # Ask for the rest at the average item size seen so far, so one more read suffices.
            guess = pos + (count - done) * ((pos - start) // done + 1)
        else:
            guess = pos + 8
        self.pos = pos
        self.need(max(8, min(guess, self.limits.max_bytes) - pos))

    def header(self) -> GGUFHeader:
        """The parsed header, resuming after the entries already read; :class:`NeedMore` when the
        buffer ends first."""
        lim = self.limits
        if self.counts is None:
            self.pos = 0
            self.need(4)
            if self.buf[:4] != MAGIC:
                raise GGUFError(f"not a GGUF file (magic {bytes(self.buf[:4])!r})", reason="bad_magic")
            self.pos = 4
            version = self.u32()
            if version not in (2, 3):
                if version & 0xFFFF == 0 and version >> 16:
                    raise GGUFError("big-endian GGUF files are not supported", reason="version")
                raise GGUFError(f"unsupported GGUF version {version} (2 and 3 are read)", reason="version")
            n_tensors = self.u64()
            n_kv = self.u64()
            if n_tensors > lim.max_tensors:
                raise GGUFError(f"GGUF claims {n_tensors} tensors (limit {lim.max_tensors})", reason="limit")
            if n_kv > lim.max_kv:
                raise GGUFError(f"GGUF claims {n_kv} metadata keys (limit {lim.max_kv})", reason="limit")
            self.version, self.counts = version, (n_tensors, n_kv)
        n_tensors, n_kv = self.counts
        metadata, tensors = self.metadata, self.tensors
        while len(metadata) < n_kv:
            mark, kept = self.pos, self.kept  # checkpoint: a NeedMore rewinds here
            try:
                key = self.string(lim.max_key, "metadata key")
                if key in metadata:
                    raise GGUFError(f"GGUF metadata key {key!r} appears twice", reason="bad_value")
                metadata[key] = self.value(self.u32(), 0, key)
            except NeedMore:
                self.pos, self.kept = mark, kept
                raise
        self._tensors_fast(n_tensors)
        while len(tensors) < n_tensors:
            mark = self.pos
            try:
                tensors.append(self._tensor())
            except NeedMore:
                self.pos = mark
                raise
        alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if (not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1)
                or alignment > 1 << 20):
            raise GGUFError(f"GGUF general.alignment {alignment!r} is not a power of two", reason="bad_value")
        data_offset = -(-self.pos // alignment) * alignment
        return GGUFHeader(self.version, metadata, tensors, alignment, data_offset, bytes_read=self.pos)

    def _tensors_fast(self, n_tensors: int) -> None:
        """Read tensor entries while each one is whole in the buffer and plainly valid.

        One pass with local names and one ``unpack_from`` per field group, instead of a method
        call per field (a 1,000-tensor table took ~10 ms that way). It stops at the first entry
        that runs past the buffer or breaks a rule, leaving it to :meth:`_tensor`, which reports
        exactly what is wrong (or how many bytes are missing).
        """
        buf, pos, tensors = self.buf, self.pos, self.tensors
        end = len(buf)
        max_name = self.limits.max_key
        max_dims = min(self.limits.max_dims, len(_DIMS) - 1)
        u64, u32, type_offset, dims = _U64.unpack_from, _U32.unpack_from, _U32U64.unpack_from, _DIMS
        types, new, prod = GGML_TYPES, tuple.__new__, math.prod
        while len(tensors) < n_tensors and pos + 12 <= end:
            (n,) = u64(buf, pos)
            p = pos + 8 + n
            if n > max_name or p + 4 > end:
                break
            (n_dims,) = u32(buf, p)
            p += 4
            if n_dims > max_dims or p + 8 * n_dims + 12 > end:
                break
            shape = dims[n_dims].unpack_from(buf, p)
            p += 8 * n_dims
            ggml_type, offset = type_offset(buf, p)
            gt = types.get(ggml_type)
            n_elements = prod(shape)
            if gt is None or n_elements >= 1 << 62:
                break
            name = buf[pos + 8:pos + 8 + n].decode("utf-8", "replace")
            tensors.append(new(TensorInfo, (name, shape, ggml_type, offset, n_elements,
                                            -(-n_elements // gt.block_size) * gt.type_size)))
            pos = p + 12
        self.pos = pos

    def _tensor(self) -> TensorInfo:
        name = self.string(self.limits.max_key, "tensor name")
        n_dims = self.u32()
        if n_dims > self.limits.max_dims:
            raise GGUFError(f"tensor {name!r} claims {n_dims} dimensions (limit {self.limits.max_dims})",
                            reason="limit")
        self.need(8 * n_dims)
        shape = struct.unpack_from(f"<{n_dims}Q", self.buf, self.pos)
        self.pos += 8 * n_dims
        ggml_type = self.u32()
        offset = self.u64()
        gt = GGML_TYPES.get(ggml_type)
        if gt is None:
            raise GGUFError(f"tensor {name!r} has unknown ggml type {ggml_type}", reason="bad_type")
        n = 1
        for d in shape:
            n *= d
        if n >= 1 << 62:
            raise GGUFError(f"tensor {name!r} claims {n} elements", reason="bad_value")
        return TensorInfo(name, tuple(shape), ggml_type, offset, n, -(-n // gt.block_size) * gt.type_size)


def parse_gguf_header(data: bytes, *, complete: bool = True, limits: GGUFLimits | None = None) -> GGUFHeader:
    """Parse a header from bytes (the start of a file; ``complete`` if ``data`` is the whole file).

    Pure CPU work on a buffer already in memory. Raises :class:`GGUFError` on any problem; when
    ``complete`` is false and the buffer ends inside the header it raises ``reason="truncated"``
    too, with the byte count needed in the message.
    """
    try:
        return HeaderParser(data, complete, limits or GGUFLimits()).header()
    except NeedMore as more:
        raise GGUFError(f"GGUF header continues past {len(data)} bytes (needs {more.needed})",
                        reason="truncated") from None
