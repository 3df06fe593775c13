"""The error sentences the window shows; they live in :mod:`victor_gui.services.error_text` so
the headless ``victor-gui chat`` says exactly the same thing."""

from __future__ import annotations

from victor_gui.services.error_text import (
    ERROR_TEXT,
    NO_LOCAL_SERVER,
    describe_error,
    error_sentence,
    missing_key_sentence,
)

__all__ = ["ERROR_TEXT", "NO_LOCAL_SERVER", "describe_error", "error_sentence", "missing_key_sentence"]
