"""Every sizing test gets its own cache folder: `fit` keeps parsed headers there
(victor_gui.sizing.header_cache), and a test must never read or fill the user's."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    # Windows keeps the cache under %LOCALAPPDATA%, which XDG_CACHE_HOME does not move.
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", str(folder))
    return folder
