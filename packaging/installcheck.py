"""``build.py installcheck``: install the real installer silently on Windows, run the installed
app, uninstall it silently, and check what each step left behind. CI runs it on the Windows
runner; on Linux the same flows are checked under Wine by tests/packaging/test_wine_install.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

UNINSTALL_KEY = r"Software\Microsoft\Windows\CurrentVersion\Uninstall\VictorGUI"
APP_PATHS_KEY = r"Software\Microsoft\Windows\CurrentVersion\App Paths\victor-gui.exe"
APP_NAME = "Victor GUI"


class InstallCheckError(RuntimeError):
    """The installer or uninstaller did not do what it promises."""


def _hkcu_values(key: str) -> dict[str, object] | None:
    import winreg  # Windows only

    try:
        handle = winreg.OpenKey(winreg.HKEY_CURRENT_USER, key)
    except FileNotFoundError:
        return None
    values: dict[str, object] = {}
    with handle:
        index = 0
        while True:
            try:
                name, value, _kind = winreg.EnumValue(handle, index)
            except OSError:
                return values
            values[name] = value
            index += 1


def _shell(command_line: str, timeout: float) -> None:
    """Run a raw command line: NSIS wants /D= last and unquoted, which an argv list (quoted by
    list2cmdline when the path holds a space) cannot express."""
    proc = subprocess.run(command_line, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise InstallCheckError(f"{command_line!r} exited {proc.returncode}: {proc.stdout}{proc.stderr}")


def install_check(installer: Path, version: str, *, self_test: bool, timeout: float = 300) -> list[str]:
    """Install into a fresh folder with a space in its name, check files, shortcut and uninstall
    key, run the installed app, uninstall, and check that only user data remains."""
    if sys.platform != "win32":
        raise InstallCheckError("installcheck is for Windows; see tests/packaging/test_wine_install.py")
    done = []
    # resolve(): the long form of %TEMP% (runners hand out 8.3 names like RUNNER~1), which is
    # what InstallLocation must then equal.
    target = Path(tempfile.mkdtemp(prefix="victor-install-")).resolve() / APP_NAME
    _shell(f'"{installer}" /S /D={target}', timeout)
    for name in ("victor-gui.exe", "victor-gui-cli.exe", "uninstall.exe", "_internal"):
        if not (target / name).exists():
            raise InstallCheckError(f"{target / name} was not installed")
    entry = _hkcu_values(UNINSTALL_KEY)
    if entry is None:
        raise InstallCheckError(f"HKCU\\{UNINSTALL_KEY} was not written")
    expected = {
        "DisplayName": APP_NAME,
        "DisplayVersion": version,
        "InstallLocation": str(target),
        "QuietUninstallString": f'"{target}\\uninstall.exe" /S',
    }
    wrong = {k: entry.get(k) for k, v in expected.items() if entry.get(k) != v}
    if wrong or not isinstance(entry.get("EstimatedSize"), int) or int(entry["EstimatedSize"]) < 10_000:
        raise InstallCheckError(f"uninstall key differs: {wrong}, EstimatedSize={entry.get('EstimatedSize')}")
    if _hkcu_values(APP_PATHS_KEY) != {"": str(target / "victor-gui.exe")}:
        raise InstallCheckError(f"App Paths entry is {_hkcu_values(APP_PATHS_KEY)}")
    programs = Path(os.environ["APPDATA"]) / "Microsoft" / "Windows" / "Start Menu" / "Programs"
    shortcut = programs / f"{APP_NAME}.lnk"
    if not shortcut.is_file():
        raise InstallCheckError(f"no Start menu shortcut at {shortcut}")
    done.append("install")

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run(
        [str(target / "victor-gui-cli.exe"), "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    if out.returncode != 0 or out.stdout.strip() != f"victor-gui {version}":
        raise InstallCheckError(f"installed app --version: {out.returncode} {out.stdout!r} {out.stderr!r}")
    if self_test:
        gui = subprocess.run(
            [str(target / "victor-gui.exe"), "--self-test"],
            capture_output=True,
            timeout=120,
            env=env,
            check=False,
        )
        if gui.returncode != 0:
            raise InstallCheckError(f"installed app --self-test exited {gui.returncode}")
    done.append("run")

    data = Path(os.environ["LOCALAPPDATA"]) / "victor_gui" / "installcheck-marker.txt"
    planted = not data.exists()
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("user data must survive a plain uninstall", encoding="utf-8")
    try:
        # _?= runs the uninstaller in place and synchronously (otherwise it re-launches itself
        # from %TEMP% and returns at once); it then cannot delete itself or the folder.
        _shell(f'"{target}\\uninstall.exe" /S _?={target}', timeout)
        left = sorted(p.name for p in target.iterdir())
        keys_left = [k for k in (UNINSTALL_KEY, APP_PATHS_KEY) if _hkcu_values(k) is not None]
        if left != ["uninstall.exe"] or keys_left or shortcut.exists():
            raise InstallCheckError(
                f"uninstall left {left}, key={_hkcu_values(UNINSTALL_KEY)}, shortcut={shortcut.exists()}"
            )
        if not data.is_file():
            raise InstallCheckError("the uninstaller removed user data without /REMOVEDATA")
    finally:
        if planted:
            data.unlink(missing_ok=True)
    done.append("uninstall")
    return done
