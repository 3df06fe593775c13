"""File copying that works everywhere the app runs.

:func:`copy_file` is :func:`shutil.copy2` (content, then times and mode) without copy2's first
try on Windows, ``kernel32!CopyFile2``: Wine 8 lacks it and the process aborts there instead of
raising, and the project's Windows tier runs the real app under Wine. On real Windows the result
is the same file with the same times.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_file(source: str | Path, target: str | Path) -> Path:
    """Copy ``source``'s bytes to ``target`` (a file path or a folder), then its times and mode."""
    dest = Path(target)
    if dest.is_dir():
        dest = dest / Path(source).name
    shutil.copyfile(source, dest)
    shutil.copystat(source, dest)
    return dest
