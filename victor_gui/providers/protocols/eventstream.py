"""Decoder for AWS's binary event-stream framing (``application/vnd.amazon.eventstream``), read
from an async byte stream, so Bedrock's ConverseStream never iterates a blocking reader on the
event loop.

Kept rather than ``botocore.eventstream.EventStreamBuffer`` (which does parse incrementally):
that buffer re-concatenates its whole ``bytes`` buffer on every chunk (quadratic on a large
frame fed in small pieces), does not check that a prelude's total length covers its own headers,
and would make botocore a requirement for Bedrock API-key users, who need no SigV4.

A frame is: total length (u32), headers length (u32), prelude CRC32 (u32), headers, payload,
message CRC32 (u32), all big-endian. A header is a name (u8 length + bytes), a type byte and a
value; Bedrock uses string headers (type 7: u16 length + bytes) for ``:event-type``,
``:message-type`` (``event`` or ``exception``), ``:exception-type`` and ``:content-type``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from victor_gui.errors import InvalidResponseError

_PRELUDE = struct.Struct(">III")
MAX_FRAME = 16 * 1024 * 1024


@dataclass(frozen=True)
class Frame:
    headers: dict[str, Any]
    payload: bytes

    @property
    def event_type(self) -> str:
        return str(self.headers.get(":event-type") or self.headers.get(":exception-type") or "")

    @property
    def is_exception(self) -> bool:
        return self.headers.get(":message-type") in ("exception", "error")


def _headers(raw: bytes, provider: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    i = 0
    while i < len(raw):
        n = raw[i]
        name = raw[i + 1 : i + 1 + n].decode("utf-8")
        i += 1 + n
        kind = raw[i]
        i += 1
        if kind in (0, 1):  # bool true / false
            out[name] = kind == 0
        elif kind == 2:
            out[name] = raw[i]
            i += 1
        elif kind == 3:
            out[name] = struct.unpack_from(">h", raw, i)[0]
            i += 2
        elif kind == 4:
            out[name] = struct.unpack_from(">i", raw, i)[0]
            i += 4
        elif kind in (5, 8):  # long, timestamp
            out[name] = struct.unpack_from(">q", raw, i)[0]
            i += 8
        elif kind in (6, 7):  # bytes, string
            (size,) = struct.unpack_from(">H", raw, i)
            value = raw[i + 2 : i + 2 + size]
            out[name] = value.decode("utf-8") if kind == 7 else value
            i += 2 + size
        elif kind == 9:  # uuid
            out[name] = raw[i : i + 16]
            i += 16
        else:
            raise InvalidResponseError(f"Unknown event-stream header type {kind}", provider)
    return out


async def iter_frames(chunks: AsyncIterator[bytes], *, provider: str | None = None) -> AsyncIterator[Frame]:
    """Yield whole frames as their bytes arrive; CRCs are checked, a cut frame is an error."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= _PRELUDE.size:
            total, header_len, prelude_crc = _PRELUDE.unpack_from(buffer)
            if zlib.crc32(bytes(buffer[:8])) != prelude_crc:
                raise InvalidResponseError("Event-stream prelude checksum mismatch", provider)
            if total > MAX_FRAME or total < 16 + header_len:
                raise InvalidResponseError(f"Event-stream frame of {total} bytes is not plausible", provider)
            if len(buffer) < total:
                break
            frame = bytes(buffer[:total])
            del buffer[:total]
            (message_crc,) = struct.unpack_from(">I", frame, total - 4)
            if zlib.crc32(frame[:-4]) != message_crc:
                raise InvalidResponseError("Event-stream message checksum mismatch", provider)
            try:
                headers = _headers(frame[12 : 12 + header_len], provider)
            except (IndexError, struct.error, UnicodeDecodeError) as exc:
                # A frame whose checksums a hostile peer forged can still lie about its headers.
                raise InvalidResponseError(f"Malformed event-stream headers: {exc}", provider) from exc
            yield Frame(headers, frame[12 + header_len : -4])
    if buffer:
        raise InvalidResponseError(
            f"The event stream ended inside a frame ({len(buffer)} bytes left)", provider
        )
