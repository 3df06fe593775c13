"""``victor-gui engine install`` for real: the pinned llama-cpp-python sdist built into a working
llama-server, which then serves a completion from the tiny GGUF.

The llama.cpp tier's own binary is built by this same command (``tests/support/llama_build.py``
runs it at ``-O0``/``--no-native`` into ``<llama cache>/engine-install/O0-native-off/``), so CI pays
for one build, not two: on a fresh machine ``.ci/setup.sh`` builds it through the CLI, and this
test then finds the stamped install the CLI made, runs the command again (it says "already
installed") and checks that the binary serves. With nothing built yet (``VICTOR_ENGINE_INSTALL_TEST=1``
on a clean cache) it builds here. Runs only with that variable or under ``CI=true``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import ModelFactory
from tests.support.llama_build import LLAMA_CPP_PYTHON_VERSION, in_ci, install_prefix, kept_sdist
from tests.support.llama_server import running_llama_server
from victor_gui.services.engine_install import read_stamp, stamped_binary

ROOT = Path(__file__).resolve().parents[2]
OPT = "O0"

pytestmark = [pytest.mark.llamacpp, pytest.mark.slow, pytest.mark.timeout(3600)]


def _enabled() -> bool:
    return os.environ.get("VICTOR_ENGINE_INSTALL_TEST", "") == "1" or in_ci()


def _run_interruptibly(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run the CLI; past ``timeout_s`` stop it with SIGINT (Ctrl+C), so it kills its build's
    process group and cleans up, instead of SIGKILL, which would orphan cmake and the compilers."""
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"engine install ran past {timeout_s} s and was interrupted:\n{err[-4000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@pytest.mark.skipif(sys.platform == "win32", reason="engine install is for Linux and macOS")
def test_engine_install_builds_a_llama_server_that_serves_the_tiny_model(
        tiny_model: ModelFactory, tmp_path: Path) -> None:
    if not _enabled():
        pytest.skip("a real llama.cpp build: set VICTOR_ENGINE_INSTALL_TEST=1 (CI=true runs it)")
    version = LLAMA_CPP_PYTHON_VERSION
    prefix = install_prefix()
    args = [sys.executable, "-m", "victor_gui", "engine", "install", "--prefix", str(prefix),
            "--opt", OPT, "--no-native", "--jobs", str(os.cpu_count() or 2)]
    kept = kept_sdist(version)
    if kept.is_file():
        args += ["--sdist", str(kept)]
    cached = stamped_binary(prefix / version)
    if cached is None:
        args.append("--force")  # a llama-server on this machine's PATH must not stop the build
    done = _run_interruptibly(args, timeout_s=3300)
    assert done.returncode == 0, done.stderr[-4000:]
    binary = prefix / version / "llama-server"
    assert done.stdout.strip().splitlines()[-1] == str(binary)
    if cached is None:
        assert "[100%]" in done.stderr and "== done:" in done.stderr
        assert not (prefix / f".work-{version}").exists()  # sources and objects removed after the build
    else:
        assert "already installed" in done.stderr
    stamp = read_stamp(binary.parent) or {}
    flavour = (stamp.get("llama_cpp_python_version"), stamp.get("opt"), stamp.get("native"))
    assert flavour == (version, OPT, False)

    with running_llama_server(tiny_model(), binary=binary, log_dir=tmp_path, ready_timeout_s=60) as server:
        reply = httpx.post(f"{server.base_url}/v1/chat/completions", timeout=60, json={
            "messages": [{"role": "user", "content": "Say something."}], "max_tokens": 8})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] >= 1
