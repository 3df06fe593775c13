"""Secrets never survive redact(): credential shapes and registered values."""

from __future__ import annotations

import pytest

from victor_gui.core.redact import forget_secrets, redact, register_secret
from victor_gui.errors import ProviderError


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("Authorization: Bearer abcdef123456", "abcdef123456", "Bearer ***"),
        ('{"authorization": "Bearer eyJhbGciOi.payload.sig"}', "eyJhbGciOi", "Bearer ***"),
        ("key sk-proj-AbCdEfGhIjKlMnOp used", "AbCdEfGhIjKlMnOp", "sk-proj-***"),
        ("sk-ant-api03-AAAABBBBCCCCDDDD", "AAAABBBBCCCCDDDD", "sk-ant-***"),
        ("sk-or-v1-0123456789abcdef", "0123456789abcdef", "sk-or-***"),
        ("plain sk-0123456789abcdef", "0123456789abcdef", "sk-***"),
        ("groq gsk_ABCDEFGH12345678", "ABCDEFGH12345678", "gsk_***"),
        ("xai-ABCDEFGH12345678", "ABCDEFGH12345678", "xai-***"),
        ("fw_ABCDEFGH12345678", "ABCDEFGH12345678", "fw_***"),
        ("r8_ABCDEFGH12345678", "ABCDEFGH12345678", "r8_***"),
        ("token hf_ABCDEFGH12345678", "ABCDEFGH12345678", "hf_***"),
        ("csk-ABCDEFGH12345678", "ABCDEFGH12345678", "csk-***"),
        ("AIzaSyABCDEFGH12345678", "SyABCDEFGH12345678", "AIza***"),
        ("https://x/v1beta/models?key=AIzaSecret123&alt=sse", "Secret123", "?key=***&alt=sse"),
        ("GET /x?api_key=topsecret99", "topsecret99", "?api_key=***"),
        ("x-api-key: abcdefghijk", "abcdefghijk", "x-api-key: ***"),
        ('{"api-key": "azurekey123456"}', "azurekey123456", '"api-key": "***"'),
        ("x-goog-api-key: googsecret1", "googsecret1", "api-key: ***"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "Authorization: ***"),
        ("aws AKIAABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOP", "AKIA***"),
        ("GET http://alice:hunter2pw@10.0.0.5:8000/v1/models", "hunter2pw", "http://***@10.0.0.5:8000/v1"),
        ("url='https://tok3n@gw.example.org/v1'", "tok3n", "https://***@gw.example.org/v1"),
        ("box (HTTP://Bob:p%40ss@box.lan) down", "p%40ss", "HTTP://***@box.lan"),
    ],
)
def test_patterns(text: str, secret: str, kept: str) -> None:
    out = redact(text)
    assert secret not in out and kept in out


def test_ordinary_text_is_untouched() -> None:
    text = "The model sk-eleton answered in 12 s; tokens=40; Bearer is a word; key=short"
    assert redact(text).startswith("The model sk-eleton answered in 12 s; tokens=40; Bearer is a word")
    assert redact("") == ""


def test_urls_without_credentials_are_untouched() -> None:
    text = "see https://host.example/a?mail=a@b.c and http://10.0.0.2:8000/v1 or mailto:x@y.z"
    assert redact(text) == text


def test_registered_secrets_of_any_shape() -> None:
    register_secret("mistralKEY0987654321")
    register_secret("a1b2c3")
    register_secret("short")  # under 6 chars: too likely to mask ordinary words
    register_secret(None)
    out = redact("auth failed for mistralKEY0987654321 and a1b2c3 (short)")
    assert out == "auth failed for *** and *** (short)"
    forget_secrets()
    assert "a1b2c3" in redact("a1b2c3")


def test_longer_secret_masked_before_its_prefix() -> None:
    register_secret("abcdef")
    register_secret("abcdefghijkl")
    assert redact("x abcdefghijkl y") == "x *** y"


def test_errors_pass_through_redact() -> None:
    register_secret("zzsecretzz99")
    error = ProviderError("upstream echoed zzsecretzz99 with Bearer tok_1234567", "p")
    assert "zzsecretzz99" not in str(error) and "tok_1234567" not in str(error)
    assert "zzsecretzz99" not in error.message


def test_url_password_never_reaches_a_log_line_or_an_error_text() -> None:
    # Before: http://user:pass@host went into the log, the database and the JSON export as is.
    import io
    import logging

    from victor_gui.core.logging_setup import RedactingFilter

    url = "http://alice:s3cretpass@10.1.2.3:8000/v1"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.redact.url")
    logger.addHandler(handler)
    try:
        logger.warning("probe of %s failed", url)
    finally:
        logger.removeHandler(handler)
    assert "s3cretpass" not in stream.getvalue() and "alice" not in stream.getvalue()
    assert "http://***@10.1.2.3:8000/v1" in stream.getvalue()
    error = ProviderError(f"connection to {url} refused", "box")
    assert "s3cretpass" not in str(error) and "s3cretpass" not in error.message
