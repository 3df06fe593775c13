"""Images generated with Pillow for the image-preparation tests (no binary fixtures)."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image

CAMERA = "VictorTestCam"  # written in EXIF Make: must not survive preparation


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like image: smooth gradients plus sensor noise (many colours, JPEG territory)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    red, green = x * 255 / max(width, 1), y * 255 / max(height, 1)
    base = np.stack([red, green, (x + y) * 127 / max(width + height, 1)], -1)
    noisy = base + rng.normal(0, 24, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def rotated_jpeg_with_gps() -> bytes:
    """400×200 stored (left red, right blue), EXIF orientation 6 (display rotated 90° clockwise:
    the red half on top), a camera name and a GPS position."""
    image = Image.new("RGB", (400, 200), (255, 0, 0))
    image.paste((0, 0, 255), (200, 0, 400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = CAMERA
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 22.0, 7.25), 3: "E", 4: (4.0, 53.0, 1.5)})
    return encode(image, "JPEG", exif=exif, quality=95)


def animated_gif() -> bytes:
    """Three frames: green, red, blue."""
    frames = [Image.new("RGB", (120, 80), colour) for colour in ((0, 200, 0), (200, 0, 0), (0, 0, 200))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def transparent_png(width: int = 3000, height: int = 2000) -> bytes:
    """A photo with a fully transparent left quarter."""
    image = photo(width, height).convert("RGBA")
    alpha = Image.new("L", image.size, 255)
    alpha.paste(0, (0, 0, width // 4, height))
    image.putalpha(alpha)
    return encode(image, "PNG")


def diagram_png(width: int = 3000, height: int = 2000) -> bytes:
    """A screenshot-like image of five flat colours."""
    image = Image.new("RGB", (width, height), (250, 250, 250))
    for i, colour in enumerate(((30, 30, 30), (200, 40, 40), (40, 160, 60), (40, 60, 200))):
        image.paste(colour, (100 + i * 600, 200, 500 + i * 600, 1800))
    return encode(image, "PNG")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` (a decompression bomb's header) with one tiny
    IDAT: decoding would allocate the declared size; a careful reader refuses from the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def open_bytes(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
