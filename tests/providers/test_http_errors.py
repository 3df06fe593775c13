"""Every dialect's error body and status mapped to the error type a person can act on."""

from __future__ import annotations

import email.utils
import json
import time

import httpx
import pytest

from victor_gui.errors import (
    BadRequestError,
    ContentFilterError,
    ContextLengthExceededError,
    InvalidResponseError,
    ModelLoadingError,
    ModelNotFoundError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)
from victor_gui.providers.http import classify_http_error, error_details, parse_json_body, transport_error


def _j(payload: object) -> str:
    return json.dumps(payload)


OPENAI = lambda msg, typ, code=None: _j({"error": {"message": msg, "type": typ, "param": None, "code": code}})  # noqa: E731
LLAMA = lambda status, msg, typ: _j({"error": {"code": status, "message": msg, "type": typ}})  # noqa: E731

CASES = [
    # status, body, expected type
    (401, OPENAI("Incorrect API key provided: sk-abc***", "invalid_request_error", "invalid_api_key"),
     ProviderAuthError),
    (403, _j({"error": {"type": "permission_error", "message": "no access"}}), ProviderAuthError),
    (401, _j({"error": "Unauthorized"}), ProviderAuthError),  # vLLM
    (401, LLAMA(401, "Invalid API Key", "authentication_error"), ProviderAuthError),  # llama.cpp
    (400, _j([{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                         "status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}}]),
     ProviderAuthError),  # Gemini
    (429, OPENAI("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
     ProviderAuthError),  # waiting cannot fix an empty account
    (429, OPENAI("Rate limit reached", "requests", "rate_limit_exceeded"), ProviderRateLimitError),
    (404, OPENAI("The model `gpt-9` does not exist", "invalid_request_error", "model_not_found"),
     ModelNotFoundError),
    (404, _j({"error": "model 'llama9' not found"}), ModelNotFoundError),  # Ollama
    (404, _j({"error": {"message": "The model `x` does not exist.", "type": "NotFoundError"}}),
     ModelNotFoundError),  # vLLM
    (404, _j({"detail": "Not Found"}), BadRequestError),  # wrong base path
    (404, LLAMA(404, "File Not Found", "not_found_error"), BadRequestError),
    (400, OPENAI("This model's maximum context length is 4096 tokens. However, you requested 5000 tokens",
                 "BadRequestError"), ContextLengthExceededError),  # vLLM
    (400, LLAMA(400, "request (5000 tokens) exceeds the available context size (4096 tokens), try "
                     "increasing it", "exceed_context_size_error"), ContextLengthExceededError),
    (400, _j({"error": "The number of tokens to keep from the initial prompt is greater than the context "
                       "length (n_keep: 13055>= n_ctx: 4096)."}), ContextLengthExceededError),  # LM Studio
    (400, _j({"error": "the input length exceeds the context length"}), ContextLengthExceededError),
    (400, _j({"type": "error", "error": {"type": "invalid_request_error",
                                         "message": "prompt is too long: 210000 tokens > 200000 maximum"}}),
     ContextLengthExceededError),  # Anthropic
    (400, OPENAI("context_length_exceeded", "invalid_request_error", "context_length_exceeded"),
     ContextLengthExceededError),
    (400, _j({"error": {"code": "content_filter", "message": "The response was filtered"}}),
     ContentFilterError),  # Azure
    (400, _j({"error": "registry.ollama.ai/library/gemma:2b does not support tools"}), BadRequestError),
    (422, _j({"detail": [{"loc": ["body", "model"], "msg": "field required"}]}), BadRequestError),
    (400, OPENAI("HTTP 500 was mentioned by the user", "invalid_request_error"), BadRequestError),
    (408, "Request Timeout", ProviderTimeoutError),
    (500, _j({"error": "llama runner process has terminated"}), ProviderServerError),
    (502, "bad gateway", ProviderServerError),
    (503, LLAMA(503, "Loading model", "unavailable_error"), ModelLoadingError),
    (503, LLAMA(503, "no slot available", "unavailable_error"), ProviderServerError),
    (503, _j({"error": "server busy, please try again.  maximum pending requests exceeded"}),
     ProviderServerError),  # Ollama queue full
    (529, _j({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
     ProviderServerError),  # Anthropic
    (501, LLAMA(501, "This server does not support metrics endpoint.", "not_supported_error"),
     BadRequestError),  # retrying a 501 cannot help
    (302, "", InvalidResponseError),
]


@pytest.mark.parametrize(("status", "body", "expected"), CASES)
def test_classify(status: int, body: str, expected: type[ProviderError]) -> None:
    error = classify_http_error(status, body, provider="p", model="m")
    assert type(error) is expected, error
    assert error.status_code == status and error.provider == "p" and error.model == "m"


def test_exact_type_not_just_subclass() -> None:
    # ModelLoadingError is a ProviderServerError; the loading case must be the narrower type.
    error = classify_http_error(503, LLAMA(503, "Loading model", "unavailable_error"), provider=None)
    assert isinstance(error, ModelLoadingError) and error.retryable


def test_message_is_readable_and_bounded() -> None:
    error = classify_http_error(400, OPENAI("max_tokens is too large", "invalid_request_error"), provider="x")
    assert error.message == "HTTP 400: max_tokens is too large"
    huge = classify_http_error(500, "x" * 100_000, provider="x")
    assert len(huge.message) <= 800


@pytest.mark.parametrize("status", [200, 404, 502, 503])
def test_html_pages_are_invalid_responses(status: int) -> None:
    page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    error = classify_http_error(status, page, provider="p")
    assert type(error) is InvalidResponseError and "HTML" in error.message
    by_header = classify_http_error(status, "<h1>login</h1>", provider="p", content_type="text/html")
    assert type(by_header) is InvalidResponseError


def test_retry_after_seconds_and_date_any_header_case() -> None:
    limited = classify_http_error(429, OPENAI("slow down", "rate_limit"), provider="p",
                                  headers={"Retry-After": "12"})
    assert isinstance(limited, ProviderRateLimitError) and limited.retry_after == 12.0
    date = email.utils.formatdate(time.time() + 20, usegmt=True)
    dated = classify_http_error(429, "", provider="p", headers=httpx.Headers({"retry-after": date}))
    assert dated.retry_after is not None and 18.0 <= dated.retry_after <= 20.5
    loading = classify_http_error(503, LLAMA(503, "Loading model", "unavailable_error"), provider="p",
                                  headers={"retry-after": "3"})
    assert loading.retry_after == 3.0
    assert classify_http_error(429, "", provider="p").retry_after is None


def test_error_details_dialects() -> None:
    assert error_details(LLAMA(400, "bad", "invalid_request_error")) == (
        "bad", "invalid_request_error", "400")
    assert error_details(_j({"error": "plain"})) == ("plain", None, None)
    assert error_details(_j({"object": "error", "message": "old vllm", "type": "BadRequestError",
                             "code": 400})) == ("old vllm", "BadRequestError", "400")
    assert error_details("not json at all") == ("not json at all", None, None)


def test_secrets_in_error_bodies_are_redacted() -> None:
    body = OPENAI("Incorrect API key provided: sk-proj-ABCDEFGHIJKLMNOPQRSTUV", "invalid_request_error")
    error = classify_http_error(401, body, provider="openai")
    assert "ABCDEFGHIJKLMNOP" not in str(error) and "sk-proj-***" in str(error)


def test_parse_json_body() -> None:
    assert parse_json_body(b'{"a": 1}', provider="p") == {"a": 1}
    with pytest.raises(InvalidResponseError):
        parse_json_body("<html><body>captive portal</body></html>", provider="p")
    with pytest.raises(InvalidResponseError):
        parse_json_body(b'{"a": ', provider="p", status=200)


def test_transport_errors_are_typed() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/x")
    assert isinstance(transport_error(httpx.ConnectError("refused", request=request), "p"),
                      ProviderConnectionError)
    assert isinstance(transport_error(httpx.ConnectTimeout("t", request=request), "p"),
                      ProviderConnectionError)
    assert isinstance(transport_error(httpx.ReadTimeout("t", request=request), "p"), ProviderTimeoutError)
    broken = transport_error(httpx.RemoteProtocolError("closed", request=request), "p", partial="abc")
    assert isinstance(broken, ProviderConnectionError) and broken.partial_content == "abc"
    assert isinstance(transport_error(ValueError("odd"), "p"), InvalidResponseError)
