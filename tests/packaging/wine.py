"""A throwaway Wine prefix for installer tests: run Windows programs, read the HKCU hive.

Wine runs the NSIS installer and uninstaller faithfully (files, shortcuts, registry); it cannot
run the Qt app itself (Qt 6 needs the ICU that Windows ships), so the tests install a dummy
payload. ``HOME`` points into the prefix's folder because Wine links the Windows Desktop and
Documents folders to ``$HOME``; nothing leaks into the real home.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def wine_binary() -> str | None:
    """``wine`` (Debian's launcher picks wine64 when there is no 32-bit Wine) or ``wine64``."""
    return shutil.which("wine") or shutil.which("wine64")


class WinePrefix:
    """A Wine prefix under ``root``; :meth:`boot` creates it (about 5-15 s the first time)."""

    def __init__(self, root: Path, wine: str) -> None:
        self.root = root
        self.wine = wine
        self.home = root / "home"
        self.prefix = root / "prefix"
        self.env = dict(os.environ, HOME=str(self.home), WINEPREFIX=str(self.prefix), WINEDEBUG="-all",
                        # No Mono or Gecko download prompts: installers need neither.
                        WINEDLLOVERRIDES="mscoree,mshtml=", LC_ALL="C.UTF-8")
        self.env.pop("DISPLAY", None)  # silent installs open no window; stay off any X server
        self.env.pop("WAYLAND_DISPLAY", None)

    def boot(self) -> None:
        (self.home / "Desktop").mkdir(parents=True, exist_ok=True)
        self.run("wineboot", "-i", timeout=180)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a Windows command line and wait until every process in the prefix has ended
        (an NSIS uninstaller re-launches itself from %TEMP% and its first process returns at once)."""
        proc = subprocess.run([self.wine, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, errors="replace", check=False)
        self.wait(timeout)
        return proc

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        """Start a Windows program without waiting for it."""
        return subprocess.Popen([self.wine, *args], env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def wait(self, timeout: float = 120) -> None:
        """Block until the prefix's wineserver is idle; this also flushes the registry files."""
        server = shutil.which("wineserver") or str(Path(self.wine).with_name("wineserver"))
        subprocess.run([server, "-w"], env=self.env, timeout=timeout, check=False)

    def shutdown(self) -> None:
        server = shutil.which("wineserver") or str(Path(self.wine).with_name("wineserver"))
        subprocess.run([server, "-k"], env=self.env, timeout=60, check=False)

    @property
    def user_dir(self) -> Path:
        """``C:\\users\\<name>`` on the Unix side."""
        users = [p for p in (self.prefix / "drive_c" / "users").iterdir() if p.name != "Public"]
        assert len(users) == 1, users
        return users[0]

    def unix_path(self, windows_path: str) -> Path:
        """``C:\\a\\b`` -> the file in the prefix."""
        drive, _, rest = windows_path.partition(":")
        assert drive.upper() == "C", windows_path
        return self.prefix.joinpath("drive_c", *[p for p in rest.split("\\") if p])

    def hkcu(self, key: str) -> dict[str, str | int] | None:
        """The values of ``HKEY_CURRENT_USER\\<key>`` read from ``user.reg``, or ``None``
        when the key is absent. REG_SZ values come back as str, REG_DWORD as int."""
        text = (self.prefix / "user.reg").read_text(encoding="utf-8", errors="replace")
        header = "[" + key.replace("\\", "\\\\") + "]"
        lines = text.splitlines()
        starts = [i for i, line in enumerate(lines) if line.lower().startswith(header.lower() + " ")
                  or line.lower() == header.lower()]
        if not starts:
            return None
        values: dict[str, str | int] = {}
        for line in lines[starts[0] + 1:]:
            if not line.strip():
                break
            if line.startswith("@="):
                name, raw = "", line[2:]  # the key's default value
            elif line.startswith('"'):
                name, _, raw = line[1:].partition('"=')
            else:
                continue  # #time= and similar metadata
            if raw.startswith("dword:"):
                values[name] = int(raw[6:], 16)
            elif raw.startswith('"') and raw.endswith('"'):
                values[name] = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        return values
