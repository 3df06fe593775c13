"""Suite-wide fixtures: offscreen Qt, a clean breaker registry and redactor per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _fresh_provider_state() -> Iterator[None]:
    from victor_gui.core.redact import forget_secrets
    from victor_gui.providers.resilience import BREAKERS

    BREAKERS.clear()
    forget_secrets()
    yield
    BREAKERS.clear()


@pytest.fixture(scope="session")
def hub_repos(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The Hub's repositories of sparse GGUFs (tests/support/hub_repos.py), written once."""
    from tests.support.hub_repos import make_repos

    return make_repos(tmp_path_factory.mktemp("hub"))


@pytest.fixture
def hub(hub_repos: Any) -> Iterator[Any]:
    """A fresh Hub simulator over :func:`hub_repos` (byte counts at zero), with no key store."""
    from tests.support.hub_repos import serve
    from victor_gui.providers.keys import set_secret_store

    set_secret_store(None)
    with serve(hub_repos) as server:
        yield server
    set_secret_store(None)
