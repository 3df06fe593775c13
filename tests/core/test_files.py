"""core.files.copy_file: copy2's result without kernel32!CopyFile2 (which aborts the app under Wine)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from victor_gui.core.files import copy_file

ROOT = Path(__file__).resolve().parents[2]


def test_copy_keeps_bytes_and_times_to_a_file_or_into_a_folder(tmp_path: Path) -> None:
    source = tmp_path / "settings.yaml"
    source.write_bytes(b"theme: dark\n")
    os.utime(source, (1_700_000_000, 1_700_000_000))
    as_file = copy_file(source, tmp_path / "copy.yaml")
    folder = tmp_path / "backup"
    folder.mkdir()
    into = copy_file(source, folder)
    for copy in (as_file, into):
        assert copy.read_bytes() == b"theme: dark\n"
        assert copy.stat().st_mtime == 1_700_000_000
    assert into == folder / "settings.yaml"


def test_no_module_copies_with_copy2() -> None:
    # shutil.copy2 and copytree's default (copy2) abort the Windows app under Wine 8: the tier
    # would die in a backup or a data-folder move instead of testing it.
    pattern = re.compile(r"\bcopy2\b|copytree\((?![^)]*copy_function)")
    found = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "victor_gui").rglob("*.py"))
             if p.name != "files.py"
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line) and "not copy2" not in line]
    assert found == []
