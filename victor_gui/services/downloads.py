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
  written, resumed and verified (:mod:`.download_transfer`);
* several at once, at most ``settings.model_folders.max_downloads``;
* state saved atomically in the data folder (``downloads.json``) on every change of state and
  every few seconds of progress; on the next start unfinished jobs come back paused.

Gated repos: the Hugging Face token (the keyring's ``huggingface`` key, else ``HF_API_KEY`` /
``HF_TOKEN``, read never written) is sent to the Hub; without one the job's sentence says to add
it in Settings → API keys (:mod:`.download_hub`, which also reads the repo's file list).

The jobs, events, names and the state file are described in
:mod:`victor_gui.services.download_jobs`; the folders and the scan in
:mod:`victor_gui.services.model_folders`.

Events: ``subscribe(listener) -> unsubscribe``; ``listener(event)`` gets a
:class:`DownloadEvent` (``added``, ``changed``, ``progress`` or ``removed``, with the job's new
:class:`DownloadJob` snapshot). Jobs are immutable snapshots: the manager replaces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import httpx

from victor_gui.core.listeners import Listeners
from victor_gui.core.tasks import TaskSet
from victor_gui.errors import DownloadError
from victor_gui.services.download_hub import default_token
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
from victor_gui.services.download_transfer import TransferMixin, part_size, unlink_part
from victor_gui.services.model_folders import LocalModel, ModelFolders, find_present
from victor_gui.sizing.sources import hub_endpoint

log = logging.getLogger(__name__)

SAVE_EVERY_S = 2.0


def _size_text(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path



class DownloadManager(TransferMixin):
    """The downloads of this app (see the module docstring).

    ``client``: an httpx client (the app's; its timeouts and proxy apply; a body's idle gap is
    bounded to :data:`~.download_transfer.IDLE_S`). ``settings``: the SettingsService
    (``model_folders``: folders, concurrency); ``folders``: the :class:`ModelFolders` (built on
    ``settings`` when None). ``state_path`` None keeps no state (the CLI). ``token`` is called
    in a thread for the Hub token. ``max_downloads`` overrides the setting."""

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
            done = await asyncio.to_thread(part_size, job.part_path)
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
            await asyncio.to_thread(unlink_part, job.part_path)
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
            need = sum(max(0, (j.size or 0) - part_size(j.part_path)) for j in [*jobs, *pending])
            where = _nearest_existing(root)
            return need, shutil.disk_usage(where).free, where

        need, free, _where = await asyncio.to_thread(need_and_free)
        if need > free:
            raise DownloadError(
                f"Not enough disk space in {root}: the download needs {_size_text(need)}, "
                f"{_size_text(free)} is free, {_size_text(need - free)} missing. Free some space or "
                "choose another models folder in Settings → Models.", reason="disk_space")

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



def _root(folder: str | Path | None, folders: ModelFolders) -> Path:
    return Path(folder).expanduser() if folder else folders.download_root()



__all__ = ["ACTIVE", "FINISHED", "DownloadEvent", "DownloadJob", "DownloadManager", "JobState",
           "check_repo_path", "default_state_path", "default_token", "parse_hf_ref",
           "split_parts"]
