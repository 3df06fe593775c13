"""Scrub secrets out of any text before it reaches an error, a log line or an export.

Two layers: patterns that look like credentials wherever they appear (bearer tokens, ``sk-``
style keys, ``key=`` query parameters, ``api-key`` headers, ``user:pass@`` in URLs), and the
exact values of secrets the app has looked up this run (registered with
:func:`register_secret`), so a key of an unusual shape is caught too.
"""

from __future__ import annotations

import re
import threading

_MASK = "***"
_lock = threading.Lock()
_known: set[str] = set()

# Shapes of credentials used by the providers we talk to. Each keeps a short, harmless prefix
# so a person can still tell which kind of key was involved. Compiled at the first redaction,
# not at import: every process imports this module (through victor_gui.errors), and compiling
# them was most of a short command's own import time (``victor-gui fit``).
_SHAPES: tuple[tuple[str, str], ...] = (
    (r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}", r"\1" + _MASK),
    (r"\b(sk-(?:ant-|proj-|or-)?)[A-Za-z0-9_-]{8,}", r"\1" + _MASK),
    (r"\b(xai-|gsk_|fw_|r8_|hf_|csk-|AIza)[A-Za-z0-9_-]{8,}", r"\1" + _MASK),
    (r"(?i)([?&](?:key|api[_-]?key|access_token|token)=)[^&\s\"']+", r"\1" + _MASK),
    (r"(?i)((?:x-)?api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}", r"\1" + _MASK),
    # Other schemes ("Basic <base64>", "Token <t>"): the credential follows the scheme word.
    (r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?!bearer)(?:[A-Za-z]+\s+)?[^\s\"',}]{6,}",
     r"\1" + _MASK),
    (r"\b(AKIA|ASIA)[A-Z0-9]{12,}", r"\1" + _MASK),
    # Credentials written into a URL (``http://user:pass@host``, ``https://token@host``): the
    # whole user-info part goes, since a bare user name there is often the token itself.
    (r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@\"'<>]+@", r"\1" + _MASK + "@"),
)


_compiled: list[tuple[re.Pattern[str], str]] = []


def _patterns() -> list[tuple[re.Pattern[str], str]]:
    if not _compiled:
        compiled = [(re.compile(shape), repl) for shape, repl in _SHAPES]
        with _lock:
            if not _compiled:
                _compiled.extend(compiled)
    return _compiled


def register_secret(value: str | None) -> None:
    """Remember a secret value so every later :func:`redact` call masks it verbatim."""
    if value and len(value) >= 6:
        with _lock:
            _known.add(value)


def forget_secrets() -> None:
    """Drop every registered secret (tests use this to start clean)."""
    with _lock:
        _known.clear()


def redact(text: str) -> str:
    """Return ``text`` with every credential-looking substring and known secret masked."""
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, _MASK)
    for pattern, repl in _patterns():
        text = pattern.sub(repl, text)
    return text
