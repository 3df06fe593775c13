"""``victor-gui fit``: real headers, a real Ollama-shaped server on 127.0.0.1, no Qt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.base import SimHandler, SimServer, free_port
from tests.sizing.gguf_factory import Spec, write_gguf
from victor_gui.__main__ import main
from victor_gui.errors import GGUFError

ROOT = Path(__file__).resolve().parents[2]


def test_fit_json_on_a_generated_gguf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_gguf(tmp_path / "m.gguf", Spec(n_ctx_train=2048), header_only=True)
    assert main(["fit", str(path), "--ctx", "1024", "--cache-type", "q8_0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "ok" and data["model"]["arch"] == "llama" and data["model"]["n_layer"] == 4
    assert data["verdict"] in {"full", "partial", "cpu", "no_fit"}
    assert data["options"]["n_ctx"] == 1024 and data["options"]["cache_type_k"] == "q8_0"
    assert data["result"]["total"]["weights"] == data["model"]["weight_bytes"]


def test_fit_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_gguf(tmp_path / "m.gguf", Spec(), header_only=True)
    assert main(["fit", str(path)]) == 0
    text = capsys.readouterr().out
    assert "Verdict" in text and "KV cache" in text and "Largest context" in text and "RAM" in text


def test_fit_bad_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.gguf").write_bytes(b"not a gguf at all")
    assert main(["fit", str(tmp_path / "x.gguf"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "bad_magic"


class OllamaShow(SimHandler):
    routes = {("POST", "/api/show"): "show", ("GET", "/api/tags"): "tags"}

    def show(self) -> None:
        if self.body.get("model") != "tiny":
            self.send_json(404, {"error": f"model '{self.body.get('model')}' not found"})
            return
        info = {"general.architecture": "llama", "llama.block_count": 2, "llama.context_length": 8192,
                "llama.embedding_length": 256, "llama.attention.head_count": 8,
                "llama.attention.head_count_kv": 2, "llama.feed_forward_length": 512,
                "llama.vocab_size": 1000, "tokenizer.ggml.tokens": []}
        tensors = [{"name": "token_embd.weight", "type": "Q4_K", "shape": [256, 1000]},
                   {"name": "blk.0.attn_q.weight", "type": "Q4_K", "shape": [256, 256]},
                   {"name": "blk.1.attn_q.weight", "type": "Q4_K", "shape": [256, 256]},
                   {"name": "output.weight", "type": "Q6_K", "shape": [256, 1000]}]
        self.send_json(200, {"model_info": info, "tensors": tensors, "details": {"format": "gguf"}})

    def tags(self) -> None:
        self.send_json(200, {"models": []})


def test_fit_ollama_model(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with SimServer(OllamaShow) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        assert main(["fit", "ollama:tiny", "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        # token_embd 256 × 1,000 Q4_K = 1,000 blocks × 144 B; each attn_q 256 blocks × 144 B;
        # output 1,000 blocks × 210 B (Q6_K).
        assert data["model"]["kind"] == "ollama"
        assert data["result"]["total"]["weights"] == 144_000 + 2 * 36_864 + 210_000
        assert main(["fit", "ollama:absent"]) == 5  # answered, but without that model
        assert "has no model 'absent'" in capsys.readouterr().out


def test_fit_ollama_not_running(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{free_port()}")
    assert main(["fit", "ollama:anything"]) == 4
    assert "Ollama is not answering" in capsys.readouterr().out


def test_fit_imports_no_qt(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", Spec(), header_only=True)
    code = ("import sys\nfrom victor_gui.__main__ import main\n"
            f"assert main(['fit', {str(path)!r}, '--json']) == 0\n"
            "assert not any(k.startswith(('PySide6', 'qasync', 'shiboken6')) for k in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=50)
    assert out.returncode == 0, out.stderr


async def test_split_model_reads_every_shard(tmp_path: Path) -> None:
    from victor_gui.sizing.sources import load_model, read_split_gguf

    spec = Spec(n_layer=6)
    first = write_gguf(tmp_path / "big.gguf", spec, split_max_tensors=20)
    whole = write_gguf(tmp_path / "whole.gguf", spec, header_only=True)
    assert first.name == "big-00001-of-00003.gguf"
    header, shards = await read_split_gguf(str(tmp_path / "big-00002-of-00003.gguf"))
    assert len(shards) == 3 and header.metadata["general.architecture"] == "llama"
    source = await load_model(str(first))
    reference = await load_model(str(whole))
    assert source.arch.weight_bytes == reference.arch.weight_bytes
    assert source.arch.layer_weight_bytes == reference.arch.layer_weight_bytes
    (tmp_path / "big-00003-of-00003.gguf").unlink()
    with pytest.raises(GGUFError) as info:
        await load_model(str(first))
    assert info.value.reason == "io"


def test_fit_exits_non_zero_on_every_error(tmp_path: Path) -> None:
    """As a subprocess, the way a script sees it: no answer is never exit 0."""
    def fit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "victor_gui", "fit", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=False)

    missing = fit(str(tmp_path / "missing.gguf"))
    assert missing.returncode == 1 and "cannot read" in missing.stdout
    not_gguf = tmp_path / "notes.txt"
    not_gguf.write_text("not a model at all", encoding="utf-8")
    assert fit(str(not_gguf)).returncode == 1
    path = write_gguf(tmp_path / "m.gguf", Spec(), header_only=True)
    for bad in (["--ctx", "0"], ["--ctx", "-5"], ["--ctx", "lots"], ["--cache-type", "q3"], ["--nope"]):
        result = fit(str(path), *bad)
        assert result.returncode == 2, (bad, result.stderr)
        assert "Traceback" not in result.stderr
    assert "4  Ollama does not answer" in fit("--help").stdout
