"""Environment variables that send a child app's folders into a test's own folders, on every OS.

Linux reads ``HOME`` and ``XDG_CONFIG_HOME``/``XDG_DATA_HOME``; Windows reads none of them:
``Path.home()`` is ``USERPROFILE``, and platformdirs asks the shell for ``%LOCALAPPDATA%`` (where
the app keeps config and data alike) unless ``WIN_PD_OVERRIDE_LOCAL_APPDATA`` names a folder. A
CLI test that set only the Linux variables had its Windows child write to the real profile, and
read back from a folder the child never used.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: Windows keeps config and data in one folder (``%LOCALAPPDATA%\victor_gui``).
SHARED_CONFIG_AND_DATA = sys.platform == "win32"


def isolated_dirs_env(home: Path, config: Path, data: Path) -> dict[str, str]:
    """``HOME``, the XDG folders and their Windows counterparts; on Windows both config and data
    land in ``config`` (see :data:`SHARED_CONFIG_AND_DATA`)."""
    return {"HOME": str(home), "USERPROFILE": str(home), "XDG_CONFIG_HOME": str(config),
            "XDG_DATA_HOME": str(data), "WIN_PD_OVERRIDE_LOCAL_APPDATA": str(config),
            "WIN_PD_OVERRIDE_APPDATA": str(config)}
