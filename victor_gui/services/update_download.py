"""Downloading an installer: streamed, bounded by its signed size, an idle deadline, resumed by
``Range`` after the connection drops, and checked against its signed sha256 before it is kept.

The bytes go to ``<name>.part`` beside the target and become ``<name>`` only once their size and
checksum match; any failure (and a cancel) removes the part file, so a bad download never lies
around looking like an installer.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import httpx

from victor_gui.errors import UpdateError

# Written to disk (and hashed) in a worker thread once this much has arrived.
_FLUSH_BYTES = 1 << 20
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_DROPS = (httpx.TransportError,)  # reset, closed mid-body, idle deadline passed

Progress = Callable[[int, int], None]


class _PartFile:
    """The ``.part`` file and the running sha256 of what it holds (both touched in a thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self.hash = hashlib.sha256()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("wb")

    def restart(self) -> None:
        """The server ignored ``Range`` and sent the whole file again: start over."""
        self._fh.seek(0)
        self._fh.truncate()
        self.size = 0
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self.hash.update(data)
        self.size += len(data)

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


def _resumed_at(response: httpx.Response, have: int) -> int:
    """Where a reply to ``Range: bytes=<have>-`` starts: ``have`` for a matching 206, 0 for a
    200 (the whole file again). Anything else is a broken server."""
    if response.status_code == 200:
        return 0
    m = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
    if response.status_code != 206 or m is None or int(m.group(1)) != have:
        raise UpdateError(f"The download server answered a resumed download wrongly "
                          f"(HTTP {response.status_code}); nothing was installed.", reason="network")
    return have


async def download_installer(client: httpx.AsyncClient, url: str, target: Path, *, size: int, sha256: str,
                             progress: Progress | None = None, idle_timeout_s: float = 30.0,
                             attempts: int = 6) -> Path:
    """Download ``url`` to ``target`` and return it, once it is exactly ``size`` bytes with this
    ``sha256``. A dropped connection or an idle server is resumed from the last byte received
    (up to ``attempts`` connections in all); ``progress(done, size)`` follows every chunk.
    Raises :class:`UpdateError` (the part file removed) for anything else."""
    part = await asyncio.to_thread(_PartFile, target.with_name(target.name + ".part"))
    ok = False
    try:
        await _fetch(client, url, part, size, progress, idle_timeout_s, attempts)
        await asyncio.to_thread(part.close)
        if part.size != size or part.hash.hexdigest() != sha256:
            raise UpdateError("The downloaded installer does not match its signed checksum (it was "
                              "damaged or replaced); it was deleted and nothing was installed.",
                              reason="checksum")
        await asyncio.to_thread(os.replace, part.path, target)
        ok = True
        return target
    finally:
        if not ok:
            await asyncio.to_thread(_discard, part)


def _discard(part: _PartFile) -> None:
    try:
        part.close()
    except (OSError, ValueError):
        pass  # already closed
    part.path.unlink(missing_ok=True)


async def _fetch(client: httpx.AsyncClient, url: str, part: _PartFile, size: int,
                 progress: Progress | None, idle_timeout_s: float, attempts: int) -> None:
    timeout = httpx.Timeout(connect=15.0, read=idle_timeout_s, write=15.0, pool=15.0)
    last: Exception | None = None
    for _attempt in range(attempts):
        headers = {"Range": f"bytes={part.size}-"} if part.size else {}
        pending = bytearray()
        try:
            async with client.stream("GET", url, headers=headers, timeout=timeout,
                                     follow_redirects=True) as response:
                if response.status_code not in (200, 206):
                    raise UpdateError(f"The installer could not be downloaded (HTTP {response.status_code}); "
                                      "nothing was installed.", reason="network")
                if part.size and _resumed_at(response, part.size) == 0:
                    await asyncio.to_thread(part.restart)
                async for chunk in response.aiter_bytes():
                    if part.size + len(pending) + len(chunk) > size:
                        raise UpdateError("The download is larger than the signed installer; it was "
                                          "stopped and nothing was installed.", reason="too_large")
                    pending += chunk
                    if len(pending) >= _FLUSH_BYTES:
                        await asyncio.to_thread(part.write, bytes(pending))
                        pending.clear()
                    if progress is not None:
                        progress(part.size + len(pending), size)
                if pending:
                    await asyncio.to_thread(part.write, bytes(pending))
            if part.size >= size:
                return
            last = None  # a clean end short of the size: ask for the rest
        except _DROPS as exc:
            last = exc
            if pending:  # what arrived before the drop is good: keep it and resume after it
                await asyncio.to_thread(part.write, bytes(pending))
    reason = f" ({type(last).__name__})" if last is not None else ""
    raise UpdateError(f"The download kept failing{reason} after {attempts} tries; nothing was "
                      "installed. Try again later.", reason="network")
