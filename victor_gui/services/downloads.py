"""Model downloads from the Hugging Face Hub (Qt-free, async): the one owner of download state.

:class:`DownloadManager` takes ``enqueue(repo_id, files)`` and fetches each file into
``<download folder>/<author>/<repo>/<file>`` (LM Studio's layout, so LM Studio finds it too):

* the Hub's metadata first (``/api/models/{repo}/revision/{rev}?blobs=true``: size and LFS
  sha256); a split GGUF (``-00001-of-00003``) brings all its parts, enqueued together;
* nothing twice: a file already in any model folder or known library (same repo+file and size,
  or same sha256; see :mod:`victor_gui.services.model_folders`) is not fetched, its job says
  "Already have it at PATH"; a file already queued is not queued again;
* the disk checked first (``shutil.disk_usage`` in a thread): a sentence names the folder and
  the bytes missing;
* the transfer with httpx into ``<file>.part`` with ``Range`` from the part's size, hashed while
  written (a resumed part is hashed first, in a thread), so pause/resume and progress are exact;
  a dropped connection is retried from where it stopped; at the end the sha256 must match the
  Hub's, else the part is deleted and the job says so;
* several at once, at most ``settings.model_folders.max_downloads``;
* state saved atomically in the data folder (``downloads.json``) on every change of state and
  every few seconds of progress; on the next start unfinished jobs come back paused.

Gated repos: the Hugging Face token (the keyring's ``huggingface`` key, else ``HF_API_KEY`` /
``HF_TOKEN``, read never written) is sent to the Hub; without one the job's sentence says to add
it in Settings → API keys.

The jobs, events, names and the state file are described in
:mod:`victor_gui.services.download_jobs`; the folders and the scan in
:mod:`victor_gui.services.model_folders`.

Events: ``subscribe(listener) -> unsubscribe``; ``listener(event)`` gets a
:class:`DownloadEvent` (``added``, ``changed``, ``progress`` or ``removed``, with the job's new
:class:`DownloadJob` snapshot). Jobs are immutable snapshots: the manager replaces them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import quote

import httpx

from victor_gui.core.listeners import Listeners
from victor_gui.core.tasks import TaskSet
from victor_gui.errors import DownloadError
from victor_gui.providers.bounded import DEADLINE_EXTENSION, IDLE_EXTENSION, BoundedStream, read_bounded
from victor_gui.services.download_jobs import (
    ACTIVE,
    FINISHED,
    DownloadEvent,
    DownloadJob,
    JobState,
    check_repo_path,
    default_state_path,
    load_state,
    parse_hf_ref,
    save_state,
    split_parts,
)
from victor_gui.services.model_folders import LocalModel, ModelFolders, find_present
from victor_gui.sizing.sources import hub_endpoint

log = logging.getLogger(__name__)

FLUSH_BYTES = 1 << 20  # bytes gathered before one write (and hash) in a worker thread
PROGRESS_EVERY_S = 0.1
FLUSH_EVERY_S = 0.5  # and at least this often, so a pause or a crash loses little
SAVE_EVERY_S = 2.0
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




def default_token() -> str | None:
    """The Hugging Face token: the keyring's ``huggingface`` key, else ``HF_API_KEY``/``HF_TOKEN``
    (blocking: the keyring; call it in a thread)."""
    from victor_gui.providers.catalog import find_spec
    from victor_gui.providers.keys import resolve_api_key

    spec = find_spec("huggingface")
    return resolve_api_key(spec)[0] if spec is not None else None


def _size_text(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


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


class DownloadManager:
    """The downloads of this app (see the module docstring).

    ``client``: an httpx client (the app's; its timeouts and proxy apply; a body's idle gap is
    bounded to :data:`IDLE_S`). ``settings``: the SettingsService (``model_folders``: folders,
    concurrency); ``folders``: the :class:`ModelFolders` (built on ``settings`` when None).
    ``state_path`` None keeps no state (the CLI). ``token`` is called in a thread for the Hub
    token. ``max_downloads`` overrides the setting."""

    def __init__(self, client: httpx.AsyncClient, *, settings: Any = None,
                 folders: ModelFolders | None = None, state_path: Path | None = None,
                 endpoint: str | None = None, token: Callable[[], str | None] | None = default_token,
                 max_downloads: int | None = None, retries: int = 5, retry_delay_s: float = 0.5) -> None:
        self.client = client
        self.settings = settings
        self.folders = folders if folders is not None else ModelFolders(settings)
        self.state_path = state_path
        self.endpoint = hub_endpoint(endpoint)
        self._token_source = token
        self._max = max_downloads
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self._jobs: dict[str, DownloadJob] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._tasks = TaskSet("download")
        self._listeners: Listeners[[DownloadEvent]] = Listeners(log, "download listener failed")
        self._save_lock = asyncio.Lock()
        self._enqueue_lock = asyncio.Lock()
        self._last_save = 0.0
        self._dirty = False  # something to save (a start and close with no change write nothing)
        self._writing: asyncio.Future[None] | None = None
        self._unsubscribe_settings: Callable[[], None] | None = None
        self._closed = False

    # -- reading -----------------------------------------------------------------------------------

    @property
    def jobs(self) -> list[DownloadJob]:
        """Every job, in the order they were added."""
        return list(self._jobs.values())

    def job(self, job_id: str) -> DownloadJob | None:
        """The job ``job_id`` as it stands, or None."""
        return self._jobs.get(job_id)

    @property
    def max_downloads(self) -> int:
        """How many run at once."""
        if self._max is not None:
            return self._max
        return self.folders.config.max_downloads

    def subscribe(self, listener: Callable[[DownloadEvent], None]) -> Callable[[], None]:
        """Call ``listener(event)`` on every change; returns the unsubscribe function."""
        return self._listeners.add(listener)

    # -- life --------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the saved state (unfinished downloads come back paused) and follow the settings."""
        if self.state_path is not None:
            for job in await asyncio.to_thread(load_state, self.state_path):
                self._set(job, "added")
            self._dirty = False
        subscribe = getattr(self.settings, "subscribe", None)
        if subscribe is not None and self._unsubscribe_settings is None:
            self._unsubscribe_settings = subscribe(self._settings_changed)

    def _settings_changed(self, change: Any) -> None:
        if change.touches("model_folders"):
            self._pump()

    async def close(self) -> None:
        """Stop every transfer (parts are kept: they resume, paused, on the next start) and save."""
        self._closed = True
        if self._unsubscribe_settings is not None:
            self._unsubscribe_settings()
            self._unsubscribe_settings = None
        running = list(self._running)
        await self._tasks.aclose()
        if self._writing is not None:
            with contextlib.suppress(OSError):
                await self._writing
        for job_id in running:
            job = self._jobs.get(job_id)
            if job is not None and job.state in ACTIVE:
                self._set(replace(job, state=JobState.PAUSED, speed_bps=0.0))
        await self._save(force=True)
        self._listeners.clear()

    # -- actions -----------------------------------------------------------------------------------

    async def enqueue(self, repo_id: str, files: list[str], *, revision: str = "main",
                      folder: str | Path | None = None) -> list[DownloadJob]:
        """Queue ``files`` of ``repo_id`` (split parts come along) and start as many as allowed.

        Returns one job per file: queued, or already present (``state`` PRESENT, ``message``
        "Already have it at PATH"), or the job already queued for it. Raises
        :class:`DownloadError` when the Hub does not answer or lacks a file, or the disk is too
        small (nothing is queued then)."""
        for file in files:
            check_repo_path(repo_id, file)
        async with self._enqueue_lock:  # two quick clicks on one quant queue it once
            return await self._enqueue(repo_id, files, revision, folder)

    async def _enqueue(self, repo_id: str, files: list[str], revision: str,
                       folder: str | Path | None) -> list[DownloadJob]:
        siblings = await self._siblings(repo_id, revision)
        wanted: list[str] = []
        for file in files:
            if file not in siblings:
                raise DownloadError(f"{file} is not in {repo_id} (revision {revision})", reason="not_found")
            wanted += [p for p in split_parts(file, siblings) if p not in wanted]
        root = await asyncio.to_thread(_root, folder, self.folders)
        local = await self._local_models(root)
        group = uuid.uuid4().hex[:12] if len(wanted) > 1 else ""
        out: list[DownloadJob] = []
        new: list[DownloadJob] = []
        for file in wanted:
            size, sha = siblings[file]
            existing = self._queued(repo_id, file)
            if existing is not None:
                out.append(existing)
                continue
            present = find_present(local, repo_id, file, size, sha)
            dest = root / repo_id / file
            if present is not None:
                job = DownloadJob(uuid.uuid4().hex, repo_id, file, revision, str(present.path), size, sha,
                                  JobState.PRESENT, done_bytes=size or 0, group=group,
                                  message=f"Already have it at {present.path}")
            else:
                job = DownloadJob(uuid.uuid4().hex, repo_id, file, revision, str(dest), size, sha,
                                  group=group)
                new.append(job)
            out.append(job)
        if new:
            await self._check_space(root, new)
        for job in out:
            if job.id not in self._jobs:
                self._set(job, "added")
        await self._save(force=True)
        self._pump()
        return out

    async def pause(self, job_id: str) -> None:
        """Stop a queued or running download; its part stays for :meth:`resume`."""
        job = self._jobs.get(job_id)
        if job is None or job.state not in ACTIVE:
            return
        await self._stop(job_id)
        job = self._jobs[job_id]
        if job.state in ACTIVE:  # not finished meanwhile (a verified file renamed as it stopped)
            done = await asyncio.to_thread(_part_size, job.part_path)
            self._set(replace(job, state=JobState.PAUSED, speed_bps=0.0, done_bytes=done))
        await self._save(force=True)
        self._pump()

    async def resume(self, job_id: str) -> None:
        """Queue a paused (or failed) download again; it goes on from its part."""
        job = self._jobs.get(job_id)
        if job is None or job.state not in (JobState.PAUSED, JobState.FAILED):
            return
        self._set(replace(job, state=JobState.QUEUED, message=None, reason=None))
        await self._save(force=True)
        self._pump()

    async def cancel(self, job_id: str) -> None:
        """Stop a download, delete its part and forget it (a finished file is kept)."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        await self._stop(job_id)
        job = self._jobs.pop(job_id, job)
        self._dirty = True
        if job.state not in (JobState.DONE, JobState.PRESENT):
            await asyncio.to_thread(_unlink, job.part_path)
        self._listeners.notify(DownloadEvent("removed", job))
        self._wake(job_id)
        await self._save(force=True)
        self._pump()

    async def wait(self, job_id: str) -> DownloadJob:
        """Wait until ``job_id`` is done, failed, paused or gone; returns it as it is then."""
        while True:
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED or job.state == JobState.PAUSED:
                return job if job is not None else self._gone(job_id)
            event = self._finished.setdefault(job_id, asyncio.Event())
            await event.wait()
            event.clear()

    @staticmethod
    def _gone(job_id: str) -> DownloadJob:
        raise KeyError(job_id)

    # -- internals ---------------------------------------------------------------------------------

    def _set(self, job: DownloadJob, kind: Literal["added", "changed", "progress"] = "changed") -> None:
        self._jobs[job.id] = job
        self._dirty = True
        self._listeners.notify(DownloadEvent(kind, job))
        if kind != "progress":
            self._wake(job.id)

    def _wake(self, job_id: str) -> None:
        event = self._finished.get(job_id)
        if event is not None:
            event.set()

    def _queued(self, repo_id: str, file: str) -> DownloadJob | None:
        for job in self._jobs.values():
            if job.repo_id == repo_id and job.file == file and job.state not in FINISHED:
                return job
        return None

    async def _local_models(self, root: Path) -> list[LocalModel]:
        local = await self.folders.scan(also=root)
        # Our own verified downloads: their sha256 is known without reading them again.
        known = {Path(j.dest): j.sha256 for j in self._jobs.values() if j.state == JobState.DONE and j.sha256}
        return [replace(m, sha256=m.sha256 or known.get(m.path)) for m in local]

    async def _check_space(self, root: Path, jobs: list[DownloadJob]) -> None:
        # The new files, and what the unfinished downloads into the same folder still need.
        pending = [j for j in self._jobs.values() if j.state in (*ACTIVE, JobState.PAUSED)
                   and Path(j.dest).is_relative_to(root)]

        def need_and_free() -> tuple[int, int, Path]:
            need = sum(max(0, (j.size or 0) - _part_size(j.part_path)) for j in [*jobs, *pending])
            where = _nearest_existing(root)
            return need, shutil.disk_usage(where).free, where

        need, free, _where = await asyncio.to_thread(need_and_free)
        if need > free:
            raise DownloadError(
                f"Not enough disk space in {root}: the download needs {_size_text(need)}, "
                f"{_size_text(free)} is free, {_size_text(need - free)} missing. Free some space or "
                "choose another models folder in Settings → Models.", reason="disk_space")

    def _headers(self, token: str | None) -> dict[str, str]:
        headers = {"Accept-Encoding": "identity", "User-Agent": "victor-gui"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def _token(self) -> str | None:
        if self._token_source is None:
            return None
        try:
            return await asyncio.to_thread(self._token_source)
        except Exception as exc:  # no keyring: go on without a token
            log.info("downloads: no Hugging Face token (%s)", type(exc).__name__)
            return None

    async def _siblings(self, repo_id: str, revision: str) -> dict[str, tuple[int | None, str | None]]:
        """``{file: (size, sha256)}`` of the repo at ``revision`` from the Hub's API."""
        url = f"{self.endpoint}/api/models/{repo_id}/revision/{quote(revision, safe='')}"
        token = await self._token()
        try:
            async with self.client.stream("GET", url, params={"blobs": "true"},
                                          headers=self._headers(token), follow_redirects=True) as resp:
                body = await read_bounded(resp)
        except httpx.HTTPError as exc:
            raise DownloadError(f"The Hugging Face Hub at {self.endpoint} did not answer "
                                f"({type(exc).__name__}); check the connection and try again",
                                reason="network") from None
        if resp.status_code in (401, 403):
            raise DownloadError(_gated_text(repo_id, token), reason="gated")
        if resp.status_code == 404:
            raise DownloadError(f"{repo_id} (revision {revision}) is not on the Hugging Face Hub",
                                reason="not_found")
        if resp.status_code >= 400:
            raise DownloadError(f"The Hub answered {resp.status_code} for {repo_id}", reason="http")
        try:
            data = json.loads(body)
            out: dict[str, tuple[int | None, str | None]] = {}
            for s in data.get("siblings") or []:
                lfs = s.get("lfs") or {}
                size = lfs.get("size", s.get("size"))
                out[str(s["rfilename"])] = (int(size) if size is not None else None, lfs.get("sha256"))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise DownloadError(f"The Hub's description of {repo_id} could not be read",
                                reason="http") from None
        return out

    def _pump(self) -> None:
        """Start queued jobs while fewer than the limit run."""
        if self._closed:
            return
        for job in list(self._jobs.values()):
            if len(self._running) >= self.max_downloads:
                return
            if job.state == JobState.QUEUED and job.id not in self._running:
                self._running[job.id] = self._tasks.spawn(self._run(job.id))

    async def _stop(self, job_id: str) -> None:
        task = self._running.pop(job_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, job_id: str) -> None:
        try:
            try:
                await self._download(job_id)
            except OSError as exc:  # the disk filled up, the folder went away or is read-only
                failed = self._jobs[job_id]
                raise DownloadError(f"{failed.name} could not be written to {Path(failed.dest).parent}: "
                                    f"{exc.strerror or exc}. Resume goes on where it stopped.",
                                    reason="disk") from None
        except DownloadError as exc:
            job = self._jobs.get(job_id)
            if job is not None:
                # A deleted file (its checksum failed) has nothing done any more.
                done = 0 if exc.reason == "checksum" else job.done_bytes
                self._set(replace(job, state=JobState.FAILED, speed_bps=0.0, message=exc.message,
                                  reason=exc.reason, done_bytes=done))
        finally:
            if self._running.get(job_id) is asyncio.current_task():
                del self._running[job_id]
            if not self._closed:
                await self._save(force=True)
                self._pump()

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
                    await asyncio.to_thread(_unlink, part.path)
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
            raise DownloadError(_gated_text(job.repo_id, token), reason="gated")
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
            await asyncio.to_thread(_unlink, job.part_path)
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

    async def _save(self, *, force: bool = False) -> None:
        if self.state_path is None or not self._dirty:
            return
        now = time.monotonic()
        if not force and now - self._last_save < SAVE_EVERY_S:
            return
        self._last_save = now
        self._dirty = False
        jobs = [j.to_dict() for j in self._jobs.values() if j.state != JobState.PRESENT]
        async with self._save_lock:
            # Shielded: a transfer paused or closed while its state is being written must not
            # leave the write running unseen (close() waits for it before its own last write).
            self._writing = asyncio.ensure_future(asyncio.to_thread(save_state, self.state_path, jobs))
            try:
                await asyncio.shield(self._writing)
            except OSError as exc:
                log.warning("downloads: the state could not be saved to %s: %s", self.state_path, exc)


def _gated_text(repo_id: str, token: str | None) -> str:
    if token:
        return (f"{repo_id} is gated and the Hugging Face token was refused: accept the model's terms "
                "on its Hub page, or check the token in Settings → API keys")
    return (f"{repo_id} is gated: add your Hugging Face token in Settings → API keys (or set HF_TOKEN) "
            "and accept the model's terms on its Hub page")


def _root(folder: str | Path | None, folders: ModelFolders) -> Path:
    return Path(folder).expanduser() if folder else folders.download_root()


def _part_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


__all__ = ["ACTIVE", "FINISHED", "DownloadEvent", "DownloadJob", "DownloadManager", "JobState",
           "check_repo_path", "default_state_path", "default_token", "parse_hf_ref",
           "split_parts"]
