"""Architecture rules that a test can enforce."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import victor_gui

ROOT = Path(__file__).resolve().parents[1]


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(victor_gui.__path__, "victor_gui."):
        if info.name.startswith("victor_gui.ui") or info.name == "victor_gui.__main__":
            continue
        names.append(info.name)
    return names


def test_core_imports_no_qt() -> None:
    modules = core_modules()
    assert "victor_gui.providers.base" in modules
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in sys.modules\n"
        "                        if k.split('.')[0] in ('PySide6','shiboken6','qasync'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []


def test_cli_version_imports_no_qt() -> None:
    code = (
        "import sys\nfrom victor_gui.__main__ import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "assert not any(k.startswith(('PySide6','qasync')) for k in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "victor-gui" in out.stdout


def test_pyproject_lists_every_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "victor_gui").rglob("__init__.py")
    } | {"victor_gui.resources"}
    assert on_disk == listed


def test_resources_found_through_importlib() -> None:
    from importlib.resources import files

    assert files("victor_gui.resources").is_dir()


def test_layering_contract_and_no_cycles() -> None:
    """import-linter checks [tool.importlinter] in pyproject.toml: the layers (ui/cli → services →
    config → {servers, sizing, storage} → providers → errors → core), Qt only in the views, and no
    import cycle between sibling modules or packages at any depth."""
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "broken" in out.stdout and "0 broken" in out.stdout
