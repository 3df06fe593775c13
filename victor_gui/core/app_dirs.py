"""The app's folders: one name (``victor_gui``) for config, data and logs on every OS.

Earlier versions wrote logs under ``victor-gui`` while data and config used ``victor_gui``, and
some config paths let platformdirs add an author folder on Windows
(``%LOCALAPPDATA%\\victor_gui\\victor_gui``): an uninstall that removes "the app's data" then left
logs behind, and a user looking for one folder found two. Every path goes through here.
"""

from __future__ import annotations

from pathlib import Path

APP_NAME = "victor_gui"


def config_dir() -> Path:
    """Settings, profiles, mcp.json and the user's tables (``%LOCALAPPDATA%`` on Windows)."""
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """The conversation store and attachments (``%LOCALAPPDATA%`` on Windows)."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def log_dir() -> Path:
    """Rotating logs and faulthandler.log (``%LOCALAPPDATA%\\victor_gui\\Logs`` on Windows)."""
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Rebuildable caches such as parsed model headers (``XDG_CACHE_HOME``, ``~/Library/Caches``,
    ``%LOCALAPPDATA%\\victor_gui\\Cache``): deleting it loses nothing but time."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
