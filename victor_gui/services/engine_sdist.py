"""The llama.cpp sources the engine is built from: the ``llama-cpp-python`` sdist on PyPI.

PyPI has no llama-server binary, but the ``llama-cpp-python`` sdist vendors all of llama.cpp
(``vendor/llama.cpp``, ``tools/server`` included), and PyPI is a registry every developer, CI
and user machine reaches. This module fetches that sdist through PyPI's JSON API with httpx
(the version pinned with its sha256; another version is checked against the digest PyPI
publishes), or takes a local one, verifies it, and extracts only ``vendor/llama.cpp`` with
every member checked: no absolute names, no ``..``, no link that leads out, no device files,
and bounded member count and size (an sdist is untrusted input until its digest matched, and
even then it is a tarball written by someone else).

File I/O and hashing run in worker threads; the event loop only awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import posixpath
import re
import shutil
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from victor_gui.errors import EngineInstallError

if TYPE_CHECKING:
    import tarfile

PACKAGE = "llama-cpp-python"
#: The release whose vendored llama.cpp is built by default (and by the test tier).
DEFAULT_VERSION = "0.3.36"
#: sha256 of each pinned sdist (checked against PyPI's own digest when it was pinned).
PINNED_SHA256: dict[str, str] = {
    "0.3.36": "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
}
#: PyPI's base URL; ``VICTOR_PYPI_URL`` points at a mirror (or, in tests, a simulator).
PYPI_URL = "https://pypi.org"

_CHUNK = 1 << 16
_MAX_JSON = 32 << 20  # the project JSON lists every release; ~200 KB today
_MAX_SDIST = 512 << 20  # 0.3.36 is 73 MiB
_MAX_MEMBERS = 100_000  # all members scanned, in or out of vendor/llama.cpp (0.3.36: ~4,000)
_MAX_EXTRACTED = 2 << 30  # bytes written (0.3.36: 166 MiB)
_MAX_MEMBER = 512 << 20
_VERSION_RE = re.compile(r"^[0-9][0-9A-Za-z.+!-]*$")


@dataclass(frozen=True)
class SdistSource:
    """Where the sdist comes from: its URL, size and the sha256 it must have, and why we trust it."""

    version: str
    url: str
    sha256: str
    size: int | None
    sha256_source: str  # "pinned" or "pypi"


def pypi_url() -> str:
    """PyPI's base URL, or ``$VICTOR_PYPI_URL`` (a mirror)."""
    return (os.environ.get("VICTOR_PYPI_URL") or PYPI_URL).rstrip("/")


def sdist_name(version: str) -> str:
    """The sdist's file name for ``version`` (PEP 625 normalised)."""
    return f"llama_cpp_python-{version}.tar.gz"


def sdist_version(path: Path) -> str | None:
    """The version a ``llama_cpp_python-<V>.tar.gz`` file name carries, or None."""
    m = re.fullmatch(r"llama[_-]cpp[_-]python-(.+)\.tar\.gz", path.name)
    return m.group(1) if m and _VERSION_RE.match(m.group(1)) else None


def check_version(version: str) -> str:
    """``version`` if it looks like a release number (it becomes part of a path)."""
    if not _VERSION_RE.match(version) or ".." in version:
        raise EngineInstallError(f"not a release number: {version!r}", reason="download")
    return version


async def find_sdist(client: httpx.AsyncClient, version: str, base_url: str | None = None) -> SdistSource:
    """Look ``version``'s sdist up in PyPI's JSON API; refuse it when PyPI's digest is not the
    pinned one."""
    check_version(version)
    url = f"{base_url or pypi_url()}/pypi/{PACKAGE}/json"
    try:
        async with client.stream("GET", url, headers={"Accept": "application/json"}) as resp:
            if resp.status_code != 200:
                raise EngineInstallError(f"PyPI answered {resp.status_code} for {url}", reason="download")
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > _MAX_JSON:
                    raise EngineInstallError(f"PyPI's answer for {PACKAGE} is over {_MAX_JSON} bytes",
                                             reason="download")
    except httpx.HTTPError as exc:
        raise EngineInstallError(f"could not reach PyPI ({url}): {exc}", reason="download") from exc
    try:
        files = json.loads(body)["releases"][version]
    except (ValueError, KeyError, TypeError):
        raise EngineInstallError(f"PyPI lists no {PACKAGE} {version}", reason="download") from None
    sdists = [f for f in files if isinstance(f, dict) and f.get("packagetype") == "sdist"]
    if not sdists:
        raise EngineInstallError(f"PyPI has no source distribution of {PACKAGE} {version}", reason="download")
    entry = sdists[0]
    published = str((entry.get("digests") or {}).get("sha256") or "").lower()
    pinned = PINNED_SHA256.get(version)
    if pinned is not None and published != pinned:
        raise EngineInstallError(
            f"PyPI's sha256 for {PACKAGE} {version} is {published or 'missing'}, not the pinned "
            f"{pinned}: refused", reason="checksum")
    if not re.fullmatch(r"[0-9a-f]{64}", published):
        raise EngineInstallError(f"PyPI gives no sha256 for {PACKAGE} {version}", reason="checksum")
    size = entry.get("size")
    # pypi.org gives absolute URLs (its file host); a mirror may give them relative to the JSON.
    file_url = str(httpx.URL(url).join(str(entry.get("url") or "")))
    return SdistSource(version, file_url, published,
                       size if isinstance(size, int) else None, "pinned" if pinned else "pypi")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


async def verify_sha256(path: Path, expected: str) -> None:
    """Raise :class:`EngineInstallError` (``checksum``) unless ``path`` hashes to ``expected``."""
    actual = await asyncio.to_thread(_sha256_file, path)
    if actual != expected.lower():
        raise EngineInstallError(f"{path.name}: sha256 is {actual}, expected {expected}: refused",
                                 reason="checksum")


async def download_sdist(client: httpx.AsyncClient, source: SdistSource, dest_dir: Path,
                         ) -> AsyncIterator[tuple[int, int | None]]:
    """Download ``source`` into ``dest_dir`` (yields ``(bytes so far, total)``), hashing as it
    goes; the file gets its final name only once its sha256 matched, so a failed or cancelled
    download never passes for a good one."""
    await asyncio.to_thread(dest_dir.mkdir, parents=True, exist_ok=True)
    final = dest_dir / sdist_name(source.version)
    part = final.with_name(final.name + ".part")
    limit = min(_MAX_SDIST, (source.size + _CHUNK) if source.size else _MAX_SDIST)
    digest = hashlib.sha256()
    done = 0
    fh = await asyncio.to_thread(open, part, "wb")
    try:
        try:
            async with client.stream("GET", source.url, follow_redirects=True) as resp:
                if resp.status_code != 200:
                    raise EngineInstallError(f"download of {final.name} answered {resp.status_code}",
                                             reason="download")
                async for chunk in resp.aiter_bytes(_CHUNK):
                    done += len(chunk)
                    if done > limit:
                        raise EngineInstallError(f"{final.name} is larger than announced ({limit} bytes)",
                                                 reason="download")
                    digest.update(chunk)
                    await asyncio.to_thread(fh.write, chunk)
                    yield done, source.size
        except httpx.HTTPError as exc:
            raise EngineInstallError(f"download of {final.name} failed: {exc}", reason="download") from exc
        await asyncio.to_thread(fh.close)
        if digest.hexdigest() != source.sha256:
            raise EngineInstallError(f"{final.name}: sha256 is {digest.hexdigest()}, expected "
                                     f"{source.sha256}: refused", reason="checksum")
        await asyncio.to_thread(os.replace, part, final)
    finally:
        await asyncio.to_thread(fh.close)
        await asyncio.to_thread(_unlink, part)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


# -- extraction --------------------------------------------------------------------------------


def _member_problem(member: tarfile.TarInfo, prefix: str) -> str | None:
    """Why ``member`` (under ``prefix``) must not be extracted, or None."""
    name = member.name
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or ".." in parts or re.match(r"^[A-Za-z]:", name):
        return f"unsafe path {name!r}"
    if member.isdev() or member.isfifo():
        return f"device or fifo {name!r}"
    if member.size > _MAX_MEMBER:
        return f"{name!r} is {member.size} bytes"
    if member.issym() or member.islnk():
        link = member.linkname
        if link.startswith("/") or "\\" in link:
            return f"link {name!r} -> {link!r} leads out"
        # A symlink is relative to its own folder; a hard link names another member.
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), link) if member.issym() else link)
        if not (target + "/").startswith(prefix):
            return f"link {name!r} -> {link!r} leads out of vendor/llama.cpp"
    elif not (member.isfile() or member.isdir()):
        return f"unsupported member type {name!r}"
    return None


def _extract(sdist: Path, dest: Path, cancel: threading.Event) -> Path:
    # Imported here: this module is loaded whenever the app looks for a llama-server (the
    # first-run offer), and tarfile stayed in memory for the run though only an install unpacks.
    import tarfile

    top = sdist.name.removesuffix(".tar.gz")
    prefix = f"{top}/vendor/llama.cpp/"
    partial = dest / f".{top}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    written = 0
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            for count, member in enumerate(tar, 1):
                if cancel.is_set():
                    raise EngineInstallError("extraction cancelled", reason="archive")
                if count > _MAX_MEMBERS:
                    raise EngineInstallError(f"{sdist.name} has over {_MAX_MEMBERS} members: refused",
                                             reason="archive")
                if not (member.name + "/").startswith(prefix):
                    continue
                problem = _member_problem(member, prefix)
                if problem:
                    raise EngineInstallError(f"{sdist.name}: {problem}: refused", reason="archive")
                written += member.size
                if written > _MAX_EXTRACTED:
                    raise EngineInstallError(f"{sdist.name} unpacks to over {_MAX_EXTRACTED} bytes: refused",
                                             reason="archive")
                # The "data" filter repeats the checks above inside tarfile itself.
                tar.extract(member, partial, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise EngineInstallError(f"{sdist.name} could not be unpacked: {exc}", reason="archive") from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    src = partial / top / "vendor" / "llama.cpp"
    if not (src / "CMakeLists.txt").is_file() or not (src / "tools" / "server").is_dir():
        shutil.rmtree(partial, ignore_errors=True)
        raise EngineInstallError(f"{sdist.name} has no vendor/llama.cpp with tools/server", reason="archive")
    final = dest / top
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial / top, final)
    shutil.rmtree(partial, ignore_errors=True)
    return final / "vendor" / "llama.cpp"


def extracted_sources(sdist: Path, dest: Path) -> Path | None:
    """The ``vendor/llama.cpp`` folder a completed extraction of ``sdist`` left in ``dest``."""
    src = dest / sdist.name.removesuffix(".tar.gz") / "vendor" / "llama.cpp"
    return src if (src / "CMakeLists.txt").is_file() else None


async def extract_llama_cpp(sdist: Path, dest: Path) -> Path:
    """Extract only ``vendor/llama.cpp`` of ``sdist`` under ``dest``; returns its path.

    The tree appears under its final name only once complete (a cancelled extraction leaves
    nothing that a later run would take for sources); an earlier complete one is reused.
    """
    done = await asyncio.to_thread(extracted_sources, sdist, dest)
    if done is not None:
        return done
    await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
    cancel = threading.Event()
    work: asyncio.Future[Path] = asyncio.ensure_future(asyncio.to_thread(_extract, sdist, dest, cancel))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        # The worker thread cannot be killed: tell it to stop and wait for it to clean up.
        cancel.set()
        with contextlib.suppress(BaseException):
            await work
        raise

__all__ = [
    "DEFAULT_VERSION",
    "PINNED_SHA256",
    "SdistSource",
    "check_version",
    "download_sdist",
    "extract_llama_cpp",
    "extracted_sources",
    "find_sdist",
    "pypi_url",
    "sdist_name",
    "sdist_version",
    "verify_sha256",
]
