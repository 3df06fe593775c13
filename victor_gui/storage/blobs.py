"""Attachment originals, content-addressed in the data folder: ``attachments/ab/<sha256>``.

* Written once per content: the same bytes attached twice (or in two chats) are one file.
* Written atomically: into a temporary file in the same folder, flushed, then renamed over the
  final name, so a crash leaves either no blob or a whole one (never a torn file under a hash).
* All file work is blocking and runs on a worker thread (the store's methods call in via
  ``asyncio.to_thread``); nothing here touches the event loop.
* Garbage collection is safe against a blob being attached while a chat is deleted: a blob put
  by this process is *pinned* until a message row holding it is committed (see
  :meth:`BlobStore.pin` / :meth:`BlobStore.unpin`), and a blob is deleted only while holding the
  lock, when it is neither pinned nor referenced by any row (re-checked at that moment).
  A blob put but never stored with a message (a crash, a send that failed) stays on disk; it is
  harmless and :meth:`BlobStore.orphans` lists such files for a later sweep
  (:meth:`~victor_gui.storage.store.ConversationStore.sweep_attachments`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from victor_gui.errors import StorageError

BLOB_DIR = "attachments"
# Named views of blobs (a hard link, else a copy, under the original file name), for converters
# that go by the file's suffix and for opening an attachment in the system's viewer.
NAMED_DIR = ".named"
_CHUNK = 1 << 20


def _is_sha(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def safe_name(name: str) -> str:
    """``name`` usable as one file name on every platform (no folders, no reserved characters)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join("_" if c in '<>:"|?*' or ord(c) < 32 else c for c in base).strip(" .")
    return cleaned[:150] or "attachment"


class BlobStore:
    """The attachment folder of one data folder. Blocking methods: call them from a thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._pins: Counter[str] = Counter()

    def path(self, sha256: str) -> Path:
        """Where the blob with this hash lives (whether or not it exists)."""
        if not _is_sha(sha256):
            raise StorageError(f"not an attachment hash: {sha256[:80]!r}")
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    # -- writing ---------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (once per content) and pin it; returns its sha256."""
        sha = hashlib.sha256(data).hexdigest()
        with self._lock:
            self._pins[sha] += 1
            if not self._reuse(sha):
                self._write(sha, lambda out: out.write(data))
        return sha

    def put_file(self, source: Path, *, max_bytes: int | None = None) -> tuple[str, int]:
        """Copy the file at ``source`` in (hashing while copying, never whole in memory) and pin
        it; returns (sha256, size). Raises ``OSError`` when it cannot be read (the caller names
        the file) and :class:`StorageError` past ``max_bytes``."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=self.root)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                # A device (/dev/zero), a pipe or a socket never ends or blocks: refused up front.
                if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
                    raise OSError(errno.EINVAL, "it is not a regular file (a device, pipe or socket)")
                while block := src.read(_CHUNK):
                    size += len(block)
                    if max_bytes is not None and size > max_bytes:
                        raise StorageError(f"{source.name} is larger than {max_bytes} bytes")
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            with self._lock:
                self._pins[sha] += 1
                final = self.path(sha)
                if not self._reuse(sha):
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return sha, size

    def _reuse(self, sha: str) -> bool:
        """Whether the blob is already stored; if so it is touched, so a sweep in another
        process (which spares recent files) does not take it before its message is written."""
        try:
            os.utime(self.path(sha))
        except FileNotFoundError:
            return False
        return True

    def _write(self, sha: str, fill: Callable[[IO[bytes]], object]) -> None:
        final = self.path(sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, final)
        finally:
            Path(tmp_name).unlink(missing_ok=True)

    # -- pins ------------------------------------------------------------------------------------

    def pin(self, shas: Iterable[str]) -> list[str]:
        """Keep these blobs from collection (a message holding them is being written); returns
        those not on disk (checked under the same lock, so none can vanish after the check)."""
        missing = []
        with self._lock:
            for sha in shas:
                self._pins[sha] += 1
                if not self.exists(sha):
                    missing.append(sha)
        return missing

    def unpin(self, shas: Iterable[str]) -> None:
        """Release pins taken by :meth:`pin` or a put (the message row is committed, or not)."""
        with self._lock:
            for sha in shas:
                if self._pins[sha] <= 1:
                    self._pins.pop(sha, None)
                else:
                    self._pins[sha] -= 1

    # -- reading ---------------------------------------------------------------------------------

    def read(self, sha256: str) -> bytes:
        """The blob's bytes; :class:`StorageError` when it is not in this data folder."""
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"attachment {sha256[:12]} is not in this data folder") from None

    def named(self, sha256: str, name: str) -> Path:
        """The blob under its file name (``.named/<sha256>/<name>``): a hard link where the file
        system has them (no copy), else a copy. Made once; later calls return it."""
        source = self.path(sha256)
        if not source.is_file():
            raise StorageError(f"attachment {name} is not in this data folder")
        target = self.root / NAMED_DIR / sha256 / safe_name(name)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            tmp.unlink()
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    # -- collection ------------------------------------------------------------------------------

    def collect(self, candidates: Iterable[str], referenced: Callable[[list[str]], set[str]]) -> list[str]:
        """Delete those ``candidates`` no message references any more; returns the deleted.

        ``referenced(shas)`` answers, from the database at this moment, which are still held by
        a row. Runs under the lock, so a put of the same content cannot slip in between the
        check and the delete (it waits, then finds the file gone and writes it again).
        """
        wanted = sorted({c for c in candidates if _is_sha(c)})
        if not wanted:
            return []
        deleted = []
        with self._lock:
            held = referenced(wanted)
            for sha in wanted:
                if sha in held or self._pins.get(sha):
                    continue
                self.path(sha).unlink(missing_ok=True)
                shutil.rmtree(self.root / NAMED_DIR / sha, ignore_errors=True)
                deleted.append(sha)
        return deleted

    def orphans(self, referenced: Callable[[list[str]], set[str]], min_age_s: float = 0) -> list[str]:
        """Blobs on disk, older than ``min_age_s``, that no row holds and nobody here pinned."""
        if not self.root.is_dir():
            return []
        now = time.time()
        on_disk = [p.name for p in self.root.glob("??/*")
                   if _is_sha(p.name) and now - p.stat().st_mtime >= min_age_s]
        with self._lock:
            held = referenced(on_disk) if on_disk else set()
            return [s for s in on_disk if s not in held and not self._pins.get(s)]
