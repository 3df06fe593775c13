"""Version and icon inputs of the Windows build, checked without building anything."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))
from version_info import app_version, version_quad, windows_version_info  # noqa: E402

sys.path.remove(str(ROOT / "packaging"))


def test_app_version_is_the_package_version() -> None:
    import victor_gui

    assert app_version() == victor_gui.__version__


@pytest.mark.parametrize(("text", "quad"), [("0.1.0", (0, 1, 0, 0)), ("1.2.3rc1", (1, 2, 3, 0)),
                                            ("2.0.dev4", (2, 0, 0, 0)), ("1.2.3.4.5", (1, 2, 3, 4)),
                                            ("7", (7, 0, 0, 0))])
def test_version_quad(text: str, quad: tuple[int, int, int, int]) -> None:
    assert version_quad(text) == quad


def test_version_quad_rejects_a_non_numeric_version() -> None:
    with pytest.raises(ValueError, match="does not start with a number"):
        version_quad("dev")


@pytest.mark.skipif(sys.platform != "win32", reason="PyInstaller's version resource module imports win32api; "
                    "the Windows workflow runs this test")
def test_windows_version_resource_carries_the_full_version() -> None:
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.skip("PyInstaller is not installed (pip install -e '.[packaging]')")
    info = windows_version_info("1.2.3rc1")
    assert info.ffi.fileVersionMS == (1 << 16) | 2 and info.ffi.fileVersionLS == 3 << 16
    text = str(info)
    for field in ("StringStruct('ProductVersion', '1.2.3rc1')", "StringStruct('ProductName', 'Victor GUI')",
                  "StringStruct('OriginalFilename', 'victor-gui.exe')"):
        assert field in text


def test_icon_files_hold_the_sizes_windows_asks_for(qapp) -> None:
    from PySide6.QtGui import QImage, QImageReader

    reader = QImageReader(str(ROOT / "resources" / "icon.ico"))
    sizes = []
    for index in range(reader.imageCount()):
        reader.jumpToImage(index)
        image = reader.read()
        assert not image.isNull(), reader.errorString()
        sizes.append(image.width())
        assert image.pixelColor(image.width() // 2, image.height() // 10).alpha() == 255  # opaque body
        assert image.pixelColor(0, 0).alpha() < 128  # rounded, transparent corner
    assert sorted(sizes) == [16, 32, 48, 256]
    png = QImage(str(ROOT / "resources" / "icon.png"))
    assert (png.width(), png.height()) == (256, 256)
    assert (ROOT / "resources" / "icon.ico").stat().st_size < 64_000
