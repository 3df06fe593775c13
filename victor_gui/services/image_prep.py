"""Images made ready for a protocol: decoded, EXIF orientation applied and stripped, the first
frame of an animation, downscaled to the protocol's limits.

# baseline until att-media merges: the smallest working version the attachment draft (token
# estimates, thumbnails) and the send path need. att-media owns this module; its version wins.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from victor_gui.errors import AttachmentError
from victor_gui.services.attachment_types import PreparedImage


@dataclass(frozen=True)
class ImageLimit:
    """The largest image one protocol takes: long side in pixels and encoded bytes."""

    long_side: int
    max_bytes: int


# Per protocol (the providers' published limits, rounded down).
IMAGE_LIMITS: dict[str, ImageLimit] = {
    "openai": ImageLimit(2048, 20_000_000),
    "ollama": ImageLimit(1568, 20_000_000),
    "anthropic": ImageLimit(1568, 5_000_000),
    "bedrock": ImageLimit(1568, 3_750_000),
    "gemini": ImageLimit(3072, 20_000_000),
}
DEFAULT_LIMIT = ImageLimit(1568, 5_000_000)


def _open(raw: bytes, name: str | None = None, *, at_most: int | None = None):  # type: ignore[no-untyped-def]
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(raw))
        image.seek(0)  # an animation: its first frame
        if at_most is not None:
            # JPEG decodes at 1/2, 1/4 or 1/8 scale straight away: a 12 MP photo's thumbnail
            # costs a few milliseconds instead of a full decode (which holds the GIL ~100 ms).
            image.draft("RGB", (at_most, at_most))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        label = name or "The image"
        raise AttachmentError(f"{label} is not an image this app can read.", reason="broken",
                              name=name) from exc
    return ImageOps.exif_transpose(image)


def image_size(raw: bytes, name: str | None = None) -> tuple[int, int]:
    """Pixel size with EXIF orientation applied, from the header (nothing decoded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(raw))
        width, height = image.size
        turned = image.getexif().get(0x0112) in (5, 6, 7, 8)  # Orientation: rotated a quarter turn
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        label = name or "The image"
        raise AttachmentError(f"{label} is not an image this app can read.", reason="broken",
                              name=name) from exc
    return (height, width) if turned else (width, height)


def image_tokens_estimate(width: int, height: int, protocol: str = "anthropic") -> int:
    """Estimated prompt tokens of an image once downscaled (width × height / 750, the
    Anthropic rule; other providers are close to it for the sizes sent)."""
    limit = IMAGE_LIMITS.get(protocol, DEFAULT_LIMIT)
    scale = min(1.0, limit.long_side / max(width, height, 1))
    return max(1, math.ceil(width * scale * height * scale / 750))


def prepare_image(raw: bytes, protocol: str = "openai", name: str | None = None) -> PreparedImage:
    """Re-encode ``raw`` for ``protocol``: orientation applied, metadata dropped, downscaled."""
    limit = IMAGE_LIMITS.get(protocol, DEFAULT_LIMIT)
    image = _open(raw, name)
    image.thumbnail((limit.long_side, limit.long_side))
    has_alpha = image.mode in ("RGBA", "LA", "P")
    out = io.BytesIO()
    if has_alpha:
        image.convert("RGBA").save(out, "PNG", optimize=True)
        media = "image/png"
    else:
        image.convert("RGB").save(out, "JPEG", quality=88)
        media = "image/jpeg"
    return PreparedImage(out.getvalue(), media, image.width, image.height)


def thumbnail_png(raw: bytes, side: int = 96, name: str | None = None) -> bytes:
    """A small PNG of the image (the chip's thumbnail)."""
    image = _open(raw, name, at_most=side)
    image.thumbnail((side, side))
    out = io.BytesIO()
    image.convert("RGBA").save(out, "PNG")
    return out.getvalue()
