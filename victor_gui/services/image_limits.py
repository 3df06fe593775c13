"""What each wire protocol accepts as an image: long side, pixels, bytes, media types.

One row per protocol module in ``providers/protocols`` (the catalog's ``protocol`` names), each
with the provider's documented limit cited beside it. A row's ``long_side``/``max_pixels`` are
what we downscale to (the size past which the provider resizes on its side anyway, so bigger
only costs upload time and tokens); ``max_bytes`` is the encoded image's cap (the provider's
per-image limit, base64 growth allowed for where the limit counts base64 characters).

Qt-free, no I/O. :mod:`victor_gui.services.image_prep` applies the rows;
:func:`image_tokens_estimate` gives the chips a context cost from the same rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from victor_gui.providers.catalog import find_spec

# An image file larger than this is refused unread (no phone or camera photo comes near it).
# Here, not in image_prep, so the attachment draft can check it without importing Pillow.
MAX_SOURCE_BYTES = 100 * 1024 * 1024

MB = 1024 * 1024
JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
GIF = "image/gif"
HEIC = "image/heic"
HEIF = "image/heif"


@dataclass(frozen=True)
class ImageLimits:
    """The image one request of a protocol should carry."""

    long_side: int  # px: the longer side is scaled down to this
    max_bytes: int  # encoded bytes of one image (before base64)
    media_types: tuple[str, ...]  # what the protocol accepts; JPEG and PNG are all we produce
    short_side: int | None = None  # px: also fit the shorter side (OpenAI's high detail)
    max_pixels: int | None = None  # width × height cap (Anthropic's ~1.15 MP)


# fmt: off
IMAGE_LIMITS: dict[str, ImageLimits] = {
    # OpenAI (developers.openai.com/api/docs/guides/images-vision): PNG, JPEG, WEBP and
    # non-animated GIF, up to 50 MB of payload per request; "high" detail first fits the image in
    # 2048×2048, then scales it so the shortest side is 768 px. Per image we keep 20 MB (the
    # long-standing per-image limit). Local OpenAI-compatible servers (llama.cpp, LM Studio,
    # vLLM) take the same parts; their projectors resize to far less than this.
    "openai": ImageLimits(2048, 20 * MB, (JPEG, PNG, WEBP, GIF), short_side=768),
    # Azure OpenAI serves the same models with the same image rules (20 MB per image).
    "azure": ImageLimits(2048, 20 * MB, (JPEG, PNG, WEBP, GIF), short_side=768),
    # Anthropic (docs.claude.com/en/docs/vision): larger than 8000×8000 is rejected; a long edge
    # over 1568 px or more than ~1,600 tokens (about 1.15 MP) is scaled down first, so send at
    # most that. 5 MB per image counted on the base64 text: 3.75 MB of bytes.
    "anthropic": ImageLimits(1568, 3_750_000, (JPEG, PNG, GIF, WEBP), max_pixels=1_150_000),
    # Bedrock Converse (docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Message.html):
    # "Each image's size, height, and width must be no more than 3.75 MB, 8000 px, and 8000 px";
    # formats png | jpeg | gif | webp. Its vision models are mostly Claude, which resizes past
    # 1568 px / ~1.15 MP as above, so that is what we send.
    "bedrock": ImageLimits(1568, 3_750_000, (JPEG, PNG, GIF, WEBP), max_pixels=1_150_000),
    # Gemini API (ai.google.dev, image understanding): inline data for requests up to 20 MB in
    # all; PNG, JPEG, WEBP, HEIC, HEIF. Images are cut into 768×768 tiles of 258 tokens, so a long
    # side past 3072 px only adds tiles. 15 MB leaves room for the rest of the request.
    "gemini": ImageLimits(3072, 15 * MB, (JPEG, PNG, WEBP, HEIC, HEIF)),
    # Vertex AI (docs.cloud.google.com/vertex-ai/.../image-understanding): "Maximum file size per
    # file for inline data ...: 7 MB"; same media types as the Gemini API.
    "vertex": ImageLimits(3072, 7 * MB, (JPEG, PNG, WEBP, HEIC, HEIF)),
    # Ollama (servers.md §1.4: bare base64 in ``images``) documents no size limit; the model's
    # projector resizes (llava 336/672 px, llama3.2-vision 1120 px, Qwen-VL by 28-px patches).
    # Our choice: 2048 px and 10 MB keep a large screenshot readable without a huge request.
    "ollama": ImageLimits(2048, 10 * MB, (JPEG, PNG)),
    # Replicate (replicate.com/docs/topics/predictions/input-files): a data URI "is only
    # recommended if the file is less than 1MB".
    "replicate": ImageLimits(1568, 1 * MB, (JPEG, PNG, WEBP, GIF)),
    # Hugging Face text-generation route: the prompt is text only (hf_prompt drops images);
    # TGI's default --payload-limit is 2,000,000 bytes, so an image a TGI chat route does take
    # stays under 1.4 MB before base64.
    "hf_tgi": ImageLimits(1568, 1_400_000, (JPEG, PNG)),
}
# fmt: on
DEFAULT_PROTOCOL = "openai"  # user-defined endpoints speak it; its row is the default


def limits_for(protocol: str) -> ImageLimits:
    """The row of ``protocol`` (a catalog protocol name or a provider name); OpenAI's otherwise."""
    key = protocol.strip().lower()
    if key in IMAGE_LIMITS:
        return IMAGE_LIMITS[key]
    return IMAGE_LIMITS[protocol_of(key)]


def protocol_of(provider: str) -> str:
    """The wire protocol a provider name (or alias) speaks; ``openai`` for unknown names
    (hand-added endpoints are OpenAI-compatible unless they say otherwise)."""
    spec = find_spec(provider)
    protocol = spec.protocol if spec is not None else DEFAULT_PROTOCOL
    return protocol if protocol in IMAGE_LIMITS else DEFAULT_PROTOCOL


def fit_size(width: int, height: int, limits: ImageLimits) -> tuple[int, int]:
    """``(width, height)`` scaled down (never up, aspect kept) to fit ``limits``."""
    if width <= 0 or height <= 0:
        return max(width, 0), max(height, 0)
    scale = min(1.0, limits.long_side / max(width, height))
    if limits.short_side:
        scale = min(scale, limits.short_side / min(width, height))
    if limits.max_pixels:
        scale = min(scale, math.sqrt(limits.max_pixels / (width * height)))
    if scale >= 1.0:
        return width, height
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def image_tokens_estimate(width: int, height: int, protocol: str) -> int:
    """Context tokens one image of this size costs once prepared for ``protocol``.

    Documented formulas, applied to the size :func:`fit_size` sends:

    * OpenAI / Azure (gpt-4o class, "high" detail): 85 + 170 per 512-px tile.
    * Anthropic / Bedrock (Claude): ``width × height / 750``.
    * Gemini / Vertex: 258 when both sides are ≤ 384 px, else 258 per 768×768 tile.
    * Hugging Face text generation: 0 (the prompt is text only; images are dropped).
    * Local projectors (Ollama, Replicate's open models): one token per 28×28-px patch, the
      Qwen-VL / llama.cpp mtmd rule, at least 64 — an estimate: llava-1.5 always uses 576.
    """
    key = protocol.strip().lower()
    proto = key if key in IMAGE_LIMITS else protocol_of(key)
    w, h = fit_size(width, height, IMAGE_LIMITS[proto])
    if w <= 0 or h <= 0:
        return 0
    if proto in ("openai", "azure"):
        return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)
    if proto in ("anthropic", "bedrock"):
        return math.ceil(w * h / 750)
    if proto in ("gemini", "vertex"):
        if w <= 384 and h <= 384:
            return 258
        return 258 * math.ceil(w / 768) * math.ceil(h / 768)
    if proto == "hf_tgi":
        return 0
    return max(64, math.ceil(w / 28) * math.ceil(h / 28))


__all__ = [
    "IMAGE_LIMITS",
    "ImageLimits",
    "fit_size",
    "image_tokens_estimate",
    "limits_for",
    "protocol_of",
]
