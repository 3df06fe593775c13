"""One folder name for config, data and logs (issue 14: logs went to ``victor-gui`` while data
and config were ``victor_gui``, so removing "the app's data" left logs behind)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from victor_gui.config.profiles import app_profiles_path
from victor_gui.config.settings import settings_path
from victor_gui.core import app_dirs
from victor_gui.providers.capabilities import default_user_path
from victor_gui.services.mcp_config import default_mcp_path
from victor_gui.storage.location import default_data_dir


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG variables are how Linux finds them")
def test_config_data_and_logs_share_one_folder_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    folders = {app_dirs.config_dir(), app_dirs.data_dir(), app_dirs.log_dir().parent}
    assert {p.name for p in folders} == {"victor_gui"}
    assert app_dirs.log_dir() == tmp_path / "state" / "victor_gui" / "log"
    assert default_data_dir() == tmp_path / "data" / "victor_gui"
    for path in (settings_path(), app_profiles_path(), default_mcp_path(), default_user_path()):
        assert path.parent == tmp_path / "config" / "victor_gui", path


def test_windows_paths_have_no_author_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    # platformdirs adds an author folder on Windows unless appauthor=False (victor_gui\victor_gui).
    import platformdirs.windows as win

    monkeypatch.setattr(win, "get_win_folder", lambda csidl: rf"C:\Users\u\{csidl}")
    monkeypatch.setattr(platformdirs_module(), "PlatformDirs", win.Windows)
    for path in (app_dirs.config_dir(), app_dirs.data_dir()):
        parts = Path(str(path).replace("\\", "/")).parts
        assert parts.count("victor_gui") == 1, path
    assert str(app_dirs.log_dir()).replace("\\", "/").endswith("victor_gui/Logs")


def platformdirs_module():  # type: ignore[no-untyped-def]
    import platformdirs

    return platformdirs
