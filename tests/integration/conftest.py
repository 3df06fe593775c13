"""Fixtures of the llama.cpp tier: the real ``llama-server`` binary, tiny models, servers.

The tier needs the binary built by ``python -m tests.support.llama_build --ensure`` (which
``.ci/setup.sh test`` runs). Without it the tier skips locally with a reason saying how to build
it, and *fails* under ``CI=true``, where it is mandatory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.llama_build import binary_for_tests
from tests.support.llama_server import LlamaServer, start_llama_server
from tests.support.tiny_gguf import make_tiny_gguf

ModelFactory = Callable[..., Path]
ServerFactory = Callable[..., LlamaServer]


@pytest.fixture(scope="session")
def llama_binary() -> Path:
    """The ``llama-server`` executable (skip locally / fail in CI when it is missing)."""
    return binary_for_tests()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> ModelFactory:
    """``tiny_model(arch=..., ftype=..., n_ctx_train=..., seed=..., steer=..., **dims)`` -> path;
    each distinct model is generated once per session."""
    root = tmp_path_factory.mktemp("tiny-models")
    made: dict[tuple[tuple[str, object], ...], Path] = {}

    def make(**kwargs: object) -> Path:
        key = tuple(sorted(kwargs.items()))
        if key not in made:
            name = "-".join(f"{k}={v}" for k, v in key) or "default"
            made[key] = make_tiny_gguf(root / f"{name}.gguf", **kwargs)  # type: ignore[arg-type]
        return made[key]

    return make


@pytest.fixture(scope="session")
def llama_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llama-logs")


@pytest.fixture(scope="session")
def llama_server(llama_binary: Path, tiny_model: ModelFactory, llama_logs: Path) -> Iterator[LlamaServer]:
    """One shared server: default tiny llama model (f16, trained context 4096), ``-c 4096``,
    one slot. Tests that kill or reconfigure a server use :func:`start_llama` instead."""
    server = start_llama_server(tiny_model(), binary=llama_binary, log_dir=llama_logs)
    yield server
    server.stop()


@pytest.fixture
def start_llama(llama_binary: Path, llama_logs: Path) -> Iterator[ServerFactory]:
    """``start_llama(model, ctx=..., cache_type_k=..., verbose=..., extra_args=...)`` starts a
    server private to the test; all are stopped at teardown."""
    servers: list[LlamaServer] = []

    def start(model: Path, **kwargs: object) -> LlamaServer:
        kwargs.setdefault("binary", llama_binary)
        kwargs.setdefault("log_dir", llama_logs)
        server = start_llama_server(model, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
