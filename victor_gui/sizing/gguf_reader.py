"""Read the header of a GGUF file (metadata and tensor table), never the weights.

The header is everything an estimator needs: ``{arch}.*`` hyper-parameters and, per tensor, the
name, shape, ggml type and offset, from which exact sizes follow. Sources:

* a local path: read in a worker thread, in growing chunks, so a 100 GB file costs a few MB;
* an http(s) URL: HTTP range requests with async httpx, growing the range until the tensor
  table ends (as gguf-parser-go does). A server that ignores ``Range`` is read as a stream and
  cut off at the bound, never downloaded whole.

The file may be hostile. Every count, length and nesting depth is checked against
:class:`GGUFLimits` *before* anything is allocated, and the total bytes looked at are capped
(64 MiB by default). Every violation raises :class:`~victor_gui.errors.GGUFError` with a
``reason`` word; nothing else escapes.
"""

from __future__ import annotations

import array
import math
import os
import re
import stat
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from victor_gui.errors import GGUFError
from victor_gui.sizing.ggml_types import GGML_TYPES, type_name

if TYPE_CHECKING:  # httpx is imported where a URL is read: `fit` on a local file needs none of it
    import httpx

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MiB = 1 << 20

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


@dataclass(frozen=True, slots=True)
class GGUFLimits:
    """Bounds a header must respect; real files sit far below every one of them."""

    max_tensors: int = 1 << 16  # DeepSeek-V3 has ~1,150 tensors
    max_kv: int = 1 << 16
    max_string: int = 8 * MiB  # chat templates reach ~100 KB
    max_key: int = 1 << 16
    max_array: int = 1 << 24  # vocabularies reach ~260k tokens, merges ~500k
    max_depth: int = 2  # an array of arrays, no deeper
    max_dims: int = 8  # ggml has 4
    max_bytes: int = 64 * MiB  # total header bytes looked at
    keep_array_items: int = 1 << 12  # longer arrays are counted, not kept (see GGUFArray)
    # Array items kept as Python objects in one header (a Python int costs ~18x an int16 of
    # the file). Past this, number arrays are kept compactly (array.array) and string or
    # nested arrays are counted, so memory stays near the header's own size.
    keep_total_items: int = 1 << 16


@dataclass(frozen=True, slots=True)
class GGUFArray:
    """A long array (tokens, merges, scores) summarised as its item type and length.

    A vocabulary as Python objects costs more time and memory than the whole estimate (and a
    hostile file could use it to amplify memory); the estimator only needs the counts.
    """

    item_type: int
    count: int

    def __len__(self) -> int:
        return self.count


class TensorInfo(NamedTuple):
    """One tensor-table entry: ``shape`` is ggml order (ne0 first), ``offset`` relative to the data.

    A named tuple rather than a frozen dataclass: a big model has ~1,000 entries, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost 4x as much per entry.
    """

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    n_elements: int
    n_bytes: int

    @property
    def type_name(self) -> str:
        return type_name(self.ggml_type)


@dataclass(slots=True)
class GGUFHeader:
    """A parsed header: version, metadata, tensor table and where the data would start."""

    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    alignment: int
    data_offset: int
    bytes_read: int = 0
    file_size: int | None = None
    source: str = ""
    _by_name: dict[str, TensorInfo] = field(default_factory=dict, repr=False)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)

    def tensor(self, name: str) -> TensorInfo | None:
        if not self._by_name:
            self._by_name = {t.name: t for t in self.tensors}
        return self._by_name.get(name)


class _NeedMore(Exception):
    """The buffer ended inside the header; ``needed`` is the smallest total length to retry with."""

    def __init__(self, needed: int) -> None:
        self.needed = needed


def _walk_plain(buf: bytes, pos: int, count: int) -> tuple[int, int]:
    """Skip ``count`` length-prefixed strings from ``pos``: (end position, strings fully read).

    Unrolled by eight, which saves a fifth of the interpreter's loop overhead; a block that
    runs off the buffer is redone one string at a time to find exactly where it stopped.
    """
    unpack = _U64.unpack_from
    done = 0
    mark = pos
    try:
        for block in range(count >> 3):
            mark = pos
            pos += 8 + unpack(buf, pos)[0]
            pos += 8 + unpack(buf, pos)[0]
            pos += 8 + unpack(buf, pos)[0]
            pos += 8 + unpack(buf, pos)[0]
            pos += 8 + unpack(buf, pos)[0]
            pos += 8 + unpack(buf, pos)[0]
            pos += 8 + unpack(buf, pos)[0]
            pos += 8 + unpack(buf, pos)[0]
            done = (block + 1) << 3
        mark = pos
    except (struct.error, OverflowError):
        pos = mark
    try:
        while done < count:
            pos += 8 + unpack(buf, pos)[0]
            done += 1
    except (struct.error, OverflowError):
        pass
    return pos, done


# Long string arrays (a vocabulary, its merges) are walked by the regular-expression engine, in
# C: one alternative per length byte, ``<n> 0*7 .{n}``, matches exactly one string of n < 256
# bytes, and a block of _BLOCK of them is matched at once. That is exact (every alternative is
# the string's own layout, nothing is searched for) and about twice as fast as the loop above;
# a block holding a longer string, or running off the buffer, is walked by the loop instead.
# Compiling the pattern costs ~10 ms, so it is done once per process, and only for arrays long
# enough to repay it.
_SHORT = 256
_BLOCK = 256
_REGEX_MIN = 100_000
_short_block: re.Pattern[bytes] | None = None


def _short_strings() -> re.Pattern[bytes]:
    """The compiled pattern of :data:`_BLOCK` strings of fewer than :data:`_SHORT` bytes."""
    global _short_block
    if _short_block is None:
        # The seven zero bytes are raw NULs, not escapes: the pattern's parse is half its compile.
        one = b"|".join(re.escape(bytes([n])) + b"\0" * 7 + (b".{%d}" % n if n else b"")
                        for n in range(_SHORT))
        _short_block = re.compile(b"(?s:(?:%s){%d}+)" % (one, _BLOCK))
    return _short_block


def _walk_strings(buf: bytes, pos: int, count: int, regex_min: int = _REGEX_MIN) -> tuple[int, int]:
    """Skip ``count`` length-prefixed strings from ``pos`` without decoding or copying any:
    (end position, strings fully read; a string whose data runs off the buffer is counted).
    Arrays of ``regex_min`` strings or more go through the compiled pattern."""
    done = 0
    if count >= regex_min:
        match = _short_strings().match
        while count - done >= _BLOCK:
            found = match(buf, pos)
            if found is not None:
                pos = found.end()
                done += _BLOCK
                continue
            pos, walked = _walk_plain(buf, pos, _BLOCK)
            done += walked
            if walked < _BLOCK:  # the buffer ends inside this block
                return pos, done
    pos, walked = _walk_plain(buf, pos, count - done)
    return pos, done + walked


class _Parser:
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
        end = self.pos + n
        if end <= len(self.buf):
            return
        if end > self.limits.max_bytes:
            raise GGUFError(f"GGUF header is larger than the {self.limits.max_bytes} byte bound "
                            f"(needs at least {end})", reason="limit")
        if self.complete:
            raise GGUFError(f"GGUF file is truncated: header needs {end} bytes, file has {len(self.buf)}",
                            reason="truncated")
        raise _NeedMore(end)

    def u32(self) -> int:
        self.need(4)
        (v,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def u64(self) -> int:
        self.need(8)
        (v,) = _U64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(v)

    def string(self, limit: int, what: str) -> str:
        n = self.u64()
        if n > limit:
            raise GGUFError(f"GGUF {what} claims {n} bytes (limit {limit})", reason="limit")
        self.need(n)
        raw = self.buf[self.pos:self.pos + n]
        self.pos += n
        return raw.decode("utf-8", "replace")

    def value(self, vtype: int, depth: int, key: str) -> Any:
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
        pos, done = _walk_strings(self.buf, start, count)
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
            mark, kept = self.pos, self.kept  # checkpoint: a _NeedMore rewinds here
            try:
                key = self.string(lim.max_key, "metadata key")
                if key in metadata:
                    raise GGUFError(f"GGUF metadata key {key!r} appears twice", reason="bad_value")
                metadata[key] = self.value(self.u32(), 0, key)
            except _NeedMore:
                self.pos, self.kept = mark, kept
                raise
        self._tensors_fast(n_tensors)
        while len(tensors) < n_tensors:
            mark = self.pos
            try:
                tensors.append(self._tensor())
            except _NeedMore:
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
        return _Parser(data, complete, limits or GGUFLimits()).header()
    except _NeedMore as more:
        raise GGUFError(f"GGUF header continues past {len(data)} bytes (needs {more.needed})",
                        reason="truncated") from None


def _grow(current: int, needed: int, limits: GGUFLimits) -> int:
    # At least doubling keeps the number of reads logarithmic; never ask past the bound.
    return min(max(needed + 256 * 1024, current * 2), limits.max_bytes)


def _try_parse(parser: _Parser, buf: bytes, complete: bool) -> GGUFHeader | int:
    parser.feed(buf, complete)
    try:
        return parser.header()
    except _NeedMore as more:
        return more.needed


def _not_a_file(path: Path, mode: int) -> GGUFError:
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    return GGUFError(f"{path} is not a regular file ({kind}); a GGUF model is a file", reason="not_a_file")


def open_regular_file(path: Path) -> tuple[int, int]:
    """Open ``path`` for reading only if it is a regular file: (descriptor, size).

    A FIFO is refused from its ``stat``, before any open: opening one for reading waits for a
    writer, in a thread nothing can interrupt (``fit`` hung through Ctrl-C). The open itself is
    non-blocking and the descriptor checked again, so a path swapped for a FIFO in between
    cannot hang it either.
    """
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise _not_a_file(path, mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_a_file(path, info.st_mode)
        return fd, info.st_size
    except BaseException:
        os.close(fd)
        raise


def _read_file(path: Path, limits: GGUFLimits, initial: int) -> GGUFHeader:
    try:
        fd, size = open_regular_file(path)
        with os.fdopen(fd, "rb") as fh:
            buf = fh.read(min(initial, limits.max_bytes))
            parser = _Parser(b"", False, limits)
            while True:
                result = _try_parse(parser, buf, len(buf) >= size)
                if isinstance(result, GGUFHeader):
                    result.file_size = size
                    result.source = str(path)
                    return result
                want = _grow(len(buf), result, limits)
                buf += fh.read(want - len(buf))
    except OSError as exc:
        raise GGUFError(f"cannot read {path}: {exc.strerror or exc}", reason="io") from exc


async def read_gguf_file(path: str | Path, *, limits: GGUFLimits | None = None,
                         initial_bytes: int = 16 * MiB) -> GGUFHeader:
    """Read the header of a local GGUF file in a worker thread (only the header bytes are read).

    The first read is generous (16 MiB holds the header of every common model, vocabulary
    included): reading a few MB more costs less than walking a vocabulary a second time.
    """
    import asyncio  # here, not at the top: `fit` on a local file runs without an event loop

    return await asyncio.to_thread(read_gguf_file_sync, path, limits=limits, initial_bytes=initial_bytes)


def read_gguf_file_sync(path: str | Path, *, limits: GGUFLimits | None = None,
                        initial_bytes: int = 16 * MiB) -> GGUFHeader:
    """:func:`read_gguf_file` in the calling thread: blocking file I/O, for code with no event
    loop to keep responsive (a one-shot command) or already in a worker thread."""
    return _read_file(Path(path), limits or GGUFLimits(), initial_bytes)


def header_client(headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """A client for reading a remote file's header: redirects followed (the Hub answers from a
    CDN; httpx drops ``Authorization`` when a redirect leaves the origin), and every reply
    bounded in bytes and time like the providers' (a server that ignores Range, trickles bytes or
    sends a compressed bomb ends with an error, not a hang)."""
    from victor_gui.providers.http import Timeouts, make_client  # lazily: `fit` on a file needs none of it

    return make_client(Timeouts(connect=10.0, read=30.0, idle=30.0, deadline=120.0), follow_redirects=True,
                       headers=headers or {})


async def _fetch_range(client: httpx.AsyncClient, url: str, start: int, end: int) -> tuple[bytes, int | None]:
    """GET bytes [start, end) ; returns (data, total file size if the server said)."""
    want = end - start
    async with client.stream("GET", url, headers={"Range": f"bytes={start}-{end - 1}"}) as resp:
        if resp.status_code == 416:
            return b"", start
        if resp.status_code not in (200, 206):
            raise GGUFError(f"HTTP {resp.status_code} fetching GGUF header from {url}", reason="io")
        total: int | None = None
        content_range = resp.headers.get("content-range", "")
        if "/" in content_range and content_range.rsplit("/", 1)[1].strip().isdigit():
            total = int(content_range.rsplit("/", 1)[1])
        skip = start if resp.status_code == 200 else 0  # the server ignored Range: skip what we have
        if resp.status_code == 200 and resp.headers.get("content-length", "").isdigit():
            total = int(resp.headers["content-length"])
        chunks: list[bytes] = []
        got = 0
        async for chunk in resp.aiter_bytes():
            if skip:
                cut = min(skip, len(chunk))
                chunk, skip = chunk[cut:], skip - cut
            chunks.append(chunk)
            got += len(chunk)
            if got >= want:
                break  # leaving the block closes the connection: a 200 is never read whole
        data = b"".join(chunks)[:want]
        return data, total


async def read_gguf_url(url: str, *, client: httpx.AsyncClient | None = None,
                        limits: GGUFLimits | None = None, initial_bytes: int = 1 * MiB) -> GGUFHeader:
    """Read the header of a remote GGUF with growing HTTP range requests (async, bounded)."""
    from asyncio import to_thread

    import httpx

    lim = limits or GGUFLimits()
    own = client is None
    http = client or header_client()
    try:
        buf = b""
        total: int | None = None
        want = min(initial_bytes, lim.max_bytes)
        parser = _Parser(b"", False, lim)
        while True:
            start = len(buf)
            data, size = await _fetch_range(http, url, start, want)
            total = size if size is not None else total
            buf += data
            # A short answer means the file ended; so does reaching the size the server gave.
            complete = len(data) < want - start or (total is not None and len(buf) >= total)
            result = await to_thread(_try_parse, parser, buf, complete)
            if isinstance(result, GGUFHeader):
                result.file_size = total
                result.source = url
                return result
            want = _grow(len(buf), result, lim)
    except httpx.HTTPError as exc:
        raise GGUFError(f"cannot fetch GGUF header from {url}: {type(exc).__name__}", reason="io") from exc
    finally:
        if own:
            await http.aclose()


async def read_gguf_header(source: str | Path, *, client: httpx.AsyncClient | None = None,
                           limits: GGUFLimits | None = None) -> GGUFHeader:
    """Read a GGUF header from a local path or an http(s) URL."""
    text = str(source)
    if text.startswith(("http://", "https://")):
        return await read_gguf_url(text, client=client, limits=limits)
    return await read_gguf_file(text, limits=limits)
