"""The win64 cross path of the engine recipe with the real mingw-w64 compilers on a tiny C++
project (seconds, not the half hour llama.cpp takes): the generated toolchain file, the portable
flags, a static exe that imports Windows DLLs only, a dynamic link caught by the import check;
and the frozen app's own engine found last by the engine search.

The llama.cpp cross build itself, run under Wine with the tiny model, is
tests/packaging/test_llama_windows.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tiny_cmake import write_fake_sdist
from tests.support.tiny_cross import MAIN_CPP, cross_build_tiny, mingw_tools, write_tiny_cpp_tree
from victor_gui.errors import EngineToolsMissingError
from victor_gui.services.engine_binary import find_llama_server
from victor_gui.services.engine_cross import (
    WIN64,
    check_cross_tools,
    lacks_power_throttling,
    pe_imports,
    runtime_dlls,
)
from victor_gui.services.engine_install import (
    BINARY_NAME,
    build_from_sdist,
    bundled_engine,
    engine_status,
    read_stamp,
)


async def test_recipe_cross_builds_a_static_windows_exe(tmp_path: Path) -> None:
    tools = mingw_tools()
    events, exe = await cross_build_tiny(tmp_path)
    assert exe == tmp_path / "dest" / "llama-server.exe"
    assert exe.read_bytes()[:2] == b"MZ"  # a PE file, not a host binary
    toolchain = (tmp_path / "work" / "toolchain-win64.cmake").read_text()
    assert "set(CMAKE_SYSTEM_NAME Windows)" in toolchain
    assert f'set(CMAKE_CXX_COMPILER "{tools["C++ cross compiler"]}")' in toolchain
    assert tools["C++ cross compiler"].endswith("-g++-posix")
    assert '"-static -static-libgcc -static-libstdc++"' in toolchain
    # Old mingw headers (Debian 12's mingw-w64 10) lack SetThreadInformation: C gets the Win7 API.
    include = Path("/usr/x86_64-w64-mingw32/include")
    assert ('set(CMAKE_C_FLAGS_INIT "-D_WIN32_WINNT=0x0601")' in toolchain) == lacks_power_throttling(include)
    stamp = read_stamp(exe.parent)
    assert stamp is not None and stamp["target"] == WIN64 and stamp["native"] is False
    flags = stamp["cmake_flags"]
    assert flags[0] == f"-DCMAKE_TOOLCHAIN_FILE={tmp_path / 'work' / 'toolchain-win64.cmake'}"
    assert {"-DGGML_NATIVE=OFF", "-DGGML_AVX2=OFF", "-DGGML_OPENMP=OFF",
            "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG"} <= set(flags)
    assert any(e.phase == "configure" and "x86_64-w64-mingw32-g++-posix" in e.line for e in events)
    imports = await asyncio.to_thread(pe_imports, exe)
    assert "KERNEL32.dll" in imports
    assert runtime_dlls(imports) == [], imports
    # Sources and objects go after a success, like a native build's.
    assert not (tmp_path / "work" / "src").exists() and not (tmp_path / "work" / "build-O2-win64").exists()


def test_a_dynamic_mingw_link_is_caught_by_the_import_check(tmp_path: Path) -> None:
    tools = mingw_tools()
    (tmp_path / "main.cpp").write_text(MAIN_CPP)
    exe = tmp_path / "dynamic.exe"
    subprocess.run([tools["C++ cross compiler"], "-O1", str(tmp_path / "main.cpp"), "-o", str(exe)],
                   check=True, timeout=120, capture_output=True)
    bad = runtime_dlls(pe_imports(exe))
    assert "libstdc++-6.dll" in bad and "libwinpthread-1.dll" in bad


async def test_a_cross_build_cannot_be_tuned_for_this_cpu(tmp_path: Path) -> None:
    mingw_tools()
    tree = write_tiny_cpp_tree(tmp_path / "tree")
    sdist = write_fake_sdist(tmp_path / "dl", "0.0.1", tree)
    with pytest.raises(ValueError, match="GGML_NATIVE"):
        async for _ in build_from_sdist(sdist, work_dir=tmp_path / "work", dest_dir=tmp_path / "dest",
                                        native=True, target=WIN64):
            pass
    assert not (tmp_path / "dest").exists()


def test_missing_cross_tools_are_named_with_the_packages() -> None:
    with pytest.raises(EngineToolsMissingError) as info:
        check_cross_tools(WIN64, path="")
    assert set(info.value.missing) == {"cmake", "make", "C cross compiler", "C++ cross compiler",
                                       "resource compiler"}
    assert "g++-mingw-w64-x86-64-posix" in info.value.hint


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in engine is a shell script")
async def test_the_frozen_app_finds_its_own_engine_last(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    app = tmp_path / "victor-gui"
    shipped = app / "_internal" / "engines" / "llama-server" / BINARY_NAME
    shipped.parent.mkdir(parents=True)
    shipped.write_text('#!/bin/sh\necho "version: 4242 (bundled cpu build)" >&2\n')
    shipped.chmod(0o755)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no Jan or LM Studio here
    assert await asyncio.to_thread(bundled_engine) is None  # a source checkout ships nothing

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app / "victor-gui"))
    monkeypatch.setattr(sys, "_MEIPASS", str(app / "_internal"), raising=False)
    status = await engine_status(path_env="", prefix=tmp_path / "installed")
    assert [(c.path, c.source, c.version) for c in status.candidates] == [
        (shipped, "bundled", "version: 4242 (bundled cpu build)")]
    assert "the app ships it" in status.reason()
    # The engine runner's search (what "Run with llama-server" starts) ends at the same file.
    home = tmp_path / "home"
    env = {"PATH": "", "XDG_CACHE_HOME": str(tmp_path / "no-cache")}
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "no-data"))
    found = await asyncio.to_thread(find_llama_server, None, env, home)
    assert found.path == shipped and found.looked[-1].startswith("shipped with Victor GUI")

    # Any other llama-server comes first: here one on PATH (a system package or a GPU build).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    system = bin_dir / "llama-server"
    system.write_text('#!/bin/sh\necho "version: 1 (system)" >&2\n')
    system.chmod(0o755)
    status = await engine_status(path_env=str(bin_dir), prefix=tmp_path / "installed")
    assert [c.source for c in status.candidates] == ["PATH", "bundled"]
    assert status.chosen is not None and status.chosen.path == system
    assert os.access(shipped, os.X_OK)
