"""The installer, run for real under Wine in a throwaway prefix: silent per-user install with
shortcuts and the HKCU uninstall entry, /D= for another folder, the uninstaller that keeps user
data unless /REMOVEDATA, and an upgrade in place that ends a running copy first.

Each test starts from "not installed" and uninstalls at the end, so they share one booted prefix
(booting one costs 5-15 s). The payload is a dummy: Wine cannot run the Qt 6 app itself.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from types import ModuleType

import psutil
import pytest

from tests.packaging.support import signing_env
from tests.packaging.wine import WinePrefix

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(300)]

UNINSTALL_KEY = r"Software\Microsoft\Windows\CurrentVersion\Uninstall\VictorGUI"
APP_KEY = r"Software\Victor GUI"
APP_PATHS_KEY = r"Software\Microsoft\Windows\CurrentVersion\App Paths\victor-gui.exe"


def _data_dirs(wine: WinePrefix) -> list[Path]:
    """Plant user data where platformdirs puts it on Windows (%LOCALAPPDATA% and %APPDATA%)."""
    local = wine.user_dir / "AppData" / "Local" / "victor_gui" / "victor_gui"
    roaming = wine.user_dir / "AppData" / "Roaming" / "victor_gui" / "victor_gui"
    for folder, name in ((local, "chats.sqlite3"), (roaming, "settings.yaml")):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("the user's own data", encoding="utf-8")
    return [local.parent, roaming.parent]


def _shortcuts(wine: WinePrefix) -> tuple[Path, Path]:
    start_menu = wine.user_dir / "AppData" / "Roaming" / "Microsoft" / "Windows" / "Start Menu" / "Programs"
    return start_menu / "Victor GUI.lnk", wine.user_dir / "Desktop" / "Victor GUI.lnk"


def _uninstall_command(wine: WinePrefix) -> list[str]:
    """QuietUninstallString from the uninstall key, split as Windows would: what winget runs."""
    entry = wine.hkcu(UNINSTALL_KEY)
    assert entry is not None
    return shlex.split(str(entry["QuietUninstallString"]).replace("\\", "/"))


def test_silent_install_then_silent_uninstall_keeps_user_data(build: ModuleType, wine: WinePrefix,
                                                               installer_exe: Path) -> None:
    t0 = time.monotonic()
    proc = wine.run(str(installer_exe), "/S", "/DESKTOP")
    assert proc.returncode == 0, proc.stderr
    install_seconds = time.monotonic() - t0
    folder = wine.user_dir / "AppData" / "Local" / "Programs" / "Victor GUI"
    for name in ("victor-gui.exe", "victor-gui-cli.exe", "uninstall.exe", "_internal/python312.dll",
                 "_internal/PySide6/Qt6Core.dll"):
        assert (folder / name).is_file(), name
    start_menu, desktop = _shortcuts(wine)
    assert start_menu.is_file() and desktop.is_file()
    assert b"victor-gui.exe" in start_menu.read_bytes().replace(b"\0", b"")

    entry = wine.hkcu(UNINSTALL_KEY)
    assert entry is not None
    location = str(entry["InstallLocation"])
    assert location.endswith(r"\AppData\Local\Programs\Victor GUI")
    assert wine.unix_path(location) == folder
    assert entry["DisplayName"] == "Victor GUI"
    assert entry["DisplayVersion"] == build.app_version()
    assert entry["Publisher"] == "Victor GUI contributors"
    assert entry["UninstallString"] == f'"{location}\\uninstall.exe"'
    assert entry["QuietUninstallString"] == f'"{location}\\uninstall.exe" /S'
    assert entry["DisplayIcon"] == f"{location}\\victor-gui.exe"
    payload_kb = (300_000 + 50_000) // 1024
    assert payload_kb <= int(entry["EstimatedSize"]) < payload_kb + 1024
    assert wine.hkcu(APP_KEY) == {"InstallDir": location}
    assert wine.hkcu(APP_PATHS_KEY) == {"": f"{location}\\victor-gui.exe"}

    data = _data_dirs(wine)
    t0 = time.monotonic()
    proc = wine.run(*_uninstall_command(wine))
    assert proc.returncode == 0, proc.stderr
    uninstall_seconds = time.monotonic() - t0
    assert not folder.exists()
    assert not start_menu.exists() and not desktop.exists()
    assert wine.hkcu(UNINSTALL_KEY) is None and wine.hkcu(APP_KEY) is None
    assert wine.hkcu(APP_PATHS_KEY) is None
    for folder_ in data:
        assert [p.read_text(encoding="utf-8") for p in folder_.rglob("*.*")] == ["the user's own data"]
    print(f"wine: silent install {install_seconds:.1f} s, silent uninstall {uninstall_seconds:.1f} s")


def test_custom_folder_and_remove_data_leave_the_users_own_files(wine: WinePrefix,
                                                                installer_exe: Path) -> None:
    # /D= must come last and unquoted, even with a space in the path (the NSIS rule). Wine
    # quotes an argument that holds a space, so the path goes in two pieces to give the raw
    # command line `... /S /D=C:\Apps\Victor GUI`.
    proc = wine.run(str(installer_exe), "/S", *r"/D=C:\Apps\Victor GUI".split(" "))
    assert proc.returncode == 0, proc.stderr
    folder = wine.prefix / "drive_c" / "Apps" / "Victor GUI"
    assert (folder / "victor-gui.exe").is_file()
    entry = wine.hkcu(UNINSTALL_KEY)
    assert entry is not None and entry["InstallLocation"] == r"C:\Apps\Victor GUI"
    start_menu, desktop = _shortcuts(wine)
    assert start_menu.is_file() and not desktop.exists()  # the desktop shortcut is opt-in

    (folder / "my notes.txt").write_text("not the installer's", encoding="utf-8")
    data = _data_dirs(wine)
    proc = wine.run(*_uninstall_command(wine), "/REMOVEDATA")
    assert proc.returncode == 0, proc.stderr
    assert not any(d.exists() for d in data)
    # The uninstaller deletes what it installed, never the folder recursively.
    assert sorted(p.name for p in folder.iterdir()) == ["my notes.txt"]
    assert wine.hkcu(UNINSTALL_KEY) is None and not start_menu.exists()
    shutil.rmtree(folder.parent)


def _sleeper_exe(makensis: str, folder: Path) -> Path:
    """A Windows program named victor-gui.exe that runs for a minute with no window (a silent
    NSIS exe): a stand-in for a running app that ignores the polite close."""
    script = folder / "sleeper.nsi"
    script.write_text('Unicode true\nTarget amd64-unicode\nRequestExecutionLevel user\nSilentInstall silent\n'
                      'OutFile "victor-gui.exe"\nSection\n  Sleep 60000\nSectionEnd\n', encoding="utf-8")
    subprocess.run([makensis, "-V1", str(script)], cwd=folder, capture_output=True, timeout=60, check=True)
    return folder / "victor-gui.exe"


def _running_copies(wine: WinePrefix, name: str) -> list[psutil.Process]:
    """Processes of this prefix (not another test run's) whose command line names ``name``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if name not in cmdline or "wineserver" in cmdline:
            continue
        try:
            if proc.environ().get("WINEPREFIX") == str(wine.prefix):
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def test_upgrade_in_place_ends_the_running_app_and_drops_stale_files(
        build: ModuleType, makensis: str, wine: WinePrefix, dummy_payload: Path, tmp_path: Path) -> None:
    old, new = tmp_path / "old" / "victor-gui", tmp_path / "new" / "victor-gui"
    for payload, marker in ((old, "old"), (new, "new")):
        shutil.copytree(dummy_payload, payload)
        shutil.copy(_sleeper_exe(makensis, payload.parent), payload / "victor-gui.exe")
        (payload / "_internal" / "marker.txt").write_text(marker, encoding="utf-8")
    (old / "_internal" / "only-in-old.dll").write_bytes(b"stale")
    old_installer = build.installer(old, tmp_path / "old.exe", version="0.0.9")
    new_installer = build.installer(new, tmp_path / "new.exe", version="0.1.1")
    assert wine.run(str(old_installer), "/S").returncode == 0
    folder = wine.user_dir / "AppData" / "Local" / "Programs" / "Victor GUI"
    assert (folder / "_internal" / "only-in-old.dll").is_file()

    running = wine.popen(str(folder / "victor-gui.exe"))
    try:
        deadline = time.monotonic() + 30
        while not _running_copies(wine, "victor-gui.exe") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _running_copies(wine, "victor-gui.exe"), "the installed app did not start under Wine"
        t0 = time.monotonic()
        proc = wine.run(str(new_installer), "/S")  # returns once every Wine process has ended
        elapsed = time.monotonic() - t0
        assert proc.returncode == 0, proc.stderr
        assert not _running_copies(wine, "victor-gui.exe")
        assert running.wait(timeout=30) is not None
        # It ignored the polite close (no window), so the installer waited ~10 s, then forced it.
        assert 9 <= elapsed < 60, elapsed
    finally:
        if running.poll() is None:
            running.kill()
    assert (folder / "_internal" / "marker.txt").read_text(encoding="utf-8") == "new"
    assert not (folder / "_internal" / "only-in-old.dll").exists()
    entry = wine.hkcu(UNINSTALL_KEY)
    assert entry is not None and entry["DisplayVersion"] == "0.1.1"
    assert wine.run(*_uninstall_command(wine)).returncode == 0
    assert not folder.exists()
    assert os.environ.get("WINEPREFIX") != str(wine.prefix)  # the real environment is untouched


def test_a_signed_installer_still_passes_its_integrity_check(build: ModuleType, wine: WinePrefix,
                                                            installer_exe: Path, tmp_path: Path) -> None:
    # NSIS checks a CRC over its own data at start; the Authenticode signature appended after it
    # must not break that, or a signed release would refuse to run.
    signed = tmp_path / installer_exe.name
    shutil.copy(installer_exe, signed)
    assert build.sign([signed], env=signing_env(tmp_path)) == [signed]
    assert signed.read_bytes() != installer_exe.read_bytes()
    assert wine.run(str(signed), "/S").returncode == 0
    folder = wine.user_dir / "AppData" / "Local" / "Programs" / "Victor GUI"
    assert (folder / "victor-gui.exe").is_file()
    assert wine.run(*_uninstall_command(wine)).returncode == 0
    assert not folder.exists()
