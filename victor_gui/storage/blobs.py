"""Content-addressed attachment blobs in the data folder (``attachments/ab/abcdef…``).

# baseline until att-core merges: the smallest working store the attachment draft and the
# chips need (hash while copying, one file per distinct content). att-core owns storage of
# attachments (rows, export, delete with the conversation); its version wins at merge.

Synchronous file I/O: callers run it in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

from victor_gui.errors import AttachmentError

_CHUNK = 1 << 20
# The largest file copied in: the data folder must not fill up with one drop of a disk image.
MAX_BLOB_BYTES = 2_000_000_000


def blob_root(store_path: Path) -> Path:
    """The blob folder beside a conversation store file."""
    return store_path.parent / "attachments"


class BlobStore:
    """Original bytes of attachments, once per content (named by their SHA-256)."""

    def __init__(self, root: Path, *, max_bytes: int = MAX_BLOB_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path_of(self, sha256: str) -> Path:
        """Where the blob with this hash lives (it may not exist)."""
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return self.path_of(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        """The blob's bytes; :class:`AttachmentError` (``vanished``) when it is gone."""
        try:
            return self.path_of(sha256).read_bytes()
        except OSError as exc:
            raise AttachmentError("The attached file is no longer in the data folder.",
                                  reason="vanished") from exc

    def put_bytes(self, raw: bytes) -> str:
        """Store ``raw`` (deduplicated); returns its SHA-256."""
        sha = hashlib.sha256(raw).hexdigest()
        if not self.has(sha):
            self._write(sha, [raw])
        return sha

    def put_file(self, path: Path, *, cancelled: object = None) -> tuple[str, int]:
        """Copy a file in while hashing it (one pass, bounded memory); returns (sha256, size).

        The copy goes to a temporary name first and is renamed to its hash, so a half-written
        blob never has a real name. A file that cannot be read raises AttachmentError.
        """
        try:
            info = path.stat()
        except FileNotFoundError as exc:
            raise AttachmentError(f"{path.name} is no longer there.", reason="vanished",
                                  name=path.name) from exc
        except OSError as exc:
            raise AttachmentError(f"{path.name} cannot be read ({exc.strerror or exc}).", reason="unreadable",
                                  name=path.name) from exc
        if not stat.S_ISREG(info.st_mode):  # a folder, a pipe, a device (/dev/zero never ends)
            raise AttachmentError(f"{path.name} is not a file that can be attached.", reason="unsupported",
                                  name=path.name)
        self._check_size(path.name, info.st_size)
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    with path.open("rb") as src:
                        while chunk := src.read(_CHUNK):
                            if cancelled is not None and getattr(cancelled, "is_set", lambda: False)():
                                raise AttachmentError(f"Adding {path.name} was cancelled.",
                                                      reason="cancelled", name=path.name)
                            digest.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
                            self._check_size(path.name, size)  # a file still growing
                except FileNotFoundError as exc:
                    raise AttachmentError(f"{path.name} is no longer there.", reason="vanished",
                                          name=path.name) from exc
                except OSError as exc:
                    raise AttachmentError(f"{path.name} cannot be read ({exc.strerror or exc}).",
                                          reason="unreadable", name=path.name) from exc
            sha = digest.hexdigest()
            target = self.path_of(sha)
            if target.exists():
                os.unlink(tmp)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
            return sha, size
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _check_size(self, name: str, size: int) -> None:
        if size > self.max_bytes:
            raise AttachmentError(f"{name} is {size / 1e9:.1f} GB; files up to "
                                  f"{self.max_bytes / 1e9:.0f} GB can be attached.", reason="too_large",
                                  name=name)

    def _write(self, sha: str, pieces: list[bytes]) -> None:
        target = self.path_of(sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        with os.fdopen(fd, "wb") as out:
            for piece in pieces:
                out.write(piece)
        os.replace(tmp, target)
