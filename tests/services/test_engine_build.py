"""The engine build with a real cmake and a real C compiler on a tiny two-file project: progress
from the build's own ``[ NN%]`` lines, a cancel that kills the whole process group, a failure that
carries the log's tail, and the missing-tools sentence with PATH emptied."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.tiny_cmake import write_tiny_project
from victor_gui.errors import EngineInstallError, EngineToolsMissingError
from victor_gui.services.engine_build import (
    BuildLog,
    EngineProgress,
    check_tools,
    cmake_build,
    cmake_flags,
    parse_progress,
    tools_hint,
)

FLAGS = ("-DCMAKE_BUILD_TYPE=Release",)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's wait is missing


async def test_progress_comes_from_the_builds_own_percent_lines(tmp_path: Path) -> None:
    src = write_tiny_project(tmp_path / "src", sources=3)
    log = BuildLog(tmp_path / "build.log")
    await log.open()
    events: list[EngineProgress] = []
    try:
        async for event in cmake_build(src, tmp_path / "build", FLAGS, log=log, jobs=1):
            events.append(event)
    finally:
        await log.close()
    phases = [e.phase for e in events]
    assert phases[0] == "configure" and phases[-1] == "build"
    assert phases.index("build") > phases.index("configure")
    assert all(e.percent is None for e in events if e.phase == "configure")
    percents = [e.percent for e in events if e.percent is not None]
    assert len(percents) >= 4  # one per object file and the link
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert any("Linking C executable" in e.line for e in events if e.percent == 100.0)
    binary = tmp_path / "build" / "bin" / "llama-server"
    done = await asyncio.to_thread(subprocess.run, [binary, "--version"], capture_output=True, text=True,
                                   timeout=10, check=True)
    assert done.stderr.startswith("version: 1 (tiny)")
    assert "Building C object" in (tmp_path / "build.log").read_text()


def test_ninja_and_make_progress_lines_parse() -> None:
    assert parse_progress("[ 45%] Building CXX object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o") == 45.0
    assert parse_progress("[100%] Built target llama-server") == 100.0
    assert parse_progress("[12/48] Building CXX object common/CMakeFiles/common.dir/arg.cpp.o") == 25.0
    assert parse_progress("-- Configuring done") is None
    assert parse_progress("warning: [-Wunused] 45%") is None


async def test_cancel_kills_the_whole_build_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "slow.pid"
    src = write_tiny_project(tmp_path / "src", slow_step=pidfile)
    log = BuildLog(None)
    seen: list[EngineProgress] = []

    async def consume() -> None:
        async for event in cmake_build(src, tmp_path / "build", FLAGS, log=log, jobs=1):
            seen.append(event)

    task = asyncio.create_task(consume())
    deadline = time.monotonic() + 30
    while not (pidfile.is_file() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline and not task.done(), seen[-5:]
        await asyncio.sleep(0.05)
    sleeper = int(pidfile.read_text())
    assert _alive(sleeper)  # the grandchild (cmake -> make -> sh/sleep) is running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline = time.monotonic() + 5
    while _alive(sleeper) and time.monotonic() < deadline:  # noqa: ASYNC110 - polling another process
        await asyncio.sleep(0.05)
    assert not _alive(sleeper)
    assert not (tmp_path / "build" / "bin" / "llama-server").exists()


async def test_a_compile_error_fails_with_the_tail_of_the_log(tmp_path: Path) -> None:
    src = write_tiny_project(tmp_path / "src", fail=True)
    log = BuildLog(tmp_path / "build.log")
    await log.open()
    with pytest.raises(EngineInstallError) as failed:
        async for _ in cmake_build(src, tmp_path / "build", FLAGS, log=log, jobs=1):
            pass
    await log.close()
    assert failed.value.reason == "build"
    assert "build failed" in failed.value.message
    assert any("error" in line for line in failed.value.log_tail)
    assert failed.value.log_path == str(tmp_path / "build.log")


def test_missing_tools_are_named_with_the_packages_to_install() -> None:
    with pytest.raises(EngineToolsMissingError) as missing:
        check_tools(path="")
    assert set(missing.value.missing) == {"cmake", "make", "C compiler", "C++ compiler"}
    assert "cmake" in missing.value.message and missing.value.hint in missing.value.message
    assert "cmake build-essential" in tools_hint("linux")
    assert "xcode-select --install" in tools_hint("darwin") and "brew install cmake" in tools_hint("darwin")
    assert check_tools()["cmake"].endswith("cmake")  # this machine has them all


def test_user_and_test_flavours_differ_only_in_optimisation_and_native() -> None:
    user, test = cmake_flags(), cmake_flags("O0", native=False)
    assert "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG" in user and "-DGGML_NATIVE=ON" in user
    assert "-DCMAKE_CXX_FLAGS_RELEASE=-O0 -DNDEBUG" in test and "-DGGML_NATIVE=OFF" in test
    assert len(set(user) ^ set(test)) == 6
    with pytest.raises(ValueError):
        cmake_flags("Ofast")


@pytest.mark.skipif(sys.platform == "win32", reason="the engine install is for Linux and macOS")
def test_tools_check_honours_cc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    with pytest.raises(EngineToolsMissingError) as missing:
        check_tools(path=os.environ["PATH"])
    assert missing.value.missing == ("C compiler",)
