"""The transfer of one file, for :class:`~victor_gui.services.downloads.DownloadManager` (a
mixin: same object, kept apart so each file holds one responsibility): httpx into
``<file>.part`` with ``Range`` from the part's size, hashed while written (a resumed part is
hashed first, in a thread), so pause/resume and progress are exact; a dropped connection is
retried from where it stopped; at the end the sha256 must match the Hub's, else the part is
deleted and the job says so; a verified part is renamed to its file.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import quote

import httpx

from victor_gui.errors import DownloadError
from victor_gui.providers.bounded import DEADLINE_EXTENSION, IDLE_EXTENSION, BoundedStream
from victor_gui.services.download_hub import HubMetadataMixin, gated_text
from victor_gui.services.download_jobs import DownloadJob, JobState

log = logging.getLogger(__name__)

FLUSH_BYTES = 1 << 20  # bytes gathered before one write (and hash) in a worker thread
PROGRESS_EVERY_S = 0.1
FLUSH_EVERY_S = 0.5  # and at least this often, so a pause or a crash loses little
SPEED_WINDOW_S = 3.0
# A body that goes quiet this long is a dropped connection (retried), not a slow one.
IDLE_S = 60.0


@dataclass
class _Meter:
    """Speed over the last few seconds (bytes per second)."""

    samples: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)

    def add(self, now: float, total: int) -> float:
        self.samples.append((now, total))
        while len(self.samples) > 2 and now - self.samples[0][0] > SPEED_WINDOW_S:
            self.samples.popleft()
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def _hash_part(path: Path, size: int | None) -> tuple[int, Any]:
    """(bytes kept, sha256 of them) of a part file; a part longer than the file is cut back to
    nothing (it is not ours to trust). Blocking: run in a thread."""
    hasher = hashlib.sha256()
    try:
        length = path.stat().st_size
    except FileNotFoundError:
        return 0, hasher
    if size is not None and length > size:
        path.unlink()
        return 0, hasher
    with path.open("rb") as f:
        for block in iter(lambda: f.read(FLUSH_BYTES), b""):
            hasher.update(block)
    return length, hasher


def _write(handle: IO[bytes], hasher: Any, data: bytes) -> None:
    handle.write(data)
    hasher.update(data)


@dataclass
class _Part:
    """A part file being written: its path, the sha256 of the bytes in it, and their count."""

    path: Path
    hasher: Any
    done: int


class _Transient(Exception):
    """The connection dropped or stalled: retry from where the part ends."""



class TransferMixin(HubMetadataMixin):
    """The transfer half of the download manager; see the module doc. The attributes and the
    methods declared below are the manager's (set in ``DownloadManager.__init__``)."""

    retries: int
    retry_delay_s: float
    _jobs: dict[str, DownloadJob]

    def _set(self, job: DownloadJob, kind: Literal["added", "changed", "progress"] = "changed") -> None:
        raise NotImplementedError  # DownloadManager's

    async def _save(self, *, force: bool = False) -> None:
        raise NotImplementedError  # DownloadManager's

    async def _download(self, job_id: str) -> None:
        job = self._jobs[job_id]
        self._set(replace(job, state=JobState.DOWNLOADING, message=None, reason=None))
        await asyncio.to_thread(job.part_path.parent.mkdir, parents=True, exist_ok=True)
        done, hasher = await asyncio.to_thread(_hash_part, job.part_path, job.size)
        part = _Part(job.part_path, hasher, done)
        self._set(replace(self._jobs[job_id], done_bytes=done), "progress")
        token = await self._token()
        failures = 0
        while job.size is None or part.done < job.size:
            before = part.done
            try:
                if await self._fetch(job_id, part, token):
                    break
            except _Transient as exc:
                failures = 0 if part.done > before else failures + 1
                if failures > self.retries:
                    raise DownloadError(f"The download of {job.name} kept failing ({exc}); Resume "
                                        "goes on where it stopped", reason="network") from None
                log.info("downloads: %s: %s; resuming at byte %d", job.name, exc, part.done)
                await asyncio.sleep(self.retry_delay_s * max(1, failures))
        await self._verify(job_id, part.hasher)

    async def _fetch(self, job_id: str, part: _Part, token: str | None) -> bool:
        """One GET from byte ``part.done`` to the end, appended to the part file (and hashed);
        returns whether the file is complete. A dropped connection raises :class:`_Transient`
        after what arrived is written, so the retry asks for the rest."""
        job = self._jobs[job_id]
        url = f"{self.endpoint}/{job.repo_id}/resolve/{quote(job.revision, safe='')}/{quote(job.file)}"
        headers = self._headers(token)
        if part.done:
            headers["Range"] = f"bytes={part.done}-"
        extensions = {IDLE_EXTENSION: IDLE_S, DEADLINE_EXTENSION: None}
        handle: IO[bytes] | None = None
        buffer = bytearray()
        meter = _Meter()
        last_emit = last_flush = time.monotonic()

        writing: asyncio.Future[None] | None = None

        async def flush(*, wait: bool = True) -> None:
            # The write (and hash) of one block runs in a thread while the next block arrives:
            # one in flight at a time, so the part's bytes stay in order and the hash with them.
            nonlocal writing
            if buffer and handle is not None:
                data = bytes(buffer)
                buffer.clear()
                if writing is not None:
                    await asyncio.shield(writing)
                writing = asyncio.ensure_future(asyncio.to_thread(_write, handle, part.hasher, data))
                part.done += len(data)
            if wait and writing is not None:
                await asyncio.shield(writing)

        try:
            async with self.client.stream("GET", url, headers=headers, extensions=extensions,
                                          follow_redirects=True) as resp:
                if resp.status_code == 416 and job.size is not None and part.done >= job.size:
                    return True
                self._raise_for(resp, job, token)
                if part.done and resp.status_code == 200:  # the range was ignored: start again
                    await asyncio.to_thread(unlink_part, part.path)
                    part.done, part.hasher = 0, hashlib.sha256()
                elif part.done and not resp.headers.get("content-range", "").startswith(
                        f"bytes {part.done}-"):
                    raise DownloadError(f"The Hub sent {job.name} from another offset than asked for",
                                        reason="http")
                if isinstance(resp.stream, BoundedStream) and job.size is not None:
                    resp.stream.limit = max(job.size - part.done, 0) + 1  # GBs, past the stream cap
                handle = await asyncio.to_thread(part.path.open, "ab")
                async for chunk in resp.aiter_raw():
                    buffer += chunk
                    if job.size is not None and part.done + len(buffer) > job.size:
                        raise DownloadError(f"The Hub sent more bytes of {job.name} than its size",
                                            reason="http")
                    now = time.monotonic()
                    if len(buffer) >= FLUSH_BYTES or now - last_flush >= FLUSH_EVERY_S:
                        last_flush = now
                        await flush(wait=False)
                    if now - last_emit >= PROGRESS_EVERY_S:
                        last_emit = now
                        total = part.done + len(buffer)
                        self._set(replace(self._jobs[job_id], done_bytes=total,
                                          speed_bps=meter.add(now, total)), "progress")
                        await self._save()
                await flush()
                self._set(replace(self._jobs[job_id], done_bytes=part.done), "progress")
                return job.size is None or part.done >= job.size
        except (httpx.TransportError, httpx.DecodingError) as exc:
            await flush()  # what arrived is kept: on disk and hashed
            self._set(replace(self._jobs[job_id], done_bytes=part.done, speed_bps=0.0), "progress")
            raise _Transient(str(exc) or type(exc).__name__) from None
        except asyncio.CancelledError:  # paused or closing: keep what arrived for the resume
            await flush()
            raise
        finally:
            try:
                if writing is not None and not writing.done():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(writing)  # let the last write land before closing
            finally:
                if handle is not None:  # (a buffered file's lock makes close wait for a write)
                    await asyncio.to_thread(handle.close)

    def _raise_for(self, resp: httpx.Response, job: DownloadJob, token: str | None) -> None:
        status = resp.status_code
        if status in (200, 206):
            return
        if status in (401, 403):
            raise DownloadError(gated_text(job.repo_id, token), reason="gated")
        if status == 404:
            raise DownloadError(f"{job.file} is no longer in {job.repo_id}", reason="not_found")
        if status in (429, 500, 502, 503, 504):
            raise _Transient(f"the Hub answered {status}")
        raise DownloadError(f"The Hub answered {status} for {job.name}", reason="http")

    async def _verify(self, job_id: str, hasher: Any) -> None:
        job = self._jobs[job_id]
        self._set(replace(job, state=JobState.VERIFYING, speed_bps=0.0))
        digest = hasher.hexdigest()
        if job.sha256 and digest != job.sha256.lower():
            await asyncio.to_thread(unlink_part, job.part_path)
            raise DownloadError(
                f"{job.name} did not match the Hub's checksum (sha256 {digest[:12]}…, expected "
                f"{job.sha256[:12]}…): the file was deleted. Try again; if it fails again the "
                "repository's file may be broken.", reason="checksum")
        renaming = asyncio.ensure_future(asyncio.to_thread(os.replace, job.part_path, job.dest))
        try:
            await asyncio.shield(renaming)
        except asyncio.CancelledError:
            # Paused or closed while the verified file was being renamed: it is done all the
            # same (a job left "paused" with no part would download the whole file again).
            await renaming
            self._done(job_id)
            raise
        self._done(job_id)

    def _done(self, job_id: str) -> None:
        job = self._jobs[job_id]
        self._set(replace(job, state=JobState.DONE, verified=bool(job.sha256), speed_bps=0.0,
                          done_bytes=job.size or job.done_bytes))


def part_size(path: Path) -> int:
    """The bytes a part file holds (0 when there is none)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def unlink_part(path: Path) -> None:
    """Delete a part file if it is there."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
