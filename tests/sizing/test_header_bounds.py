"""Reading a remote model header is bounded like every other reply (issue 16): a server that
answers a range request with a gzip bomb costs a few MiB, not the inflated size, and ends in a
typed GGUFError."""

from __future__ import annotations

import pytest

from tests.providers import hostile_http as hh
from victor_gui.errors import GGUFError
from victor_gui.sizing.gguf_reader import header_client, read_gguf_url
from victor_gui.sizing.hf_reader import read_safetensors_header


async def test_a_gzip_bomb_for_a_header_is_refused_with_little_memory() -> None:
    async with hh.serve(hh.gzip_bomb("200 OK", "application/octet-stream")) as server:
        with hh.PeakRSS() as rss:
            with pytest.raises(GGUFError):
                await read_gguf_url(server.url + "/m.gguf")
            with pytest.raises(GGUFError):
                await read_safetensors_header(server.url + "/m.safetensors")
    assert rss.growth_mib < 32, rss.growth_mib


async def test_the_header_client_is_bounded_and_follows_redirects() -> None:
    client = header_client()
    try:
        assert client.follow_redirects
        assert client.deadline_s and client.idle_s  # type: ignore[attr-defined]
    finally:
        await client.aclose()
