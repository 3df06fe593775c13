"""Fixtures the headless-chat tests share: a scratch home for the CLI and a vLLM simulator.
A test module that needs another ``home`` or ``sim`` defines its own, which wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import vllm
from tests.servers.base import SimServer
from tests.services.chat_cli_support import Home


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


@pytest.fixture
def sim() -> Iterator[SimServer]:
    server = vllm.make_server().start()
    yield server
    server.stop()
