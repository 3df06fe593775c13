"""Draw the app icon with QPainter and write ``resources/icon.png`` and ``resources/icon.ico``.

Run once when the design changes (``python packaging/make_icon.py``); the outputs are committed,
so builds need neither this script nor Pillow. The .ico holds 16, 32 and 48 px images as
classic 32-bit DIBs (read by every Windows version and by NSIS) and a 256 px PNG image (the
Vista+ large-icon form, which keeps the file small).
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ICO_SIZES = (16, 32, 48, 256)


def render(size: int):  # -> QImage; Qt is imported lazily so the module imports without it
    """The icon at ``size`` px: a blue rounded square holding a white speech bubble with a V."""
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QBrush, QColor, QImage, QLinearGradient, QPainter, QPainterPath, QPen

    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = float(size)
    grad = QLinearGradient(0, 0, 0, s)
    grad.setColorAt(0.0, QColor("#3b82f6"))
    grad.setColorAt(1.0, QColor("#1e3a8a"))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QBrush(grad))
    p.drawRoundedRect(QRectF(0, 0, s, s), s * 0.2, s * 0.2)
    # Speech bubble: a rounded rectangle with a tail at the lower left.
    bubble = QPainterPath()
    bubble.addRoundedRect(QRectF(s * 0.16, s * 0.18, s * 0.68, s * 0.52), s * 0.12, s * 0.12)
    tail = QPainterPath()
    tail.moveTo(QPointF(s * 0.28, s * 0.64))
    tail.lineTo(QPointF(s * 0.22, s * 0.84))
    tail.lineTo(QPointF(s * 0.46, s * 0.68))
    tail.closeSubpath()
    p.setBrush(QColor("#ffffff"))
    p.drawPath(bubble.united(tail))
    # The V, as two strokes, so it needs no font (fonts differ between machines).
    pen = QPen(QColor("#1e40af"), max(1.5, s * 0.085))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    v = QPainterPath()
    v.moveTo(QPointF(s * 0.36, s * 0.31))
    v.lineTo(QPointF(s * 0.50, s * 0.58))
    v.lineTo(QPointF(s * 0.64, s * 0.31))
    p.drawPath(v)
    p.end()
    return img


def png_bytes(img) -> bytes:
    """``img`` encoded as PNG."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    img.save(buf, "PNG")
    buf.close()
    return bytes(data.data())


def dib_bytes(img) -> bytes:
    """``img`` as an ICO DIB: BITMAPINFOHEADER, bottom-up BGRA rows, then a 1-bit AND mask."""
    w, h = img.width(), img.height()
    header = struct.pack("<IiiHHIIiiII", 40, w, h * 2, 1, 32, 0, 0, 0, 0, 0, 0)
    rows = []
    for y in range(h - 1, -1, -1):
        row = bytearray()
        for x in range(w):
            argb = img.pixel(x, y)  # un-premultiplied 0xAARRGGBB
            row += struct.pack("<I", argb)  # little-endian ARGB is B, G, R, A in memory
        rows.append(bytes(row))
    mask_row = ((w + 31) // 32) * 4  # all zero: the alpha channel alone decides transparency
    return header + b"".join(rows) + b"\0" * (mask_row * h)


def ico_bytes(images: dict[int, bytes]) -> bytes:
    """An ICO file holding ``images`` (size -> DIB or PNG bytes), smallest first."""
    sizes = sorted(images)
    out = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    entries, blobs = b"", b""
    for size in sizes:
        blob = images[size]
        dim = 0 if size >= 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(blob), offset)
        offset += len(blob)
        blobs += blob
    return out + entries + blobs


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    out = ROOT / "resources"
    (out / "icon.png").write_bytes(png_bytes(render(256)))
    images = {
        size: (png_bytes(render(size)) if size >= 256 else dib_bytes(render(size))) for size in ICO_SIZES
    }
    (out / "icon.ico").write_bytes(ico_bytes(images))
    print(f"wrote {out / 'icon.png'} and {out / 'icon.ico'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
