"""An attached image made ready for one wire protocol (Pillow).

:func:`prepare_image` decodes PNG, JPEG, WebP, GIF (first frame) and HEIC/HEIF (with the
``heic`` extra, pillow-heif), applies the EXIF orientation, drops every piece of metadata
(EXIF with its GPS position, XMP, comments, text chunks, ICC profile after converting to sRGB),
scales the image down to the protocol's row of :data:`IMAGE_LIMITS` and re-encodes it: PNG for
images with transparency or few colours (screenshots, diagrams), JPEG quality 85 otherwise,
stepping quality and then size down until it is under the row's byte cap.
:func:`describe_image` reads only the header (type and oriented size) for the chips.

Both are synchronous and CPU-bound: call them in a worker thread (``asyncio.to_thread``). Bad
input (not an image, truncated, a decompression bomb, a format without its library) raises
:class:`~victor_gui.errors.AttachmentError` with one sentence; nothing here raises anything else.
"""

from __future__ import annotations

import io
import threading
import warnings
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from victor_gui.errors import AttachmentError
from victor_gui.services.attachment_types import PreparedImage
from victor_gui.services.image_limits import (
    IMAGE_LIMITS,
    JPEG,
    MAX_SOURCE_BYTES,
    PNG,
    ImageLimits,
    fit_size,
    image_tokens_estimate,
    limits_for,
    protocol_of,
)

# Refused before decoding: more pixels than this is a decompression bomb or a scan no model
# needs (Pillow's own warning threshold, ~89.5 MP; a 108 MP phone photo is 12000×9000 = 108 MP,
# so raise it for those: the decoder only ever holds one full-size copy).
MAX_SOURCE_PIXELS = 120_000_000
JPEG_QUALITIES = (85, 75, 65, 50)
# Each further step scales the image by this when the lowest quality is still too large.
SHRINK_STEP = 0.75
MIN_LONG_SIDE = 64  # below this the image says nothing; give up instead
# Sampled colours at most this many: PNG keeps the image sharp and small (screenshots, charts).
FEW_COLOURS = 1024

_FORMATS = {"PNG": PNG, "JPEG": JPEG, "MPO": JPEG, "WEBP": "image/webp", "GIF": "image/gif",
            "HEIF": "image/heic", "AVIF": "image/avif"}
# ISO-BMFF brands of HEIC/HEIF files (bytes 8-12 after the ``ftyp`` box name).
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"mif2")
_heif_lock = threading.Lock()
_heif_ready = False


def prepare_image(raw: bytes, protocol: str, *, name: str | None = None) -> PreparedImage:
    """``raw`` image bytes re-encoded for ``protocol`` (a catalog protocol or provider name).

    The result is at most the row's size and bytes, in a media type the protocol accepts,
    oriented as the camera held it and without metadata. ``name`` only goes in error messages.
    """
    limits = limits_for(protocol)
    image = _open(raw, name)
    try:
        return _prepare(image, limits, name)
    except AttachmentError:
        raise
    except MemoryError as exc:
        raise AttachmentError(f"{_label(name)} is too large to prepare in memory.", reason="too_large",
                              name=name) from exc
    except Exception as exc:  # a hostile file can trip any decoder error
        raise _broken(name, exc) from exc
    finally:
        image.close()


def describe_image(raw: bytes, *, name: str | None = None) -> tuple[str, int, int]:
    """``(media_type, width, height)`` from the header only, EXIF orientation applied (a photo
    taken upright on a phone is taller than wide). Raises :class:`AttachmentError` like
    :func:`prepare_image` for what is not a usable image."""
    image = _open(raw, name)
    try:
        width, height = image.size
        if _orientation(image) in (5, 6, 7, 8):  # rotated by 90°: the sides swap
            width, height = height, width
        return _FORMATS.get(image.format or "", "application/octet-stream"), width, height
    finally:
        image.close()


# -- opening ------------------------------------------------------------------------------------


def _open(raw: bytes, name: str | None) -> Image.Image:
    """The image, header read and checked, pixels not yet decoded."""
    if len(raw) > MAX_SOURCE_BYTES:
        raise AttachmentError(f"{_label(name)} is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MB; "
                              "images that large cannot be sent.", reason="too_large", name=name)
    if _looks_like_heif(raw):
        _register_heif(name)
    try:
        with warnings.catch_warnings():
            # Pillow warns past MAX_IMAGE_PIXELS and raises past twice that; we decide below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError as exc:
        raise _bomb(name) from exc
    except UnidentifiedImageError as exc:
        raise AttachmentError(f"{_label(name)} is not an image this app can read (PNG, JPEG, WebP, "
                              "GIF or HEIC).", reason="unsupported", name=name) from exc
    except Exception as exc:  # a hostile header can trip any parser error
        raise _broken(name, exc) from exc
    if image.format not in _FORMATS:
        image.close()
        raise AttachmentError(f"{_label(name)} is a {image.format} image; attach PNG, JPEG, WebP, GIF "
                              "or HEIC.", reason="unsupported", name=name)
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise AttachmentError(f"{_label(name)} has no pixels.", reason="broken", name=name)
    if width * height > MAX_SOURCE_PIXELS:
        image.close()
        raise _bomb(name, width, height)
    return image


def _looks_like_heif(raw: bytes) -> bool:
    return raw[4:8] == b"ftyp" and raw[8:12] in _HEIF_BRANDS


def _register_heif(name: str | None) -> None:
    """Teach Pillow HEIC/HEIF through pillow-heif (the ``heic`` extra), once per process."""
    global _heif_ready
    with _heif_lock:
        if _heif_ready:
            return
        try:
            import pillow_heif
        except ImportError as exc:
            raise AttachmentError(
                f"{_label(name)} is a HEIC/HEIF photo, which needs the optional 'heic' extra "
                "(pip install 'victor_gui[heic]'); or export it as JPEG.",
                reason="missing_extra", name=name,
            ) from exc
        pillow_heif.register_heif_opener()
        _heif_ready = True


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)  # Orientation
    except Exception:  # a broken EXIF block is ignored, not fatal
        return 1
    return value if isinstance(value, int) else 1


# -- preparing ----------------------------------------------------------------------------------


def _prepare(image: Image.Image, limits: ImageLimits, name: str | None) -> PreparedImage:
    orientation = _orientation(image)
    width, height = image.size
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    target = fit_size(width, height, limits)
    if image.format in ("JPEG", "MPO"):
        # Decode at 1/2, 1/4 or 1/8 scale when that still covers the target: a 48 MP photo then
        # never exists in memory at full size.
        draft = (target[1], target[0]) if orientation in (5, 6, 7, 8) else target
        image.draft("RGB", draft)
    image.seek(0)  # GIF/WebP/APNG animations: the first frame
    image.load()
    few_colours = _few_colours(image)  # on the source: its format and palette still known
    frame = ImageOps.exif_transpose(image) or image
    frame = _to_srgb(frame)
    alpha = _has_alpha(frame)
    frame.info = {}  # EXIF, GPS, XMP, comments, text chunks, ICC: none is written out
    keep_png = alpha or few_colours
    frame = _normalise_mode(frame, alpha)
    if frame.size != target:
        frame = frame.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return _encode_under_cap(frame, limits, keep_png=keep_png, alpha=alpha, name=name)


def _to_srgb(image: Image.Image) -> Image.Image:
    """Pixels converted from an embedded ICC profile (a phone's Display P3) to sRGB, which is
    what a model assumes once the profile is dropped; unchanged without one or without LittleCMS."""
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"),
                                              outputMode=image.mode)
    except Exception:  # no LittleCMS, or a broken profile: keep the pixels as they are
        return image
    return converted if converted is not None else image


def _has_alpha(image: Image.Image) -> bool:
    """True when some pixel is not fully opaque (an all-opaque alpha channel does not count)."""
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        low, _high = image.getchannel("A").getextrema()
        return bool(low < 255)  # type: ignore[operator]
    if image.mode == "P" and "transparency" in image.info:
        return True
    return image.mode == "PA"


def _few_colours(image: Image.Image) -> bool:
    """Sampled (nearest neighbour, so no new colours appear) at most :data:`FEW_COLOURS`."""
    if image.mode in ("P", "1", "L") and image.format in ("GIF", "PNG"):
        return True
    sample = image
    if max(image.size) > 256:
        scale = 256 / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        sample = image.resize(size, Image.Resampling.NEAREST)
    return sample.convert("RGB").getcolors(FEW_COLOURS) is not None


def _normalise_mode(image: Image.Image, alpha: bool) -> Image.Image:
    if alpha:
        return image if image.mode == "RGBA" else image.convert("RGBA")
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("RGBA", "LA", "PA"):  # an opaque alpha channel: drop it
        return image.convert("RGB")
    return image.convert("RGB")


def _encode_under_cap(image: Image.Image, limits: ImageLimits, *, keep_png: bool, alpha: bool,
                      name: str | None) -> PreparedImage:
    """Encode, then step quality and size down until the bytes fit ``limits.max_bytes``."""
    png_ok = PNG in limits.media_types
    current = image
    while True:
        if keep_png and png_ok:
            data = _save(current, "PNG", optimize=False, compress_level=6)
            if len(data) <= limits.max_bytes:
                return PreparedImage(data, PNG, current.width, current.height)
            if not alpha:  # a photo-like PNG too big as PNG: JPEG at this size may fit
                jpeg = _best_jpeg(current, limits.max_bytes)
                if jpeg is not None:
                    return PreparedImage(jpeg, JPEG, current.width, current.height)
        else:
            flat = _flatten(current) if current.mode in ("RGBA", "LA", "PA") else current
            jpeg = _best_jpeg(flat, limits.max_bytes)
            if jpeg is not None:
                return PreparedImage(jpeg, JPEG, current.width, current.height)
        if max(current.size) * SHRINK_STEP < MIN_LONG_SIDE:
            raise AttachmentError(f"{_label(name)} cannot be made smaller than "
                                  f"{limits.max_bytes // 1024} KB.", reason="too_large", name=name)
        size = (max(1, int(current.width * SHRINK_STEP)), max(1, int(current.height * SHRINK_STEP)))
        current = current.resize(size, Image.Resampling.LANCZOS)


def _best_jpeg(image: Image.Image, cap: int) -> bytes | None:
    """The highest of :data:`JPEG_QUALITIES` whose bytes fit ``cap``; None when none does."""
    rgb = image if image.mode in ("RGB", "L") else image.convert("RGB")
    for quality in JPEG_QUALITIES:
        data = _save(rgb, "JPEG", quality=quality, optimize=True, progressive=False)
        if len(data) <= cap:
            return data
    return None


def _flatten(image: Image.Image) -> Image.Image:
    """Transparent pixels on white (for a protocol that takes no PNG, which none does today)."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, (255, 255, 255))
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def _save(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    # Nothing from the source travels: no exif=, icc_profile=, pnginfo= passed, info cleared.
    image.save(out, format=fmt, **options)
    return out.getvalue()


# -- errors -------------------------------------------------------------------------------------


def _label(name: str | None) -> str:
    return f"The image {name!r}" if name else "The image"


def _bomb(name: str | None, width: int | None = None, height: int | None = None) -> AttachmentError:
    size = f" ({width}×{height} pixels)" if width and height else ""
    return AttachmentError(f"{_label(name)}{size} has more pixels than this app decodes "
                           f"({MAX_SOURCE_PIXELS // 1_000_000} million at most); it may be a "
                           "decompression bomb.", reason="too_large", name=name)


def _broken(name: str | None, exc: BaseException) -> AttachmentError:
    detail = str(exc).strip().rstrip(".")
    why = "it is truncated" if "truncat" in detail.lower() else "it is damaged"
    return AttachmentError(f"{_label(name)} cannot be read: {why} ({detail[:120]}).", reason="broken",
                           name=name)


__all__ = [
    "IMAGE_LIMITS",
    "MAX_SOURCE_PIXELS",
    "ImageLimits",
    "describe_image",
    "image_tokens_estimate",
    "limits_for",
    "prepare_image",
    "protocol_of",
]
