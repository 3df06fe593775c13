# baseline until att-media merges
"""Images made ready for one protocol: decoded, EXIF orientation applied and EXIF dropped, the
first frame of an animation, downscaled to the protocol's long-side and byte limits.

Baseline: the smallest working version, so att-core's send path runs
end to end; att-media's module (limits table, HEIC, formats per protocol) replaces it whole.
"""

from __future__ import annotations

import io

from victor_gui.errors import AttachmentError
from victor_gui.services.attachment_types import PreparedImage

# protocol -> (longest side in pixels, largest encoded size in bytes)
IMAGE_LIMITS: dict[str, tuple[int, int]] = {
    "openai": (2048, 20 * 1024 * 1024),
    "azure": (2048, 20 * 1024 * 1024),
    "ollama": (1568, 10 * 1024 * 1024),
    "anthropic": (1568, 5 * 1024 * 1024),
    "bedrock": (1568, 3_750_000),
    "gemini": (3072, 7 * 1024 * 1024),
    "vertex": (3072, 7 * 1024 * 1024),
}
_DEFAULT = (1568, 5 * 1024 * 1024)


def prepare_image(raw: bytes, protocol: str) -> PreparedImage:
    """``raw`` (PNG, JPEG, WebP, GIF) re-encoded for ``protocol``: PNG when it has transparency,
    else JPEG; :class:`AttachmentError` (``broken``) when it is not an image Pillow reads."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    long_side, max_bytes = IMAGE_LIMITS.get(protocol, _DEFAULT)
    try:
        with Image.open(io.BytesIO(raw)) as opened:
            opened.seek(0)
            image = ImageOps.exif_transpose(opened.copy())
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise AttachmentError(f"The image could not be read ({exc}).", reason="broken") from exc
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    image = image.convert("RGBA" if alpha else "RGB")
    scale = min(1.0, long_side / max(image.size))
    while True:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        frame = image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        if alpha:
            frame.save(out, "PNG", optimize=True)
        else:
            frame.save(out, "JPEG", quality=85)
        if out.tell() <= max_bytes or max(size) <= 64:
            media = "image/png" if alpha else "image/jpeg"
            return PreparedImage(out.getvalue(), media, frame.width, frame.height)
        scale *= 0.75
