"""The app's version in the forms the Windows build needs, read from ``victor_gui.__version__``.

Windows version resources and NSIS's ``VIProductVersion`` want four integers; the package
version may carry a suffix (``0.2.0rc1``, ``0.2.0.dev3``), which they cannot hold, so the quad
keeps the leading release numbers and the full string goes into the text fields.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP_NAME = "Victor GUI"
PUBLISHER = "Victor GUI contributors"
EXE_NAME = "victor-gui"
CLI_EXE_NAME = "victor-gui-cli"


def app_version() -> str:
    """``victor_gui.__version__``, read from the source file (no import: works in any venv)."""
    text = (ROOT / "victor_gui" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.MULTILINE)
    if match is None:
        raise RuntimeError("victor_gui/__init__.py has no __version__")
    return match.group(1)


def version_quad(version: str) -> tuple[int, int, int, int]:
    """``"1.2.3rc1"`` -> ``(1, 2, 3, 0)``: the leading dotted integers, padded to four."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    if match is None:
        raise ValueError(f"version {version!r} does not start with a number")
    parts = [int(p) for p in match.group(0).split(".")][:4]
    return (*parts, *([0] * (4 - len(parts))))  # type: ignore[return-value]


def windows_version_info(version: str | None = None, *, original_filename: str = f"{EXE_NAME}.exe"):
    """A PyInstaller ``VSVersionInfo`` for the exe (what Explorer's Details tab shows)."""
    from PyInstaller.utils.win32 import versioninfo as vi

    version = version or app_version()
    quad = version_quad(version)
    strings = [
        vi.StringStruct("CompanyName", PUBLISHER),
        vi.StringStruct("FileDescription", APP_NAME),
        vi.StringStruct("FileVersion", version),
        vi.StringStruct("InternalName", EXE_NAME),
        vi.StringStruct("LegalCopyright", f"{PUBLISHER}, Apache-2.0"),
        vi.StringStruct("OriginalFilename", original_filename),
        vi.StringStruct("ProductName", APP_NAME),
        vi.StringStruct("ProductVersion", version),
    ]
    return vi.VSVersionInfo(
        ffi=vi.FixedFileInfo(
            filevers=quad,
            prodvers=quad,
            mask=0x3F,
            flags=0x0,
            OS=0x40004,
            fileType=0x1,
            subtype=0x0,
            date=(0, 0),
        ),
        kids=[
            vi.StringFileInfo([vi.StringTable("040904B0", strings)]),  # US English, Unicode
            vi.VarFileInfo([vi.VarStruct("Translation", [0x0409, 1200])]),
        ],
    )
