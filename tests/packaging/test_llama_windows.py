"""The Windows bundle's engine under Wine: ``llama-server.exe`` cross-compiled with mingw-w64
(``packaging/llama_windows.py``) imports no mingw runtime DLL, starts in a fresh Wine prefix with
the tiny model, answers ``/health`` and completes over HTTP; the spec's helper bundles it.

The real exe is cached outside the repo (~15-30 min to build once): under ``CI=true`` the test
builds it when missing, locally it skips with the command to run. The tiny C++ cross build (a
few seconds) runs under Wine on every run, so the static link is checked without the cache.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.packaging.support import load_packaging_script
from tests.packaging.wine import WinePrefix
from tests.support.llama_build import in_ci
from tests.support.llama_server import LlamaServer, running_llama_server
from tests.support.tiny_cross import cross_build_tiny, mingw_tools
from tests.support.tiny_gguf import make_tiny_gguf
from victor_gui.services.engine_cross import pe_imports, runtime_dlls
from victor_gui.services.engine_install import BUNDLED_DIR, read_stamp

pytestmark = [pytest.mark.packaging]


@pytest.fixture(scope="module")
def llama_windows() -> ModuleType:
    """``packaging/llama_windows.py`` imported as a module."""
    return load_packaging_script("llama_windows")


def wine_launcher(prefix: WinePrefix, exe: Path, dest: Path) -> Path:
    """A shell script that runs ``exe`` under Wine in ``prefix`` with its arguments: a stand-in
    binary for :func:`tests.support.llama_server.start_llama_server` (same args, same log, same
    /health wait and SIGTERM stop)."""
    env = {k: prefix.env[k] for k in ("HOME", "WINEPREFIX", "WINEDEBUG", "WINEDLLOVERRIDES", "LC_ALL")}
    lines = ["#!/bin/sh", "unset DISPLAY WAYLAND_DISPLAY",
             *(f"export {k}={shlex.quote(v)}" for k, v in env.items()),
             f'exec {shlex.quote(prefix.wine)} {shlex.quote(str(exe))} "$@"', ""]
    dest.write_text("\n".join(lines))
    dest.chmod(0o755)
    return dest


@pytest.mark.timeout(300)
async def test_the_tiny_static_cross_build_runs_in_a_bare_wine_prefix(tmp_path: Path,
                                                                     wine: WinePrefix) -> None:
    mingw_tools()
    _, exe = await cross_build_tiny(tmp_path)
    proc = wine.run(str(exe), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "thread ran"  # std::thread ran with no libwinpthread-1.dll around
    version = wine.run(str(exe), "--version", timeout=120)
    assert "version: 1 (tiny cross)" in version.stderr


def windows_exe(llama_windows: ModuleType) -> Path:
    """The cached cross build; built here under CI (mandatory there), else skip with the command."""
    found = llama_windows.find_exe()
    if found is not None:
        return Path(found)
    if not in_ci():
        pytest.skip(llama_windows.missing_reason())
    mingw_tools()
    return Path(llama_windows.ensure())


@pytest.mark.llamacpp
@pytest.mark.timeout(3600)  # the first build under CI; a cached exe takes seconds
def test_windows_llama_server_completes_under_wine(tmp_path: Path, llama_windows: ModuleType,
                                                   wine: WinePrefix) -> None:
    exe = windows_exe(llama_windows)
    imports = pe_imports(exe)
    assert runtime_dlls(imports) == [], imports
    assert {"kernel32.dll", "ws2_32.dll"} <= {name.lower() for name in imports}, imports
    stamp = read_stamp(exe.parent)
    assert stamp is not None and stamp["target"] == "win64" and stamp["opt"] == "O2"
    assert "-DGGML_NATIVE=OFF" in stamp["cmake_flags"]

    model = make_tiny_gguf(tmp_path / "tiny.gguf")
    launcher = wine_launcher(wine, exe, tmp_path / "wine-llama-server")
    started = time.monotonic()
    with running_llama_server(model, binary=launcher, ctx=512, log_dir=tmp_path / "logs",
                              ready_timeout_s=180.0, poll_s=0.2) as server:
        ready_s = time.monotonic() - started
        reply = _complete(server)
    print(f"\nllama-server.exe under Wine: {exe.stat().st_size / 2**20:.1f} MiB, imports {imports}; "
          f"ready in {ready_s:.1f} s; completion {reply!r}")
    assert reply["choices"][0]["message"]["content"]
    assert reply["usage"]["completion_tokens"] > 0
    assert os.path.getsize(exe) > 1_000_000


def _complete(server: LlamaServer) -> dict[str, object]:
    body = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, "temperature": 0}
    with httpx.Client(timeout=120.0) as client:
        response = client.post(server.base_url + "/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text[:2000]
    data = response.json()
    assert isinstance(data, dict)
    return data


def test_the_spec_bundles_the_exe_into_the_engine_folder(tmp_path: Path, llama_windows: ModuleType,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(llama_windows.ENV_BUNDLE, raising=False)
    monkeypatch.setenv("VICTOR_LLAMA_CACHE", str(tmp_path / "cache"))  # an empty cache
    assert llama_windows.bundle_datas(windows=True) == []
    # A stamped exe in the cache goes into engines/llama-server/ of a Windows bundle only.
    cached = llama_windows.exe_path()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"MZ stand-in")
    cached.chmod(0o755)
    (cached.parent / "build-stamp.json").write_text("{}")
    assert llama_windows.bundle_datas(windows=True) == [(str(cached), "engines/llama-server")]
    assert llama_windows.bundle_datas(windows=False) == []
    # A CI artifact named by the environment wins, on any OS; a wrong name is an error, not a
    # bundle that silently ships without its engine.
    artifact = tmp_path / "artifact" / "llama-server.exe"
    artifact.parent.mkdir()
    artifact.write_bytes(b"MZ artifact")
    monkeypatch.setenv(llama_windows.ENV_BUNDLE, str(artifact))
    assert llama_windows.bundle_datas(windows=False) == [(str(artifact), "engines/llama-server")]
    monkeypatch.setenv(llama_windows.ENV_BUNDLE, str(tmp_path / "missing.exe"))
    with pytest.raises(FileNotFoundError):
        llama_windows.bundle_datas(windows=True)
    # The folder is the one the frozen app's engine search reads.
    assert BUNDLED_DIR.as_posix() == llama_windows.BUNDLE_DIR
