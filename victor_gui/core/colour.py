"""WCAG 2 colour contrast: relative luminance, contrast ratio, and nudging a colour until it
reads on a background. Used by the theme (its tokens), the code-block colours and the tests."""

from __future__ import annotations

# WCAG 2.1 AA for body text.
BODY_TEXT_RATIO = 4.5


def parse_hex(colour: str) -> tuple[int, int, int]:
    """``#rgb`` or ``#rrggbb`` as an (r, g, b) tuple of 0-255."""
    value = colour.strip().lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    if len(value) != 6:
        raise ValueError(f"not a #rrggbb colour: {colour!r}")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def to_hex(rgb: tuple[int, int, int]) -> str:
    """``#rrggbb`` for an (r, g, b) tuple."""
    return "#{:02x}{:02x}{:02x}".format(*(max(0, min(255, round(c))) for c in rgb))


def relative_luminance(colour: str | tuple[int, int, int]) -> float:
    """WCAG relative luminance (0 for black, 1 for white)."""
    rgb = parse_hex(colour) if isinstance(colour, str) else colour

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str | tuple[int, int, int], b: str | tuple[int, int, int]) -> float:
    """WCAG contrast ratio between two colours, from 1 (same) to 21 (black on white)."""
    la, lb = relative_luminance(a), relative_luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def readable_on(colour: str, background: str, ratio: float = BODY_TEXT_RATIO) -> str:
    """``colour`` if it reaches ``ratio`` on ``background``, else the nearest mix of it towards
    black (on a light background) or white (on a dark one) that does: the hue stays, only the
    lightness moves, so a syntax colour keeps its meaning."""
    if contrast_ratio(colour, background) >= ratio:
        return to_hex(parse_hex(colour))
    target = (0, 0, 0) if relative_luminance(background) > 0.18 else (255, 255, 255)
    rgb = parse_hex(colour)
    for step in range(1, 21):
        t = step / 20
        mixed = tuple(c + (e - c) * t for c, e in zip(rgb, target, strict=True))
        candidate = to_hex((round(mixed[0]), round(mixed[1]), round(mixed[2])))
        if contrast_ratio(candidate, background) >= ratio:
            return candidate
    return to_hex(target)


__all__ = ["BODY_TEXT_RATIO", "contrast_ratio", "parse_hex", "readable_on", "relative_luminance", "to_hex"]
