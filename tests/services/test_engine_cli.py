"""``victor-gui engine install|status`` as a user runs them: real subprocesses, HOME and the XDG
folders in tmp, a real cmake and compiler building a tiny stand-in for llama.cpp from an sdist
shaped like PyPI's (the real llama.cpp build is tests/integration/test_engine_install_real.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers.base import free_port
from tests.servers.pypi import PyPIRelease, PyPIServer
from tests.services.chat_cli_support import ROOT, Home
from tests.support.tiny_cmake import write_fake_sdist, write_tiny_project
from victor_gui.services.engine_install import STAMP_NAME, installed_engine
from victor_gui.services.engine_sdist import DEFAULT_VERSION

VERSION = "9.9.9"


def _env(home: Home, *, first: Path | None = None, path: str | None = None, pypi: str | None = None,
         ) -> dict[str, str]:
    env = home.env()
    # No llama-server of the developer's on PATH: the tests decide what is on it (``first``).
    dirs = [d for d in (path if path is not None else env.get("PATH", "")).split(os.pathsep)
            if d and not (Path(d) / "llama-server").exists()]
    env["PATH"] = os.pathsep.join(([str(first)] if first else []) + dirs)
    # Never the real PyPI from a test: a simulator, or a port nothing listens on.
    env["VICTOR_PYPI_URL"] = pypi or f"http://127.0.0.1:{free_port()}"
    return env


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _cli(home: Home, *args: str, first: Path | None = None, path: str | None = None,
         pypi: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "victor_gui", "engine", *args], cwd=ROOT,
                          env=_env(home, first=first, path=path, pypi=pypi), capture_output=True,
                          text=True, timeout=50, check=False)


def _engines(home: Home) -> Path:
    return home.data / "victor_gui" / "engines" / "llama-server"


def test_install_builds_into_the_data_folder_then_status_says_it_is_used(home: Home, tmp_path: Path) -> None:
    sdist = write_fake_sdist(tmp_path / "dl", VERSION, write_tiny_project(tmp_path / "tree", sources=2))
    built = _cli(home, "install", "--sdist", str(sdist), "--jobs", "2", "--opt", "O0", "--no-native")
    assert built.returncode == 0, built.stderr
    binary = _engines(home) / VERSION / "llama-server"
    assert built.stdout.strip() == str(binary)
    for phase in ("check", "extract", "configure", "build", "install", "done"):
        assert f"== {phase}:" in built.stderr
    assert "[100%]" in built.stderr
    stamp = json.loads((binary.parent / STAMP_NAME).read_text())
    assert (stamp["llama_cpp_python_version"], stamp["opt"], stamp["native"]) == (VERSION, "O0", False)
    assert "-DGGML_NATIVE=OFF" in stamp["cmake_flags"]
    assert stamp["sdist_sha256_source"] == "local file, not pinned"
    # Only the binary, its stamp and the build log are left: no sources, objects or lock litter.
    assert sorted(p.name for p in binary.parent.iterdir()) == ["build-stamp.json", "llama-server"]
    assert {p.name for p in _engines(home).iterdir()} == {VERSION, f"build-{VERSION}.log", ".install.lock"}
    ran = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=True)
    assert "version: 1 (tiny)" in ran.stderr

    again = _cli(home, "install", "--sdist", str(sdist))
    assert again.returncode == 0 and "already installed" in again.stderr and "--force" in again.stderr
    assert again.stdout.strip() == str(binary)

    status = _cli(home, "status", "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["chosen"] == {"path": str(binary), "source": "installed", "version": "version: 1 (tiny)"}
    assert "engine install" in doc["reason"]
    text = _cli(home, "status")
    assert f"* installed  {binary}" in text.stdout


def test_install_downloads_the_sdist_from_pypi_checks_it_and_builds(home: Home, tmp_path: Path) -> None:
    sdist = write_fake_sdist(tmp_path / "dl", VERSION, write_tiny_project(tmp_path / "tree"))
    with PyPIServer([PyPIRelease(VERSION, sdist.read_bytes())]) as pypi:
        built = _cli(home, "install", "--version", VERSION, "--jobs", "2", pypi=pypi.url)
        assert pypi.bytes_sent == {sdist.name: sdist.stat().st_size}
    assert built.returncode == 0, built.stderr
    assert "== download:" in built.stderr and "sha256 matches (pypi)" in built.stderr
    binary = _engines(home) / VERSION / "llama-server"
    assert built.stdout.strip() == str(binary)
    stamp = json.loads((binary.parent / STAMP_NAME).read_text())
    assert (stamp["opt"], stamp["native"], stamp["sdist_sha256_source"]) == ("O2", True, "pypi")
    assert "-DGGML_NATIVE=ON" in stamp["cmake_flags"]
    assert not (_engines(home) / f".work-{VERSION}").exists()  # the download went with the sources


def test_installed_engine_is_the_newest_stamped_version(tmp_path: Path) -> None:
    for version, stamped in (("0.3.9", True), ("0.3.10", True), ("0.3.11", False), (".0.9.9.staging", True)):
        binary = _script(tmp_path / version / "llama-server", version)
        if stamped:
            (binary.parent / STAMP_NAME).write_text("{}")
    # 0.3.11 died before its stamp and a staging folder is never an install: 0.3.10 (not "0.3.9").
    assert installed_engine(tmp_path) == tmp_path / "0.3.10" / "llama-server"
    assert installed_engine(tmp_path / "nowhere") is None


def test_a_llama_server_on_path_is_used_unless_forced(home: Home, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    system = bin_dir / "llama-server"
    system.write_text("#!/bin/sh\necho 'version: 4242 (deadbeef)' >&2\necho 'built with cc' >&2\n")
    system.chmod(0o755)
    said = _cli(home, "install", first=bin_dir)
    assert said.returncode == 0
    assert "already on PATH" in said.stderr and "version: 4242 (deadbeef)" in said.stderr
    assert "--force" in said.stderr and said.stdout.strip() == str(system)
    assert not _engines(home).exists()  # nothing downloaded, nothing built

    status = json.loads(_cli(home, "status", "--json", first=bin_dir).stdout)
    assert status["chosen"]["source"] == "PATH" and status["chosen"]["path"] == str(system)


def test_no_engine_anywhere_is_an_answer_that_says_how_to_get_one(home: Home) -> None:
    status = _cli(home, "status")
    assert status.returncode == 0
    assert "No llama-server found" in status.stdout and "victor-gui engine install" in status.stdout


def test_missing_tools_exit_3_with_the_sentence(home: Home, tmp_path: Path) -> None:
    sdist = write_fake_sdist(tmp_path / "dl", VERSION, write_tiny_project(tmp_path / "tree"))
    empty = _cli(home, "install", "--sdist", str(sdist), path="")
    assert empty.returncode == 3, empty.stderr
    assert "needs cmake, make, C compiler, C++ compiler" in empty.stderr
    assert ("build-essential" if sys.platform != "darwin" else "xcode-select") in empty.stderr
    assert not (_engines(home) / VERSION).exists()


def test_usage_errors_exit_2(home: Home, tmp_path: Path) -> None:
    assert _cli(home, "install", "--sdist", str(tmp_path / "nope.tar.gz")).returncode == 2
    assert _cli(home, "install", "--jobs", "0").returncode == 2
    assert _cli(home, "install", "--version", "../../etc").returncode == 2
    assert _cli(home, "frobnicate").returncode == 2


def test_a_failed_build_exits_1_with_the_last_lines_of_the_log(home: Home, tmp_path: Path) -> None:
    sdist = write_fake_sdist(tmp_path / "dl", VERSION, write_tiny_project(tmp_path / "tree", fail=True))
    failed = _cli(home, "install", "--sdist", str(sdist), "--jobs", "1")
    assert failed.returncode == 1
    assert "engine install failed: build failed" in failed.stderr
    assert "last lines of the build log:" in failed.stderr and "error" in failed.stderr
    assert f"whole log: {_engines(home) / f'build-{VERSION}.log'}" in failed.stderr
    assert not (_engines(home) / VERSION).exists() and installed_engine(_engines(home)) is None


def test_a_local_sdist_of_a_pinned_version_must_have_the_pinned_sha256(home: Home, tmp_path: Path) -> None:
    sdist = write_fake_sdist(tmp_path / "dl", DEFAULT_VERSION, write_tiny_project(tmp_path / "tree"))
    refused = _cli(home, "install", "--sdist", str(sdist))
    assert refused.returncode == 1
    assert "sha256" in refused.stderr and "refused" in refused.stderr
    assert not (_engines(home) / DEFAULT_VERSION).exists()


def test_ctrl_c_stops_the_build_and_installs_nothing(home: Home, tmp_path: Path) -> None:
    pidfile = tmp_path / "slow.pid"
    tree = write_tiny_project(tmp_path / "tree", slow_step=pidfile)
    sdist = write_fake_sdist(tmp_path / "dl", VERSION, tree)
    proc = subprocess.Popen([sys.executable, "-m", "victor_gui", "engine", "install", "--sdist", str(sdist)],
                            cwd=ROOT, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 40
        while not (pidfile.is_file() and pidfile.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        sleeper = int(pidfile.read_text())
        proc.send_signal(signal.SIGINT)  # what Ctrl+C sends to the foreground process
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "nothing was installed" in err
    assert not _alive(sleeper)  # the compiler's grandchild went with it
    assert not (_engines(home) / VERSION).exists()
    # The work folder stays so a new try resumes the build, but holds no installed engine.
    assert installed_engine(_engines(home)) is None


def _script(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho 'version: {version}' >&2\n")
    path.chmod(0o755)
    return path


@pytest.mark.skipif(sys.platform != "linux", reason="Jan's Linux data folder")
def test_status_finds_jans_engine_after_path_and_the_installed_one(home: Home, tmp_path: Path) -> None:
    backends = home.home / ".local/share/Jan/data/llamacpp/backends"
    jan = _script(backends / "b6324/linux-avx2-x64/build/bin/llama-server", "6324 (jan)")
    _script(backends / "b6000/linux-noavx-x64/build/bin/llama-server", "6000 (old jan)")
    doc = json.loads(_cli(home, "status", "--json").stdout)
    assert [c["source"] for c in doc["candidates"]] == ["Jan", "Jan"]
    assert doc["chosen"] == {"path": str(jan), "source": "Jan", "version": "version: 6324 (jan)"}
    assert "Jan ships it" in doc["reason"]

    mine = _script(_engines(home) / "0.3.36" / "llama-server", "1 (victor)")
    (mine.parent / STAMP_NAME).write_text("{}")
    on_path = _script(tmp_path / "bin" / "llama-server", "9999 (system)")
    doc = json.loads(_cli(home, "status", "--json", first=on_path.parent).stdout)
    assert [c["source"] for c in doc["candidates"]] == ["PATH", "installed", "Jan", "Jan"]
    assert doc["chosen"]["path"] == str(on_path)
