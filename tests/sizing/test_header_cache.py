"""The persistent header cache: a real file's description round-trips; anything stale, foreign,
damaged or oversized is a miss (the header is read again), never an error or a wrong answer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.sizing.gguf_factory import Spec, write_gguf
from victor_gui.errors import GGUFError
from victor_gui.sizing import header_cache
from victor_gui.sizing.architecture import from_gguf
from victor_gui.sizing.gguf_reader import read_gguf_file
from victor_gui.sizing.header_cache import HeaderCache, file_key, url_key
from victor_gui.sizing.sources import load_model


async def test_round_trip_and_misses(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", Spec(n_layer=3, tokens=500), header_only=True)
    arch = from_gguf(await read_gguf_file(path))
    cache = HeaderCache(tmp_path / "cache")
    key = file_key(path)
    assert key is not None and cache.get(key) is None
    cache.put(key, arch, 1234)
    assert cache.get(key) == (arch, 1234)
    assert file_key(tmp_path / "absent.gguf") is None and cache.get(None) is None
    assert url_key("https://x/m.gguf", None) is None and url_key("https://x/m.gguf", '"abc"') is not None

    entry = next(cache.folder.glob("*.json"))
    data = json.loads(entry.read_text(encoding="utf-8"))
    for damage in ({"code": "another parser"}, {"key": "another key"},
                   {"arch": {**data["arch"], "n_layer": "3"}},  # a string where an int belongs
                   {"arch": {**data["arch"], "n_head": [[1]]}}, {"arch": {"n_layer": 3}}):
        entry.write_text(json.dumps({**data, **damage}), encoding="utf-8")
        assert cache.get(key) is None, damage
    entry.write_bytes(b" " * (header_cache.MAX_ENTRY_BYTES + 1))
    assert cache.get(key) is None


async def test_load_model_reads_once_then_from_the_cache(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", Spec(n_layer=5), header_only=True)
    cache = HeaderCache(tmp_path / "cache")
    first = await load_model(str(path), cache=cache)
    # Spoil the magic in place, keeping size and mtime: a read would now fail (bad_magic), so an
    # answer can only come from the cache.
    st = path.stat()
    with path.open("r+b") as fh:
        fh.write(b"XXXX")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = await load_model(str(path), cache=cache)
    assert again.arch == first.arch and again.file_size == first.file_size
    with pytest.raises(GGUFError):
        await load_model(str(path))  # without the cache it is read, and refused


async def test_a_full_disk_only_loses_the_speed_up(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    cache = HeaderCache(blocker)
    arch = from_gguf(await read_gguf_file(write_gguf(tmp_path / "s.gguf", Spec(n_layer=2), header_only=True)))
    cache.put("file:x:1:2", arch, 1)  # cannot create the folder: no error
    assert cache.get("file:x:1:2") is None
