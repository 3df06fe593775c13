"""``victor-gui fit`` flags (issue 17 part 6): a described machine, splits, vLLM, ``hf:`` refs
over HTTP ranges from a Hub-shaped server on 127.0.0.1, and the persistent header cache."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.sizing.gguf_factory import Spec, write_gguf
from victor_gui.__main__ import main
from victor_gui.cli.fit import parse_size

ROOT = Path(__file__).resolve().parents[2]
GiB = 1 << 30
BIG = Spec(n_layer=40, n_embd=4096, n_head=32, n_head_kv=8, n_ff=14336, n_vocab=32000, n_ctx_train=32768)


def fit_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["fit", *args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 40 blocks of ~436 MiB (f16): 17.6 GiB of weights, too much for one 16 GiB card.
    return write_gguf(tmp_path_factory.mktemp("m") / "big.gguf", BIG, header_only=True)


def test_parse_size() -> None:
    assert parse_size("24GiB") == 24 * GiB and parse_size("24") == 24 * GiB
    assert parse_size("24000MiB") == 24000 << 20 and parse_size("24GB") == 24 * 10**9
    assert parse_size("1.5g") == 3 * GiB // 2


def test_gpu_mem_and_gpus_describe_the_machine(big_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = fit_json(capsys, str(big_model), "--gpu-mem", "16GiB", "--ctx", "4096")
    assert one["verdict"] == "partial"
    two = fit_json(capsys, str(big_model), "--gpu-mem", "16GiB", "--gpus", "2", "--ctx", "4096")
    result = two["result"]
    assert isinstance(result, dict) and two["verdict"] == "full"
    layers = [d["layers"] for d in result["devices"]]
    assert len(layers) == 2 and all(layers) and sum(layers) == 40  # both cards hold layers
    assert result["tensor_split"] == [float(layers[0]), float(layers[1] + 1)]
    listed = fit_json(capsys, str(big_model), "--gpu-mem", "16GiB,16GiB", "--tensor-split", "3,1")
    split = [d["layers"] for d in listed["result"]["devices"]]  # type: ignore[index]
    assert split[0] > 2 * split[1]
    alone = fit_json(capsys, str(big_model), "--gpu-mem", "24GiB", "--gpu-mem", "24GiB", "--main-gpu", "1")
    devices = alone["result"]["devices"]  # type: ignore[index]
    assert [d["device"]["index"] for d in devices] == [1] and alone["result"]["main_gpu"] == 1  # type: ignore[index]
    cpu = fit_json(capsys, str(big_model), "--gpu-mem", "16GiB", "--gpus", "0")
    assert cpu["verdict"] in ("cpu", "no_fit") and cpu["gpus"] == []
    assert main(["fit", str(big_model), "--gpu-mem", "24GiB", "--main-gpu", "3"]) == 2  # no GPU 3
    assert "--main-gpu 3: no such GPU (found: 0)" in capsys.readouterr().err
    no_gpu = fit_json(capsys, str(big_model), "--vllm", "--gpu-mem", "16GiB", "--gpus", "0")
    assert no_gpu["verdict"] == "no_fit" and "needs a GPU" in str(no_gpu["message"])


def test_margin_is_shown_apart_and_adjustable(big_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = fit_json(capsys, str(big_model), "--gpu-mem", "24GiB", "--margin", "1GiB")
    gpu = data["result"]["gpu"]  # type: ignore[index]
    assert gpu["margin"] == GiB and gpu["overhead"] == 448 << 20
    assert main(["fit", str(big_model), "--gpu-mem", "24GiB"]) == 0
    table = capsys.readouterr().out
    assert re.search(r"^margin\s+256 MiB", table, re.M) and re.search(r"^overhead\s+448 MiB", table, re.M)


def test_vllm_mode_states_kv_token_capacity(big_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = fit_json(capsys, str(big_model), "--vllm", "--gpu-mem", "80GiB", "--gpus", "2", "--tp", "2",
                    "--gpu-util", "0.9")
    vllm = data["vllm"]
    assert isinstance(vllm, dict) and data["engine"] == "vllm" and vllm["tensor_parallel_size"] == 2
    # 8 KV heads / TP 2 × (128 + 128) × 2 B × 40 layers = 81,920 B a token per GPU.
    assert vllm["kv_tokens"] == vllm["kv_available"] // (16 * 81_920) * 16
    assert vllm["max_model_len"] > 32768  # the memory's answer, not the 32,768 trained length
    assert main(["fit", str(big_model), "--vllm", "--gpu-mem", "80GiB"]) == 0
    assert "KV cache capacity:" in capsys.readouterr().out


def test_bad_flags_exit_2(big_model: Path) -> None:
    for bad in (["--gpu-mem", "lots"], ["--tensor-split", "a,b"], ["--tensor-split", "0,0"],
                ["--gpu-util", "2"], ["--gpus", "-1"], ["--tp", "x"]):
        out = subprocess.run([sys.executable, "-m", "victor_gui", "fit", str(big_model), *bad], cwd=ROOT,
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 2, (bad, out.stderr)
        assert "Traceback" not in out.stderr


# --- hf: references and the header cache -------------------------------------------------------

class HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: dict[str, Path], etag: str | None = "sha-1") -> None:
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.files, self.etag = files, etag
        self.token: str | None = None  # set: the repo is gated, every request needs this bearer
        self.gets = 0
        self.heads = 0
        self.bytes_sent = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class HubHandler(BaseHTTPRequestHandler):
    """``/OWNER/REPO/resolve/main/FILE`` like the Hub: HEAD with X-Linked-Etag, ranged GETs."""

    server: HubServer  # type: ignore[assignment]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _file(self) -> Path | None:
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/main/(.+)", self.path)
        return self.server.files.get(f"{m.group(1)}/{m.group(2)}") if m else None

    def _gated(self) -> bool:
        if self.server.token and self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self.send_error(401)
            return True
        return False

    def do_HEAD(self) -> None:
        self.server.heads += 1
        if self._gated():
            return
        path = self._file()
        if path is None:
            self.send_error(404)
            return
        self.send_response(200)
        if self.server.etag:
            self.send_header("X-Linked-Etag", f'"{self.server.etag}"')
        self.send_header("Content-Length", str(path.stat().st_size))
        self.end_headers()

    def do_GET(self) -> None:
        self.server.gets += 1
        if self._gated():
            return
        path = self._file()
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if path is None or m is None:
            self.send_error(404 if path is None else 400)
            return
        size = path.stat().st_size
        start, end = int(m.group(1)), min(int(m.group(2)), size - 1)
        with path.open("rb") as fh:
            fh.seek(start)
            data = fh.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server.bytes_sent += len(data)


@pytest.fixture()
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    # A full-size file (sparse): 1.1 GB of tensors behind a header of a few hundred KB.
    model = write_gguf(tmp_path / "model-Q8_0.gguf", Spec(n_layer=8, n_embd=2048, n_head=16, n_head_kv=4,
                                                          n_ff=5632, n_vocab=32000, tokens=32000))
    server = HubServer({"acme/tiny-GGUF/model-Q8_0.gguf": model})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_hf_ref_reads_only_the_header_then_answers_from_the_cache(
        hub: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    size = next(iter(hub.files.values())).stat().st_size
    first = fit_json(capsys, "hf:acme/tiny-GGUF/model-Q8_0.gguf", "--gpu-mem", "8GiB")
    assert first["model"]["kind"] == "hf" and first["model"]["file_size"] == size  # type: ignore[index]
    assert hub.gets >= 1 and hub.bytes_sent < 2 << 20 < size  # the header's range only
    gets, sent = hub.gets, hub.bytes_sent
    again = fit_json(capsys, "hf:acme/tiny-GGUF/model-Q8_0.gguf", "--gpu-mem", "8GiB")
    assert (hub.gets, hub.bytes_sent) == (gets, sent)  # one HEAD for the ETag, no range read
    assert again["model"] == first["model"]
    assert again["result"]["total"] == first["result"]["total"]  # type: ignore[index]
    hub.etag = "sha-2"  # the file was re-uploaded: read again
    fit_json(capsys, "hf:acme/tiny-GGUF/model-Q8_0.gguf", "--gpu-mem", "8GiB")
    assert hub.gets > gets
    assert main(["fit", "hf:acme/tiny-GGUF/absent.gguf", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "io"
    assert main(["fit", "hf:acme", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "bad_value"


def test_gated_repo_uses_hf_token_and_never_prints_it(hub: HubServer, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    hub.token = "hf_secret_token_123"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert main(["fit", "hf:acme/tiny-GGUF/model-Q8_0.gguf", "--gpu-mem", "8GiB", "--json"]) == 1
    assert "401" in capsys.readouterr().out
    monkeypatch.setenv("HF_TOKEN", hub.token)
    data = fit_json(capsys, "hf:acme/tiny-GGUF/model-Q8_0.gguf", "--gpu-mem", "8GiB")
    assert data["model"]["kind"] == "hf" and hub.token not in json.dumps(data)  # type: ignore[index]


def test_local_cache_follows_size_and_mtime(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from victor_gui.sizing.header_cache import default_cache, file_key

    path = write_gguf(tmp_path / "m.gguf", Spec(n_layer=4), header_only=True)
    assert fit_json(capsys, str(path), "--gpu-mem", "8GiB")["model"]["n_layer"] == 4  # type: ignore[index]
    assert default_cache().get(file_key(path)) is not None  # stored on the first read
    write_gguf(path, Spec(n_layer=6), header_only=True)  # the same path, another model
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert fit_json(capsys, str(path), "--gpu-mem", "8GiB")["model"]["n_layer"] == 6  # type: ignore[index]
    # A damaged entry is a miss, never an error.
    for entry in (default_cache().folder).glob("*.json"):
        entry.write_text("{not json", encoding="utf-8")
    assert fit_json(capsys, str(path), "--gpu-mem", "8GiB")["model"]["n_layer"] == 6  # type: ignore[index]


def test_fit_on_a_file_imports_no_httpx_pydantic_or_qt(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", Spec(), header_only=True)
    code = ("import sys\nfrom victor_gui.__main__ import main\n"
            f"assert main(['fit', {str(path)!r}, '--json']) == 0\n"
            f"assert main(['fit', {str(path)!r}, '--gpu-mem', '8GiB']) == 0\n"
            "bad = sorted(k for k, m in sys.modules.items() if m is not None and k.split('.')[0] in "
            "('httpx', 'pydantic', 'PySide6', 'qasync', 'shiboken6'))\n"
            "assert not bad, bad\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=50,
                         env={**os.environ})
    assert out.returncode == 0, out.stderr
