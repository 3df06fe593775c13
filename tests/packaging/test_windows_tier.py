"""The Windows tier (issue 15): the real Windows app built, installed, run, upgraded and
uninstalled under Wine, then the Qt-free suite's folders (``wine_tier.CORE_TEST_FOLDERS``) and
the widget tests (``wine_tier.WINE_UI_FOLDER``, offscreen) run with Windows Python
(tests/packaging/wine_tier.py does the work; these tests read its report).

Mandatory under ``CI=true``; skipped locally unless ``VICTOR_WINE_TIER=1`` (about 10 minutes
warm on two cores), with the command in the skip reason. The first half of this module checks
the tier's own pieces without Wine and always runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.packaging import wine_tier
from tests.packaging.support import need
from tests.support.llama_build import in_ci

ROOT = Path(__file__).resolve().parents[2]
#: The Windows core-test run's floor: CORE_TEST_FOLDERS held about 1,200 tests when it was made
#: mandatory, about 1,500 with services and sizing (a run that collects far fewer has lost a
#: folder or its modules).
MIN_CORE_PASSED = 1200
#: tests/ui held about 180 widget tests (that need no llama-server) when they joined the run.
MIN_UI_PASSED = 150
COMMAND = ("VICTOR_WINE_TIER=1 python -m pytest tests/packaging/test_windows_tier.py"
           " (or: python -m tests.packaging.wine_tier --core-tests; the core tests alone:"
           " --core-tests-only [--folders storage,mcp])")


# --- the tier's pieces, no Wine needed ---------------------------------------------------------

def test_build_requirements_are_the_runtime_and_packaging_set_without_dev() -> None:
    reqs = wine_tier.requirements()
    names = {wine_tier._name(r) for r in reqs}
    assert {"pyside6-essentials", "httpx", "pydantic", "keyring", "pyinstaller", "nvidia-ml-py", "pypdf",
            "pywin32-ctypes", "huggingface_hub"} <= names
    # dev's botocore and test tools would be frozen into the bundle; numpy aborts under Wine.
    assert not names & {"botocore", "pytest", "hypothesis", "numpy", "mypy", "gguf"}
    assert all(";" not in r for r in reqs)  # pip inside Wine gets plain requirements
    # The wheelhouse key follows the list: a changed pin downloads a new wheelhouse.
    assert wine_tier.wheel_key(reqs) == wine_tier.wheel_key(list(reqs))
    assert wine_tier.wheel_key(reqs) != wine_tier.wheel_key([*reqs, "extra-package"])


def test_core_test_requirements_come_from_the_dev_extra_without_linters() -> None:
    names = {wine_tier._name(r) for r in wine_tier.core_test_requirements()}
    assert {"pytest", "pytest-asyncio", "pytest-timeout", "hypothesis", "colorama"} <= names
    assert not names & {"ruff", "mypy", "import-linter", "numpy", "gguf"}


def test_blank_and_drawn_screens_are_told_apart(tmp_path: Path) -> None:
    black = tmp_path / "black.png"
    Image.new("RGB", (320, 200)).save(black)
    flat = tmp_path / "flat.png"
    Image.new("RGB", (320, 200), (40, 44, 52)).save(flat)
    assert not wine_tier.is_drawn(wine_tier.screenshot_stats(black))
    assert not wine_tier.is_drawn(wine_tier.screenshot_stats(flat))
    # A real window: the README's screenshot of the main window.
    shot = next(iter(sorted((ROOT / "resources" / "screenshots").glob("*.png"))))
    assert wine_tier.is_drawn(wine_tier.screenshot_stats(shot))


def test_a_wine_bridge_in_the_bundle_fails_the_tier(tmp_path: Path) -> None:
    bundle = tmp_path / "victor-gui"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "victor-gui.exe").write_bytes(b"MZ")
    assert wine_tier.check_bundle_clean(bundle) == {"bytes": 2, "files": 1}
    (bundle / "_internal" / "icuuc.dll").write_bytes(b"MZ stub")
    with pytest.raises(wine_tier.TierError, match=r"icuuc\.dll"):
        wine_tier.check_bundle_clean(bundle)


def test_an_unused_binary_package_in_the_bundle_fails_the_tier(tmp_path: Path) -> None:
    # huggingface_hub's Xet client: the app only searches the Hub (its downloads are its own).
    bundle = tmp_path / "victor-gui"
    (bundle / "_internal" / "hf_xet").mkdir(parents=True)
    (bundle / "_internal" / "hf_xet" / "hf_xet.pyd").write_bytes(b"MZ")
    with pytest.raises(wine_tier.TierError, match="hf_xet"):
        wine_tier.check_bundle_clean(bundle)


def test_a_new_engine_exe_rebuilds_the_bundle(tmp_path: Path) -> None:
    # The bundle's cache key takes the shipped llama-server.exe's hash: a new exe is a new bundle.
    (tmp_path / "victor_gui").mkdir()
    (tmp_path / "victor_gui" / "app.py").write_text("pass\n")
    assert wine_tier.bundle_key(tmp_path, "wheels", "3.13.0", "a" * 64) == \
        wine_tier.bundle_key(tmp_path, "wheels", "3.13.0", "a" * 64)
    assert wine_tier.bundle_key(tmp_path, "wheels", "3.13.0", "a" * 64) != \
        wine_tier.bundle_key(tmp_path, "wheels", "3.13.0", "b" * 64)


def test_modules_importing_numpy_are_the_ones_left_out_under_wine() -> None:
    ignored = wine_tier.wine_ignored_tests(ROOT)
    assert "tests/services/test_vector_search.py" in ignored  # import numpy
    assert "tests/sizing/test_gguf_reader.py" in ignored  # the gguf writer's helper needs numpy
    assert "tests/services/test_image_prep.py" in ignored  # through tests/services/image_samples.py
    assert "tests/storage/test_open_connect.py" not in ignored
    assert "tests/config/test_secrets.py" not in ignored


def test_slow_modules_are_declared_with_a_reason_and_left_out_of_every_run() -> None:
    slow = wine_tier.WINE_SLOW_TESTS
    assert "tests/services/test_chat_cli.py" in slow and "tests/services/test_tool_loop.py" not in slow
    for path, reason in slow.items():
        assert (ROOT / path).is_file() and reason, path
        assert path.split("/")[1] in wine_tier.CORE_TEST_FOLDERS, path  # else it needs no entry
    ignored = ["tests/services/test_vector_search.py", "tests/services/test_chat_cli.py"]
    # A folder: pytest's --ignore leaves the files out.
    assert wine_tier.pytest_targets(("services",), ignored) == [
        "tests/services", *[f"--ignore={f}" for f in ignored]]
    # Files named on their own would be collected despite --ignore: they are dropped.
    assert wine_tier.pytest_targets(("services/test_chat_cli.py", "services/test_costs.py"), ignored)[0] \
        == "tests/services/test_costs.py"
    assert "tests/services/test_chat_cli.py" not in wine_tier.pytest_targets(("services/test_chat_cli.py",
                                                                           "config"), ignored)
    with pytest.raises(wine_tier.TierError, match="left out"):
        wine_tier.pytest_targets(("services/test_vector_search.py",), ignored)
    whole = wine_tier.pytest_targets((), ignored)
    assert whole[0] == "tests" and "--ignore=tests/ui" in whole and f"--ignore={ignored[1]}" in whole


def test_the_tiers_widget_modules_are_there_and_only_they_are_widgets() -> None:
    assert (ROOT / "tests" / wine_tier.WINE_UI_FOLDER / "conftest.py").is_file()
    # TIER_TEST_MARKERS lets gui tests through: only tests/ui has them (its conftest marks every
    # test there), so the core folders run exactly windows.yml's "not gui" selection.
    for path in (ROOT / "tests").rglob("*.py"):
        if "ui" not in path.relative_to(ROOT / "tests").parts[:1] and path != Path(__file__).resolve():
            assert "mark.gui" not in path.read_text(encoding="utf-8"), path
    assert "gui" not in wine_tier.TIER_TEST_MARKERS
    assert wine_tier.CORE_TEST_MARKERS == f"not gui and {wine_tier.TIER_TEST_MARKERS}"


def test_a_wine_crash_dump_is_told_from_a_python_error() -> None:
    dump = ("wine: Unhandled page fault on read access to 0000000000000000 at address 00006FFFFF4A1B2C\n"
            "Threads:\nprocess  tid      prio\n\t00000160    0 <== wine_threadpool_worker\n"
            "System information:\n    Wine build: wine-8.0 (Debian 8.0~repack-4)\n")
    assert wine_tier.wine_crashed(dump)
    assert wine_tier.wine_crashed("Unhandled exception: page fault on read access to 0x0 in 64-bit code")
    python_error = ("Traceback (most recent call last):\n  File \"entry.py\", line 12\n"
                    "ImportError: DLL load failed while importing QtCore\n")
    assert not wine_tier.wine_crashed(python_error)
    assert not wine_tier.wine_crashed(python_error + dump)  # the program failed first
    assert not wine_tier.wine_crashed("FIRST_PAINT 585 ms after import\nCLIENT_READY 1300\n")


def test_junit_counts_split_a_real_pytest_report_by_folder(tmp_path: Path) -> None:
    # A real pytest run (this interpreter) over two folders: a pass, a skip and a failure in one,
    # a pass and a collection error in the other; the counts the tier reports come from its XML.
    (tmp_path / "tests" / "alpha").mkdir(parents=True)
    (tmp_path / "tests" / "beta").mkdir()
    (tmp_path / "tests" / "alpha" / "test_a.py").write_text(
        "import pytest\n"
        "def test_pass(): assert True\n"
        "def test_skip(): pytest.skip('Wine gap: none')\n"
        "class TestGroup:\n"
        "    def test_fail(self): assert 1 == 2\n", encoding="utf-8")
    (tmp_path / "tests" / "beta" / "test_b.py").write_text("def test_pass(): assert True\n", encoding="utf-8")
    (tmp_path / "tests" / "beta" / "test_broken.py").write_text("import no_such_module\n", encoding="utf-8")
    junit = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
                    str(tmp_path), "-c", os.devnull, "--continue-on-collection-errors",
                    "--junitxml", str(junit), "tests"],
                   cwd=tmp_path, capture_output=True, timeout=120, check=False)
    counts = wine_tier.junit_counts(junit)
    pick = ("tests", "passed", "failures", "errors", "skipped")
    assert {k: counts["all"][k] for k in pick} == {"tests": 5, "passed": 2, "failures": 1, "errors": 1,
                                                   "skipped": 1}
    assert {k: counts["alpha"][k] for k in pick} == {"tests": 3, "passed": 1, "failures": 1, "errors": 0,
                                                     "skipped": 1}
    assert {k: counts["beta"][k] for k in pick} == {"tests": 2, "passed": 1, "failures": 0, "errors": 1,
                                                    "skipped": 0}
    assert set(counts) == {"all", "alpha", "beta"}


# --- the tier itself ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the whole tier once (build, install, window, upgrade, uninstall, core tests)."""
    if not in_ci() and os.environ.get("VICTOR_WINE_TIER") != "1":
        pytest.skip(f"the Windows tier runs under CI=true; locally: {COMMAND}")
    missing = wine_tier.missing_tools()
    need(f"the Windows tier's tools (apt: {' '.join(missing)})", not missing)
    work = tmp_path_factory.mktemp("wine-tier")
    proc = subprocess.run([sys.executable, "-m", "tests.packaging.wine_tier", "--core-tests",
                           "--work", str(work)],
                          cwd=ROOT, capture_output=True, text=True, timeout=4500, check=False)
    data: dict[str, Any] = json.loads((work / "report.json").read_text(encoding="utf-8"))
    assert proc.returncode == 0, f"{data.get('failed')}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    print(json.dumps({k: v for k, v in data.items() if k != "wine_ignored_tests"}, indent=1))
    return data


@pytest.mark.packaging
@pytest.mark.timeout(4800)
def test_the_real_windows_bundle_builds_and_both_exes_run(report: dict[str, Any]) -> None:
    assert report["version"].startswith("victor-gui ")
    # build.py smoke ran --version, providers and doctor against the source run, both self-tests.
    for check in ("version", "providers", "doctor", "self-test (cli)", "self-test (gui)"):
        assert check in report["smoke"]
    assert report["bundle"]["files"] > 50 and report["bundle"]["bytes"] > 30_000_000


@pytest.mark.packaging
@pytest.mark.timeout(4800)  # the first test to run pays for the tier
def test_the_installed_app_draws_its_window(report: dict[str, Any]) -> None:
    shot = report["screenshot"]
    assert Path(shot["path"]).is_file()
    assert wine_tier.is_drawn(shot)
    assert report["installed"]["estimated_size_kb"] > 20_000


@pytest.mark.packaging
@pytest.mark.timeout(4800)  # the first test to run pays for the tier
def test_an_upgrade_closes_the_running_copy_and_keeps_the_chats(report: dict[str, Any]) -> None:
    upgrade = report["upgrade"]
    assert upgrade["databases"], upgrade
    assert "upgrade over the running copy" in report["steps"]


@pytest.mark.packaging
@pytest.mark.timeout(4800)  # the first test to run pays for the tier
def test_an_upgrade_stops_a_kept_engine_and_installs_a_whole_engine(report: dict[str, Any]) -> None:
    # A llama-server.exe kept running from the install folder: Windows will not replace a running
    # exe, so the installer runs `engine stop` first; the new engine file is whole afterwards.
    kept = report["kept_engine_upgrade"]
    assert kept["engine_pids_before"] and kept["engine_gone"]
    assert kept["engine_bytes_after"] == report["engine"]["bytes"]
    assert kept["stop_after_upgrade"]["stopped"] == []  # nothing of ours left running
    assert "upgrade while a kept engine runs" in report["steps"]


@pytest.mark.packaging
@pytest.mark.timeout(4800)  # the first test to run pays for the tier
def test_uninstall_keeps_data_and_removedata_removes_data_config_and_logs(report: dict[str, Any]) -> None:
    # One folder name for data, config and logs: %LOCALAPPDATA%\victor_gui (logs in its Logs\).
    assert r"AppData/Local/victor_gui" in report["data_folders"]
    assert "AppData/Local/victor_gui/Logs" in report["data_folders"]
    assert "uninstall /REMOVEDATA" in report["steps"]


@pytest.mark.packaging
@pytest.mark.timeout(4800)  # the first test to run pays for the tier
def test_the_installed_app_chats_with_its_bundled_llama_server(report: dict[str, Any]) -> None:
    engine = report["installed_engine"]
    # `serve` was given no binary: it found the engine the installer put beside the app.
    assert "victor gui\\_internal\\engines\\llama-server\\llama-server.exe" in \
        engine["command"].replace('"', "").lower()
    assert engine["exe_bytes"] == report["engine"]["bytes"] > 1_000_000
    reply = engine["reply"]
    assert reply["text"] and reply["usage"]["completion_tokens"] > 0 and reply["conversation_id"]
    assert engine["stored_messages"] >= 2  # the question and the answer, read from the SQLite file
    # Ctrl+C stopped serve (exit 0) and with it llama-server.exe (waited for by pid).
    assert engine["stop"]["serve_exit_code"] == 0 and engine["stop"]["engine_pids_before"]
    assert engine["stop"]["said_stopped"]
    for timing in ("ready_s", "chat_s", "stop_s"):
        assert engine[timing] > 0


@pytest.mark.packaging
@pytest.mark.timeout(4800)  # the first test to run pays for the tier
def test_the_installed_app_follows_windows_conventions(report: dict[str, Any]) -> None:
    conv = report["conventions"]
    # Per user: the Start-menu entry in the user's own Programs folder, the uninstall entry in
    # HKCU with version and size (none in HKLM), and an installer that never asks for admin.
    assert conv["start_menu"].endswith("Start Menu/Programs/Victor GUI.lnk")
    assert conv["start_menu"].startswith("AppData/Roaming/")
    assert conv["uninstall_entry"]["DisplayVersion"] and conv["uninstall_entry"]["EstimatedSize"] > 20_000
    assert conv["hklm_entry"] is False and conv["execution_level"] == "asInvoker"
    # Data, config and logs in one Local folder; nothing roams (see the README's Windows section).
    assert conv["app_folders"] == ["AppData/Local/victor_gui"]


@pytest.mark.packaging
@pytest.mark.timeout(4800)  # the first test to run pays for the tier
def test_a_key_set_by_the_installed_cli_lives_in_credential_manager(report: dict[str, Any]) -> None:
    keyring = report["keyring"]
    assert keyring["said"] == "Saved the key for openai in the system keyring."
    assert keyring["read_back"] == "ready: key from the keyring"  # `providers --json` of the app
    assert keyring["leaks"] == []  # in no file of the app's folder: settings.yaml, logs, database


@pytest.mark.packaging
@pytest.mark.timeout(4800)  # the first test to run pays for the tier
def test_a_second_launch_brings_the_first_to_the_front_and_exits(report: dict[str, Any]) -> None:
    single = report["single_instance"]
    assert single["second_exit_code"] == 0 and "Victor GUI" in single["windows"]
    assert single["windows"] == single["windows_before"]  # no second main window appeared


@pytest.mark.packaging
@pytest.mark.timeout(4800)  # the first test to run pays for the tier
def test_a_second_user_sees_none_of_the_first_users_data(report: dict[str, Any]) -> None:
    other = report["second_profile"]
    assert other == {"keys": [], "conversation_id": 1, "stored_messages": 2}


# Folders whose tests are mostly skipped under Wine for a known reason: the fewest that must pass.
MOSTLY_SKIPPED_UNDER_WINE = {
    # test_ground_truth's 96 cases write tiny GGUFs with numpy, which cannot load under Wine 8.
    "sizing": (60, "numpy's cp313 wheels abort under Wine 8 (ucrtbase!crealf)"),
}


@pytest.mark.packaging
@pytest.mark.timeout(4800)  # the first test to run pays for the tier
def test_the_core_suite_passes_with_windows_python(report: dict[str, Any]) -> None:
    counts = report["core_tests"]
    folders = counts["folders"]
    print("Windows core tests:", {k: counts[k] for k in ("passed", "skipped", "failures", "errors",
                                                         "wall_s")})
    for name, row in folders.items():
        print(f"  {name:14} {row['passed']:5} passed {row['skipped']:4} skipped {row['failures']:3} failed"
              f" {row['errors']:3} errors {row['test_s']:7.1f} s")
    assert counts["failures"] == 0 and counts["errors"] == 0, counts
    # Every chosen folder ran, and most of each passed (a folder skipped whole would hide a break).
    assert set(wine_tier.CORE_TEST_FOLDERS) <= set(folders), folders
    for name in wine_tier.CORE_TEST_FOLDERS:
        row = folders[name]
        if name in MOSTLY_SKIPPED_UNDER_WINE:
            assert row["passed"] >= MOSTLY_SKIPPED_UNDER_WINE[name][0], (name, row)
        else:
            assert row["passed"] >= row["skipped"], (name, row)
    assert counts["passed"] > MIN_CORE_PASSED, counts
    # The widget tests ran too, offscreen with Windows' Qt (a Wine gap and two other-OS skips).
    ui = folders["ui"]
    assert ui["passed"] >= MIN_UI_PASSED and ui["passed"] > ui["skipped"], ui


@pytest.mark.packaging
@pytest.mark.timeout(4800)  # the first test to run pays for the tier
def test_the_installed_app_updates_itself_and_refuses_every_bad_update(report: dict[str, Any]) -> None:
    """tests/packaging/wine_updates.py: the installed app's ``update --install`` under Wine."""
    from tests.packaging.wine_updates import FAULTS, OLD_CHATS
    from victor_gui.storage.schema import SCHEMA_VERSION

    updates = report["updates"]
    installed_before = _upgraded_version(report)
    for name, code, reason, _words in FAULTS:  # each: non-zero, one sentence, nothing changed
        case = updates[name]
        assert (case["exit_code"], case["reason"]) == (code, reason), case
        assert case["version_after"] == installed_before and case["message"], case
    good = updates["good update"]
    assert good["exit_code"] == 0 and good["backup_schema"] == SCHEMA_VERSION - 1
    assert good["installer_requests"][0] is None and good["installer_requests"][1].startswith("bytes=")
    assert good["version_after"] != installed_before
    after = updates["after"]
    assert after["schema"] == SCHEMA_VERSION and set(OLD_CHATS) < set(after["titles"])
    assert after["migration_backups"]


def _upgraded_version(report: dict[str, Any]) -> str:
    """The version the tier's upgrade installed (its newer.exe), which the update starts from."""
    return wine_tier._next_version(report["version"].split()[-1])
