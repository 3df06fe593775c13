"""``victor-gui fit FILE --gpu-mem ...`` is a light process (issue 17 part 6): a local model on
given GPUs is answered without an event loop, and without asyncio, httpx, pydantic or Qt
being imported at all; the answer is the one the async path gives. No timing here: the time
and its ratio to ``python -c pass`` are measured by bench/bench_fit.py."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

from tests.sizing.gguf_factory import Spec, write_gguf
from victor_gui.__main__ import build_parser
from victor_gui.cli.fit import fit_command, run_fit
from victor_gui.sizing.ram import parse_meminfo, ram_info

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("asyncio", "httpx", "pydantic", "PySide6", "ssl", "victor_gui.providers", "victor_gui.services")


def _args(*words: str) -> argparse.Namespace:
    return build_parser(only="fit").parse_args(["fit", *words])


def test_a_local_file_on_given_gpus_imports_nothing_heavy(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", Spec(n_layer=6, tokens=300), header_only=True)
    code = ("import sys, json\nfrom victor_gui.__main__ import main\n"
            f"assert main(['fit', {str(path)!r}, '--gpu-mem', '24GiB', '--json']) == 0\n"
            # (victor_gui/__init__.py leaves a None placeholder for httpx._main: nothing loaded)
            f"heavy = sorted(k for k, m in sys.modules.items()\n"
            f"               if m is not None and k.startswith({HEAVY!r}))\n"
            "print(json.dumps(heavy), file=sys.stderr)\n"
            "assert not heavy, heavy\n"
            "assert sys.platform != 'linux' or 'psutil' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=50)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "ok"


def test_the_light_answer_is_the_async_one(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", Spec(n_layer=6, n_ctx_train=8192), header_only=True)
    words = (str(path), "--gpu-mem", "12GiB,8GiB", "--ctx", "8192", "--json", "--no-cache")
    light, loop = io.StringIO(), io.StringIO()
    assert run_fit(_args(*words), light) == 0
    assert asyncio.run(fit_command(_args(*words), loop)) == 0
    a, b = json.loads(light.getvalue()), json.loads(loop.getvalue())
    a["ram"] = b["ram"] = None  # read twice: "available" moves between the two reads
    a["result"]["ram_available"] = b["result"]["ram_available"] = None
    assert a == b and a["verdict"] in {"full", "partial"} and len(a["gpus"]) == 2


def test_a_split_model_on_given_gpus_still_reads_every_shard(tmp_path: Path) -> None:
    spec = Spec(n_layer=6)
    first = write_gguf(tmp_path / "big.gguf", spec, split_max_tensors=20)
    whole = write_gguf(tmp_path / "whole.gguf", spec, header_only=True)
    answers = []
    for ref in (first, whole):
        out = io.StringIO()
        assert run_fit(_args(str(ref), "--gpu-mem", "24GiB", "--json"), out) == 0
        answers.append(json.loads(out.getvalue())["model"]["weight_bytes"])
    assert answers[0] == answers[1] > 0


def test_a_missing_file_on_given_gpus_exits_1(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_fit(_args(str(tmp_path / "absent.gguf"), "--gpu-mem", "24GiB", "--json"), out) == 1
    assert json.loads(out.getvalue())["reason"] == "io"


def test_ram_from_meminfo_is_psutils_figure(tmp_path: Path) -> None:
    text = "MemTotal:       16318412 kB\nMemFree:  1000 kB\nMemAvailable:   9271416 kB\n"
    ram = parse_meminfo(text)
    assert ram is not None and (ram.total, ram.available) == (16318412 * 1024, 9271416 * 1024)
    assert parse_meminfo("MemTotal: 1 kB\n") is None  # an old kernel: psutil answers instead
    fake = tmp_path / "meminfo"
    fake.write_text(text, encoding="ascii")
    if sys.platform.startswith("linux"):
        assert ram_info(str(fake)) == ram
        import psutil

        assert ram_info().total == psutil.virtual_memory().total
    assert ram_info(str(tmp_path / "absent")).total > 0  # no file: psutil


def test_gpu_detection_for_a_local_file_loads_no_tls(tmp_path: Path) -> None:
    # Detection needs the event loop; a process that opens no connection loads asyncio without
    # its TLS support, and the probes and the answer work the same.
    path = write_gguf(tmp_path / "m.gguf", Spec(n_layer=6), header_only=True)
    code = ("import sys\nfrom victor_gui.__main__ import main\n"
            f"assert main(['fit', {str(path)!r}, '--json']) == 0\n"
            "assert 'asyncio' in sys.modules and sys.modules.get('ssl') is None\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=50)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["status"] == "ok" and "GPUs as given by --gpu-mem" not in answer["notes"]
