"""The Windows workflow stays in step with the build script: every ``build.py`` command it runs
exists, the runner and Python are the ones the packaging was written for, actions are pinned to
a major version, and the artifact globs match the names build.py writes. (actionlint is a Go
binary that cannot be installed from PyPI here; its schema part was checked with
check-jsonschema's vendored GitHub-workflow schema when this file was written.)"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "windows.yml"


def _build_module():
    path = ROOT / "packaging" / "build.py"
    spec = importlib.util.spec_from_file_location("victor_packaging_build_wf", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _steps() -> list[dict]:
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    job = doc["jobs"]["build"]
    assert job["runs-on"] == "windows-latest"
    return job["steps"]


def test_every_build_command_in_the_workflow_exists_with_its_options() -> None:
    build = _build_module()
    runs = [line.strip() for step in _steps() for line in str(step.get("run", "")).splitlines()]
    calls = [line for line in runs if line.startswith("python packaging/build.py ")]
    commands = {shlex.split(c)[2] for c in calls}
    assert commands >= {"bundle", "smoke", "installer", "zip", "sign", "installcheck"}
    for call in calls:
        argv = shlex.split(call)[2:]
        if argv[0] == "sign":
            argv = ["sign", "some.exe"]  # the PowerShell sub-expression is not a literal path
        args = build.make_parser().parse_args(argv)  # an unknown command or option exits 2
        assert args.cmd == argv[0]


def test_python_and_actions_are_pinned() -> None:
    steps = _steps()
    setup = next(s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python@"))
    # The Windows runner and the Wine tier run the same Python minor.
    from tests.packaging.wine_tier import EMBED_VERSION

    assert setup["with"]["python-version"] == EMBED_VERSION.rsplit(".", 1)[0]
    for step in steps:
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


def test_the_build_environment_gets_no_dev_extra_and_tests_run_after_the_bundle() -> None:
    steps = _steps()
    names = [s.get("name", "") for s in steps]
    install = steps[names.index("Install the project (build environment)")]["run"]
    assert "pip install -e" in install and "dev" not in install.split("pip install -e")[1]
    assert names.index("Core tests") > names.index("Silent install, run, silent uninstall")


def test_the_widgets_run_offscreen_with_windows_qt_after_the_bundle() -> None:
    steps = _steps()
    names = [s.get("name", "") for s in steps]
    widgets = steps[names.index("Widget tests offscreen")]
    assert widgets["env"]["QT_QPA_PLATFORM"] == "offscreen"
    assert "pytest tests/ui" in widgets["run"] and "not gui" not in widgets["run"]
    assert names.index("Widget tests offscreen") > names.index("Silent install, run, silent uninstall")


def test_artifact_globs_match_the_names_build_writes() -> None:
    build = _build_module()
    upload = next(s for s in _steps() if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    globs = [g.strip() for g in upload["with"]["path"].splitlines() if g.strip()]
    version = build.app_version()
    names = [f"dist/{build.installer_name(version)}", f"dist/victor-gui-{version}-win-x64-portable.zip"]
    for name in names:
        assert any(fnmatch.fnmatch(name, g) for g in globs), (name, globs)
