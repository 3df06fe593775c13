"""Read the header of a GGUF file (metadata and tensor table), never the weights.

The header is everything an estimator needs: ``{arch}.*`` hyper-parameters and, per tensor, the
name, shape, ggml type and offset, from which exact sizes follow. Sources:

* a local path: read in a worker thread, in growing chunks, so a 100 GB file costs a few MB;
* an http(s) URL: HTTP range requests with async httpx, growing the range until the tensor
  table ends (as gguf-parser-go does). A server that ignores ``Range`` is read as a stream and
  cut off at the bound, never downloaded whole.

The file may be hostile. Every count, length and nesting depth is checked against
:class:`~.gguf_header.GGUFLimits` *before* anything is allocated (:mod:`.gguf_parse`), and the
total bytes looked at are capped (64 MiB by default). Every violation raises
:class:`~victor_gui.errors.GGUFError` with a ``reason`` word; nothing else escapes.

This module holds the sources (a local file, a URL); what a header holds is :mod:`.gguf_header`,
the binary walk :mod:`.gguf_parse`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from victor_gui.errors import GGUFError
from victor_gui.sizing.gguf_header import GGUFHeader, GGUFLimits, MiB
from victor_gui.sizing.gguf_parse import HeaderParser, NeedMore

if TYPE_CHECKING:  # httpx is imported where a URL is read: `fit` on a local file needs none of it
    import httpx


def _grow(current: int, needed: int, limits: GGUFLimits) -> int:
    # At least doubling keeps the number of reads logarithmic; never ask past the bound.
    return min(max(needed + 256 * 1024, current * 2), limits.max_bytes)


def _try_parse(parser: HeaderParser, buf: bytes, complete: bool) -> GGUFHeader | int:
    parser.feed(buf, complete)
    try:
        return parser.header()
    except NeedMore as more:
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
            parser = HeaderParser(b"", False, limits)
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
        parser = HeaderParser(b"", False, lim)
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
