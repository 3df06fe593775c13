"""``victor-gui fit`` on a FIFO or a device is refused before opening (issue 16, finding 9).

Before: opening a FIFO for reading waits for a writer, in a worker thread that Ctrl-C cannot
stop, so ``fit`` hung for good. Now anything but a regular file is refused from its ``stat``
with a clear message and exit code 1, and never opened.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from victor_gui.errors import GGUFError
from victor_gui.sizing.gguf_reader import read_gguf_file

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")


def _fit(*args: str) -> subprocess.CompletedProcess[str]:
    # Bounded: a hang (the bug) ends as TimeoutExpired after 20 s and the child is killed.
    return subprocess.run([sys.executable, "-m", "victor_gui", "fit", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=20, check=False)


def test_fit_on_a_fifo_is_refused_with_exit_1(tmp_path: Path) -> None:
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    started = time.monotonic()
    result = _fit(str(fifo), "--json")
    assert result.returncode == 1, result.stderr
    assert '"reason": "not_a_file"' in result.stdout and "not a regular file" in result.stdout
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 20


def test_fit_on_a_device_is_refused_with_exit_1() -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    result = _fit("/dev/zero")
    assert result.returncode == 1 and "not a regular file" in result.stdout


async def test_reader_refuses_a_fifo_before_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    with pytest.raises(GGUFError) as info:
        await read_gguf_file(fifo)
    assert info.value.reason == "not_a_file"


async def test_safetensors_reader_refuses_a_fifo(tmp_path: Path) -> None:
    from victor_gui.sizing.hf_reader import read_safetensors_header

    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(GGUFError) as info:
        await asyncio.wait_for(read_safetensors_header(fifo), 10)
    assert info.value.reason == "not_a_file"
