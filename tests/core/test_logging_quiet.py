"""Health probes and discovery do not fill the log (issue 14: 121 KB in 7 minutes at INFO)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from tests.servers import ollama
from victor_gui.core.logging_setup import setup_logging
from victor_gui.servers.probe import probe_endpoint
from victor_gui.servers.status import Endpoint


@pytest.fixture
def restore_logging():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    before = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in ("httpx", "httpcore")})
    yield
    for handler in list(root.handlers):
        if handler not in before[0]:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(before[1])
    for name, level in before[2].items():
        logging.getLogger(name).setLevel(level)


def test_probes_write_nothing_at_the_default_level(tmp_path: Path, restore_logging: None) -> None:
    log_file = setup_logging(tmp_path)
    server = ollama.make_server().start()
    try:
        async def probe_many() -> None:
            async with httpx.AsyncClient() as client:
                for _ in range(20):
                    await probe_endpoint(client, Endpoint(server.url))

        asyncio.run(probe_many())
    finally:
        server.stop()
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text(encoding="utf-8") if log_file.exists() else ""
    assert "HTTP Request" not in text
    assert len(text) < 2000, text[:500]


def test_requests_are_logged_at_debug(tmp_path: Path, restore_logging: None) -> None:
    log_file = setup_logging(tmp_path, level=logging.DEBUG)
    server = ollama.make_server().start()
    try:
        async def probe_once() -> None:
            async with httpx.AsyncClient() as client:
                await probe_endpoint(client, Endpoint(server.url))

        asyncio.run(probe_once())
    finally:
        server.stop()
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "HTTP Request" in log_file.read_text(encoding="utf-8")
