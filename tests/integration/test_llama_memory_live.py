"""The committed memory ground truth still matches the server binary: regenerate a few of the
table's models, start the server the way the table was measured, and compare the parsed log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.llama_memory import parse_memory_log, record
from tests.support.tiny_gguf import make_tiny_gguf

pytestmark = pytest.mark.llamacpp

TABLE = Path(__file__).resolve().parents[1] / "data" / "llama_memory_ground_truth.json"


def _pick(rows: list[dict], **want: object) -> dict:
    (row,) = [r for r in rows if all(r[k] == v for k, v in want.items())]
    return row


@pytest.mark.parametrize("want", [
    {"arch": "qwen3", "ftype": "q8_0", "ctx": 1000, "cache_type_k": "q4_0", "flash_attn_arg": "auto"},
    {"arch": "qwen2", "ftype": "f16", "ctx": 0, "cache_type_k": "f16", "flash_attn_arg": "off"},
    {"arch": "llama", "ftype": "f16", "ctx": 4096, "cache_type_k": "q8_0", "flash_attn_arg": "auto"},
], ids=lambda w: f"{w['arch']}-{w['ftype']}-c{w['ctx']}-{w['cache_type_k']}-fa_{w['flash_attn_arg']}")
def test_table_row_reproduces(start_llama, tmp_path: Path, want: dict) -> None:
    row = _pick(json.loads(TABLE.read_text()), **want)
    model = make_tiny_gguf(tmp_path / "m.gguf", **row["make_tiny_gguf_kwargs"])
    server = start_llama(model, ctx=row["ctx"], cache_type_k=row["cache_type_k"], verbose=True,
                         extra_args=["--no-warmup", "-fa", row["flash_attn_arg"]])
    report = parse_memory_log(server.log_text())
    fresh = record(report, gen=row["make_tiny_gguf_kwargs"], ctx=row["ctx"],
                   flash_attn_arg=row["flash_attn_arg"], model_file_bytes=model.stat().st_size,
                   version=row["llama_cpp_python"])
    assert fresh == row
