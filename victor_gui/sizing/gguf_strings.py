"""Skipping the long string arrays of a GGUF header (a vocabulary, its merges) without decoding
or copying any string: the hot loop of reading a real header (~400k strings), see
:meth:`.gguf_parse.HeaderParser.array`.
"""

from __future__ import annotations

import re
import struct

_U64 = struct.Struct("<Q")


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


def walk_strings(buf: bytes, pos: int, count: int, regex_min: int = _REGEX_MIN) -> tuple[int, int]:
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
