"""services.image_prep on images generated with Pillow: sizes and byte caps per protocol, EXIF
orientation applied, metadata gone, first GIF frame, transparency kept, HEIC through the extra,
and every bad input a clear AttachmentError."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from PIL import Image

from tests.services.image_samples import (
    CAMERA,
    animated_gif,
    diagram_png,
    encode,
    open_bytes,
    photo,
    png_header_only,
    rotated_jpeg_with_gps,
    transparent_png,
)
from victor_gui.errors import AttachmentError
from victor_gui.services.image_limits import fit_size
from victor_gui.services.image_prep import (
    IMAGE_LIMITS,
    describe_image,
    image_tokens_estimate,
    limits_for,
    prepare_image,
    protocol_of,
)


@pytest.fixture(scope="module")
def big_png() -> bytes:
    return encode(photo(4000, 3000), "PNG")


@pytest.mark.parametrize("protocol", sorted(IMAGE_LIMITS))
def test_big_photo_fits_each_protocols_limits(big_png: bytes, protocol: str) -> None:
    """A 4000×3000 photo (a 36 MB PNG) comes out at the row's size, under its byte cap, as JPEG."""
    limits = IMAGE_LIMITS[protocol]
    prepared = prepare_image(big_png, protocol)
    decoded = open_bytes(prepared.data)
    assert decoded.size == (prepared.width, prepared.height) == fit_size(4000, 3000, limits)
    assert max(decoded.size) <= limits.long_side
    assert len(prepared.data) <= limits.max_bytes
    assert prepared.media_type == "image/jpeg" == Image.MIME[decoded.format or ""]
    assert prepared.media_type in limits.media_types


def test_openai_high_detail_shape_and_anthropic_megapixels(big_png: bytes) -> None:
    """OpenAI: fits 2048 then 768 on the short side; Anthropic: ≤1568 px and ≤1.15 MP."""
    openai = prepare_image(big_png, "openai")
    assert (openai.width, openai.height) == (1024, 768)
    claude = prepare_image(big_png, "anthropic")
    assert max(claude.width, claude.height) <= 1568 and claude.width * claude.height <= 1_150_000
    assert claude.width / claude.height == pytest.approx(4 / 3, rel=0.01)


def test_byte_cap_steps_quality_then_size_down() -> None:
    """Replicate's 1 MB data-URI cap on a noisy photo: under it, at most the row's size."""
    noisy = encode(photo(2200, 2200, seed=3), "PNG")
    prepared = prepare_image(noisy, "replicate")
    assert len(prepared.data) <= 1 * 1024 * 1024
    assert max(prepared.width, prepared.height) <= 1568
    assert open_bytes(prepared.data).size == (prepared.width, prepared.height)


def test_exif_orientation_applied_and_all_metadata_stripped() -> None:
    raw = rotated_jpeg_with_gps()
    assert CAMERA.encode() in raw and b"Exif" in raw  # the sample does carry them
    prepared = prepare_image(raw, "anthropic", name="holiday.jpg")
    image = open_bytes(prepared.data)
    assert image.size == (200, 400)  # orientation 6: stored landscape, shown portrait
    red_top = image.convert("RGB").getpixel((100, 50))
    blue_bottom = image.convert("RGB").getpixel((100, 350))
    assert isinstance(red_top, tuple) and isinstance(blue_bottom, tuple)
    assert red_top[0] > 200 and red_top[2] < 60  # the stored left (red) half is now on top
    assert blue_bottom[2] > 200 and blue_bottom[0] < 60
    assert CAMERA.encode() not in prepared.data and b"Exif" not in prepared.data
    assert len(image.getexif()) == 0 and not image.getexif().get_ifd(0x8825)
    assert "exif" not in image.info and "icc_profile" not in image.info
    assert describe_image(raw) == ("image/jpeg", 200, 400)


def test_animated_gif_sends_its_first_frame_as_png() -> None:
    prepared = prepare_image(animated_gif(), "openai")
    assert prepared.media_type == "image/png"
    image = open_bytes(prepared.data)
    assert getattr(image, "n_frames", 1) == 1
    assert image.convert("RGB").getpixel((60, 40)) == (0, 200, 0)  # green: frame one


def test_webp_photo_becomes_jpeg_and_webp_with_alpha_stays_png() -> None:
    lossy = encode(photo(1200, 900), "WEBP", quality=80)
    assert describe_image(lossy) == ("image/webp", 1200, 900)
    assert prepare_image(lossy, "ollama").media_type == "image/jpeg"  # Ollama: JPEG or PNG only
    rgba = photo(300, 200).convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 90))
    prepared = prepare_image(encode(rgba, "WEBP", lossless=True), "ollama")
    assert prepared.media_type == "image/png"
    assert open_bytes(prepared.data).mode == "RGBA"


def test_transparency_kept_as_png_and_few_colours_stay_png() -> None:
    clear = prepare_image(transparent_png(1800, 1200), "anthropic")
    image = open_bytes(clear.data)
    assert clear.media_type == "image/png" and image.mode == "RGBA"
    alpha = image.getchannel("A")
    assert alpha.getpixel((5, 5)) == 0 and alpha.getpixel((image.width - 5, 5)) == 255
    assert len(clear.data) <= IMAGE_LIMITS["anthropic"].max_bytes
    diagram = prepare_image(diagram_png(), "openai")
    assert diagram.media_type == "image/png" and (diagram.width, diagram.height) == (1152, 768)


def test_heic_through_pillow_heif() -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    raw = encode(photo(640, 480), "HEIF", quality=60)
    assert describe_image(raw) == ("image/heic", 640, 480)
    prepared = prepare_image(raw, "gemini")
    assert prepared.media_type in ("image/jpeg", "image/png")
    assert open_bytes(prepared.data).size == (640, 480)


def test_heic_without_the_extra_names_it(tmp_path: object) -> None:
    """A Python where pillow-heif cannot be imported (the extra not installed)."""
    pytest.importorskip("pillow_heif")
    script = textwrap.dedent(
        """
        import io, sys
        from PIL import Image
        import pillow_heif
        pillow_heif.register_heif_opener()
        out = io.BytesIO(); Image.new("RGB", (64, 48), (9, 9, 9)).save(out, format="HEIF")
        for name in [m for m in sys.modules if m.startswith("pillow_heif")]:
            del sys.modules[name]
        sys.modules["pillow_heif"] = None  # import pillow_heif now fails, as without the extra
        from PIL import Image as _I
        _I.OPEN.pop("HEIF", None); _I.ID[:] = [i for i in _I.ID if i != "HEIF"]
        from victor_gui.errors import AttachmentError
        from victor_gui.services.image_prep import prepare_image
        try:
            prepare_image(out.getvalue(), "openai", name="IMG_0001.HEIC")
        except AttachmentError as exc:
            print(exc.reason, "|", exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    reason, message = done.stdout.strip().split(" | ", 1)
    assert reason == "missing_extra"
    assert "'heic' extra" in message and "IMG_0001.HEIC" in message


def test_truncated_png_is_a_clear_error() -> None:
    raw = encode(photo(800, 600), "PNG")
    with pytest.raises(AttachmentError) as caught:
        prepare_image(raw[: len(raw) // 2], "openai", name="cut.png")
    assert caught.value.reason == "broken" and caught.value.name == "cut.png"
    assert "'cut.png' cannot be read: it is truncated" in str(caught.value)


def test_decompression_bomb_refused_from_its_header() -> None:
    """100000×100000 declared in 100 bytes: refused at once, nothing decoded."""
    bomb = png_header_only(100_000, 100_000)
    assert len(bomb) < 200
    started = time.monotonic()
    for call in (lambda: prepare_image(bomb, "openai", name="bomb.png"), lambda: describe_image(bomb)):
        with pytest.raises(AttachmentError) as caught:
            call()
        assert caught.value.reason == "too_large"
        assert "decompression bomb" in str(caught.value)
    # Past Pillow's own limit too (12000×12000 = 144 MP > our 120 MP, < Pillow's 179 MP error).
    with pytest.raises(AttachmentError, match=r"12000×12000 pixels"):
        prepare_image(png_header_only(12_000, 12_000), "openai")
    assert time.monotonic() - started < 2.0


def test_not_an_image_and_empty_bytes() -> None:
    for raw in (b"%PDF-1.7 not an image", b""):
        with pytest.raises(AttachmentError) as caught:
            prepare_image(raw, "openai", name="notes.pdf")
        assert caught.value.reason == "unsupported" and "notes.pdf" in str(caught.value)
    bmp = encode(Image.new("RGB", (10, 10)), "BMP")
    with pytest.raises(AttachmentError, match="BMP image; attach PNG, JPEG"):
        prepare_image(bmp, "openai")


def test_protocol_names_and_provider_names() -> None:
    assert limits_for("anthropic") is IMAGE_LIMITS["anthropic"]
    assert protocol_of("lmstudio") == "openai" and protocol_of("aws") == "bedrock"
    assert limits_for("google") is IMAGE_LIMITS["gemini"]
    assert limits_for("my-gateway") is IMAGE_LIMITS["openai"]


def test_token_estimates_follow_the_documented_formulas() -> None:
    # OpenAI's own example: 1024×1024 high detail → 768×768 → 4 tiles → 85 + 4×170 = 765.
    assert image_tokens_estimate(1024, 1024, "openai") == 765
    assert image_tokens_estimate(4000, 3000, "azure") == 85 + 170 * 4  # 1024×768: 2×2 tiles
    # Anthropic: w×h/750; 1000×1000 → 1334 (their table), a big photo capped near 1,600.
    assert image_tokens_estimate(1000, 1000, "anthropic") == 1334
    assert 1500 <= image_tokens_estimate(4000, 3000, "bedrock") <= 1600
    # Gemini: ≤384 px both sides = 258; otherwise 258 per 768×768 tile.
    assert image_tokens_estimate(300, 200, "gemini") == 258
    assert image_tokens_estimate(1536, 768, "vertex") == 516
    # Local projectors: 28-px patches after the row's downscale (2048×1536 → 74×55).
    assert image_tokens_estimate(4000, 3000, "ollama") == 74 * 55
    assert image_tokens_estimate(10, 10, "ollama") == 64
    assert image_tokens_estimate(1000, 1000, "hf_tgi") == 0


@pytest.mark.parametrize(
    ("mode", "fmt", "options", "sent_mode"),
    [
        ("LA", "PNG", {}, "RGBA"),  # grey with real transparency
        ("P", "PNG", {"transparency": 3}, "RGBA"),  # a palette entry marked transparent
        ("CMYK", "JPEG", {}, "RGB"),  # print JPEGs: models expect RGB
        ("1", "PNG", {}, "RGB"),
        ("L", "JPEG", {}, "L"),  # greyscale stays greyscale
    ],
)
def test_unusual_modes_come_out_as_rgb_grey_or_rgba(mode: str, fmt: str, options: dict[str, object],
                                                    sent_mode: str) -> None:
    colour: Any = {"LA": (100, 128), "P": 3, "CMYK": (10, 200, 30, 0), "1": 1, "L": 77}[mode]
    raw = encode(Image.new(mode, (300, 200), colour), fmt, **options)
    prepared = prepare_image(raw, "openai")
    image = open_bytes(prepared.data)
    assert image.mode == sent_mode and image.size == (300, 200)
    assert prepared.media_type == "image/png"  # flat colour: few colours, kept lossless


def test_damaged_bytes_give_an_attachment_error_or_an_image() -> None:
    """200 copies of a small JPEG and PNG, each with bytes past the header overwritten (a
    bounded mutation: the declared size stays small): every one is prepared or refused with
    AttachmentError, never another exception."""
    import random

    rng = random.Random(13)
    sources = [encode(photo(96, 64), "JPEG", quality=80), encode(photo(96, 64), "PNG")]
    outcomes = {"prepared": 0, "refused": 0}
    for i in range(200):
        data = bytearray(sources[i % 2])
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(40, len(data))] = rng.randrange(256)
        try:
            prepare_image(bytes(data), "anthropic")
            outcomes["prepared"] += 1
        except AttachmentError as exc:
            assert exc.reason in ("broken", "unsupported", "too_large"), exc
            outcomes["refused"] += 1
    assert sum(outcomes.values()) == 200
    assert outcomes["refused"] > 0 and outcomes["prepared"] > 0, outcomes  # both paths taken
