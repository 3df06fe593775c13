"""The records of model downloads (Qt-free): a job's state, the events the download manager
sends, the names it accepts (``hf:`` references, repo paths that cannot leave the models
folder, split GGUF parts) and the state file that carries unfinished downloads over a restart.

:class:`~victor_gui.services.downloads.DownloadManager` owns the jobs; this module only describes
them and reads and writes them.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from victor_gui.core import app_dirs
from victor_gui.errors import DownloadError

log = logging.getLogger(__name__)

STATE_FILE = "downloads.json"
STATE_VERSION = 1
SPLIT = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class JobState(StrEnum):
    """Where a download stands."""

    QUEUED = "queued"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"
    PRESENT = "present"  # already on disk somewhere: not fetched


ACTIVE = (JobState.QUEUED, JobState.DOWNLOADING, JobState.VERIFYING)
FINISHED = (JobState.DONE, JobState.FAILED, JobState.PRESENT)


@dataclass(frozen=True)
class DownloadJob:
    """One file's download, as it stands (a snapshot: the manager replaces it on every change)."""

    id: str
    repo_id: str
    file: str
    revision: str
    dest: str  # the final path; the bytes arrive in ``dest + ".part"``
    size: int | None
    sha256: str | None
    state: JobState = JobState.QUEUED
    done_bytes: int = 0
    speed_bps: float = 0.0
    message: str | None = None  # the error sentence, or "Already have it at PATH"
    reason: str | None = None  # DownloadError.reason of a failure
    group: str = ""  # the parts of one split model share it
    verified: bool = False

    @property
    def name(self) -> str:
        """The file's name (without the repo's folders)."""
        return self.file.rsplit("/", 1)[-1]

    @property
    def part_path(self) -> Path:
        """Where the bytes arrive until the download is verified."""
        return Path(self.dest + ".part")

    @property
    def fraction(self) -> float | None:
        """Done as a fraction of the size (None when the size is unknown)."""
        return min(1.0, self.done_bytes / self.size) if self.size else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current speed (None when not moving or the size is unknown)."""
        if self.state != JobState.DOWNLOADING or not self.size or self.speed_bps <= 0:
            return None
        return max(0.0, (self.size - self.done_bytes) / self.speed_bps)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the state file, ``--json``)."""
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DownloadJob:
        """A job read back from the state file (unknown keys ignored)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["state"] = JobState(values.get("state", JobState.PAUSED))
        return cls(**values)


@dataclass(frozen=True)
class DownloadEvent:
    """What subscribers are told: ``kind`` and the job as it is now."""

    kind: Literal["added", "changed", "progress", "removed"]
    job: DownloadJob


def default_state_path() -> Path:
    """``downloads.json`` in the app's data folder."""
    return app_dirs.data_dir() / STATE_FILE


def check_repo_path(repo_id: str, file: str) -> None:
    """Refuse a repo id or a file path that could leave the models folder (``..``, absolute
    paths, odd characters): names come from the Hub and from the command line."""
    names = repo_id.split("/")
    if len(names) != 2 or not all(_NAME.match(n) and n not in (".", "..") for n in names):
        raise DownloadError(f"{repo_id!r} is not a Hugging Face repository id (author/name)",
                            reason="bad_ref")
    parts = file.split("/")
    # ":" too: on Windows "C:x" joined to a folder names another drive.
    if not file or any(c in file for c in ("\\", ":", "\0")) or any(p in ("", ".", "..") for p in parts):
        raise DownloadError(f"{file!r} is not a file path inside a repository", reason="bad_ref")


def parse_hf_ref(ref: str) -> tuple[str, str]:
    """``hf:AUTHOR/REPO/FILE`` → (``AUTHOR/REPO``, ``FILE``); raises ValueError otherwise."""
    body = ref[3:] if ref.startswith("hf:") else ""
    parts = body.split("/", 2)
    if len(parts) < 3 or not all(parts):
        raise ValueError(f"{ref!r} is not hf:AUTHOR/REPO/FILE")
    return f"{parts[0]}/{parts[1]}", parts[2]


def split_parts(file: str, siblings: Mapping[str, Any]) -> list[str]:
    """``file`` and, for a split GGUF, all its parts in order (each must be listed)."""
    m = SPLIT.match(file)
    if m is None:
        return [file]
    count = int(m.group("count"))
    folder = file.rsplit("/", 1)[0] + "/" if "/" in file else ""
    stem = m.group("stem").rsplit("/", 1)[-1]
    parts = [f"{folder}{stem}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]
    missing = [p for p in parts if p not in siblings]
    if missing:
        raise DownloadError(f"{file} is one part of {count}, but {missing[0]} is not in the repository",
                            reason="not_found")
    return parts


def save_state(path: Path, jobs: list[dict[str, Any]]) -> None:
    """Write the state file atomically (a temporary file renamed over it). Blocking."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"version": STATE_VERSION, "jobs": jobs}, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def load_state(path: Path) -> list[DownloadJob]:
    """The jobs saved in ``path``; unfinished ones come back paused with their part's size."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("downloads: %s could not be read (%s); starting with no downloads", path, exc)
        return []
    jobs: list[DownloadJob] = []
    for entry in data.get("jobs", []) if isinstance(data, dict) else []:
        try:
            job = DownloadJob.from_dict(entry)
            check_repo_path(job.repo_id, job.file)
        except (TypeError, ValueError, DownloadError) as exc:
            log.warning("downloads: a saved job was left out: %s", exc)
            continue
        if job.state in ACTIVE or job.state == JobState.PAUSED:
            try:
                done = job.part_path.stat().st_size
            except OSError:
                done = 0
            job = replace(job, state=JobState.PAUSED, done_bytes=done, speed_bps=0.0)
        jobs.append(job)
    return jobs


__all__ = ["ACTIVE", "FINISHED", "STATE_FILE", "DownloadEvent", "DownloadJob", "JobState", "check_repo_path",
           "default_state_path", "load_state", "parse_hf_ref", "save_state", "split_parts"]
