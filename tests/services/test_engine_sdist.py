"""The engine's sources: PyPI's JSON API over real HTTP (a simulator on 127.0.0.1), the sha256
check, and an extraction of vendor/llama.cpp that refuses what would write outside it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from tests.servers.pypi import PyPIRelease, PyPIServer
from tests.support.tiny_cmake import write_fake_sdist, write_tiny_project
from victor_gui.errors import EngineInstallError
from victor_gui.services.engine_install import fetch_sdist
from victor_gui.services.engine_sdist import DEFAULT_VERSION, PINNED_SHA256, extract_llama_cpp


async def _fetch(version: str, dest: Path, pypi: str) -> Path | None:
    got: Path | None = None
    async for event in fetch_sdist(version, dest, pypi=pypi):
        got = event.path or got
    return got


async def test_download_is_kept_only_when_its_sha256_matches(tmp_path: Path) -> None:
    good = PyPIRelease("9.9.9", b"sdist bytes " * 1000)
    bad = PyPIRelease("9.9.8", b"tampered", declared_sha256=hashlib.sha256(b"original").hexdigest())
    with PyPIServer([bad, good]) as pypi:
        with pytest.raises(EngineInstallError) as refused:
            await _fetch("9.9.8", tmp_path / "dl", pypi.url)
        assert refused.value.reason == "checksum"
        assert pypi.bytes_sent == {bad.filename: len(bad.data)}  # it was downloaded, then refused
        assert list((tmp_path / "dl").iterdir()) == []  # neither the file nor its .part is left

        path = await _fetch("9.9.9", tmp_path / "dl", pypi.url)
    assert path == tmp_path / "dl" / good.filename
    assert path.read_bytes() == good.data


async def test_a_file_url_relative_to_the_json_is_resolved(tmp_path: Path) -> None:
    release = PyPIRelease("9.9.9", b"sdist bytes")
    with PyPIServer([release], relative_urls=True, redirect=False) as pypi:
        path = await _fetch("9.9.9", tmp_path, pypi.url)
        assert pypi.bytes_sent == {release.filename: len(release.data)}
    assert path is not None and path.read_bytes() == release.data


async def test_a_pinned_version_whose_pypi_digest_differs_from_the_pin_is_not_downloaded(
        tmp_path: Path) -> None:
    impostor = PyPIRelease(DEFAULT_VERSION, b"not the real llama-cpp-python")
    assert impostor.sha256 != PINNED_SHA256[DEFAULT_VERSION]
    with PyPIServer([impostor]) as pypi:
        with pytest.raises(EngineInstallError, match="pinned") as refused:
            await _fetch(DEFAULT_VERSION, tmp_path / "dl", pypi.url)
        assert refused.value.reason == "checksum"
        assert pypi.bytes_sent == {}  # refused from the JSON alone
        # A local copy with the wrong bytes is thrown away too, never built from.
        (tmp_path / "dl").mkdir()
        (tmp_path / "dl" / impostor.filename).write_bytes(impostor.data)
        with pytest.raises(EngineInstallError):
            await _fetch(DEFAULT_VERSION, tmp_path / "dl", pypi.url)
        assert not (tmp_path / "dl" / impostor.filename).exists()


async def test_an_unknown_version_or_an_unreachable_pypi_is_an_install_error(tmp_path: Path) -> None:
    with PyPIServer([PyPIRelease("9.9.9", b"x")]) as pypi:
        with pytest.raises(EngineInstallError, match="lists no") as unknown:
            await _fetch("1.2.3", tmp_path, pypi.url)
        url = pypi.url
    assert unknown.value.reason == "download"
    with pytest.raises(EngineInstallError, match="could not reach PyPI"):
        await _fetch("9.9.9", tmp_path, url)  # the simulator is stopped: connection refused


async def test_only_vendor_llama_cpp_is_extracted(tmp_path: Path) -> None:
    sdist = write_fake_sdist(tmp_path, "9.9.9", write_tiny_project(tmp_path / "tree"))
    src = await extract_llama_cpp(sdist, tmp_path / "src")
    assert (src / "CMakeLists.txt").is_file() and (src / "tools" / "server").is_dir()
    assert not (tmp_path / "src" / "llama_cpp_python-9.9.9" / "setup.py").exists()
    assert [p.name for p in (tmp_path / "src").iterdir()] == ["llama_cpp_python-9.9.9"]
    assert await extract_llama_cpp(sdist, tmp_path / "src") == src  # a complete one is reused


def _hostile_sdist(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    top = "llama_cpp_python-6.6.6/vendor/llama.cpp"
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo(f"{top}/CMakeLists.txt")
        ok.size = 3
        tar.addfile(ok, io.BytesIO(b"# x"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if data else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


TOP = "llama_cpp_python-6.6.6/vendor/llama.cpp"


@pytest.mark.parametrize(("member", "why"), [
    (_member(f"{TOP}/../../../../escaped.txt"), "unsafe path"),
    (_member(f"{TOP}/tools/../../../../../escaped.txt"), "unsafe path"),
    (_member(f"{TOP}/link", tarfile.SYMTYPE, "../../../../escaped.txt"), "leads out"),
    (_member(f"{TOP}/abs", tarfile.SYMTYPE, "/etc/passwd"), "leads out"),
    (_member(f"{TOP}/hard", tarfile.LNKTYPE, "llama_cpp_python-6.6.6/setup.py"), "leads out"),
    (_member(f"{TOP}/dev", tarfile.CHRTYPE), "device"),
], ids=["dotdot", "dotdot-inside", "symlink-out", "symlink-absolute", "hardlink-out", "device"])
async def test_an_sdist_that_would_write_outside_vendor_llama_cpp_is_refused(
        tmp_path: Path, member: tarfile.TarInfo, why: str) -> None:
    sdist = _hostile_sdist(tmp_path / "llama_cpp_python-6.6.6.tar.gz", member, b"owned\n")
    dest = tmp_path / "deep" / "er" / "src"
    with pytest.raises(EngineInstallError, match=why) as refused:
        await extract_llama_cpp(sdist, dest)
    assert refused.value.reason == "archive"
    assert not await asyncio.to_thread(lambda: list(tmp_path.rglob("escaped.txt")))
    # The partial tree is gone: nothing is left that a later run would take for sources.
    assert await asyncio.to_thread(lambda: list(dest.iterdir())) == []
