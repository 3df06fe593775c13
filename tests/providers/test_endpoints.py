"""Local endpoint discovery from the seed's environment variables."""

from __future__ import annotations

import pytest

from victor_gui.providers.endpoints import candidate_base_urls, host_to_base_url, parse_ollama_host


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "http://127.0.0.1:11434"),
        ("example.com", "http://example.com:11434"),  # no scheme, no port -> 11434
        ("example.com:7000", "http://example.com:7000"),
        ("http://example.com", "http://example.com:80"),  # scheme without port -> 80
        ("https://example.com", "https://example.com:443"),  # -> 443
        ("HTTPS://Example.com:8443", "https://Example.com:8443"),
        ("tcp://box", "tcp://box:11434"),  # other schemes keep Ollama's default
        ("0.0.0.0", "http://127.0.0.1:11434"),  # bound everywhere -> loopback
        ("0.0.0.0:8080", "http://127.0.0.1:8080"),
        (":11500", "http://127.0.0.1:11500"),
        ("::", "http://[::1]:11434"),
        ("[::]:9000", "http://[::1]:9000"),
        ("::1", "http://[::1]:11434"),  # bare IPv6
        ("[::1]", "http://[::1]:11434"),
        ("[fe80::1]:1234", "http://[fe80::1]:1234"),
        ("http://box:5000/ollama/", "http://box:5000/ollama"),  # a path behind a proxy
        ("box/prefix", "http://box:11434/prefix"),
        ("box:99999", "http://box:11434"),  # out-of-range port -> default
        ("box:abc", "http://box:11434"),
        ('"10.0.0.2:7000"', "http://10.0.0.2:7000"),  # quotes from a .env file
        ("  10.0.0.2  ", "http://10.0.0.2:11434"),
        ("ollama.com", "https://ollama.com:443"),
    ],
)
def test_parse_ollama_host(value: str, expected: str) -> None:
    assert parse_ollama_host(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:1234", "http://127.0.0.1:1234/v1"),
        ("http://localhost:1234/v1/", "http://localhost:1234/v1"),  # /v1 not doubled
        ("https://gpu-box.lan:8000", "https://gpu-box.lan:8000/v1"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080/v1"),
        ("[::]:8000", "http://[::1]:8000/v1"),
        ("'box:1234'", "http://box:1234/v1"),
        ("http://box:8080/proxy", "http://box:8080/proxy/v1"),
    ],
)
def test_host_to_base_url(value: str, expected: str) -> None:
    assert host_to_base_url(value) == expected


def test_host_to_base_url_other_path() -> None:
    assert host_to_base_url("box:11434", path="") == "http://box:11434"


def test_candidates_explicit_wins_outright() -> None:
    env = {"OLLAMA_HOST": "a:1", "OLLAMA_ENDPOINTS": "b:2"}
    assert candidate_base_urls("ollama", "http://127.0.0.1:11434", explicit="http://x:3/", env=env) == [
        "http://x:3"]


def test_candidates_ollama_order_and_dedup() -> None:
    env = {"OLLAMA_ENDPOINTS": "http://192.168.1.100:11434, localhost:11434,,", "OLLAMA_HOST": "0.0.0.0"}
    assert candidate_base_urls("ollama", "http://127.0.0.1:11434", env=env) == [
        "http://192.168.1.100:11434", "http://localhost:11434", "http://127.0.0.1:11434"]


def test_candidates_lmstudio_vllm_llamacpp() -> None:
    env = {"VICTOR_LM_STUDIO_HOST": "127.0.0.1:1234", "LMSTUDIO_ENDPOINTS": "http://pc:1234,127.0.0.1:1234",
           "VICTOR_VLLM_HOST": "gpu:8000", "VICTOR_LLAMACPP_HOST": "http://cpu:8081/v1"}
    assert candidate_base_urls("lmstudio", "http://127.0.0.1:1234/v1", env=env) == [
        "http://127.0.0.1:1234/v1", "http://pc:1234/v1"]
    assert candidate_base_urls("vllm", "http://127.0.0.1:8000/v1", env=env) == [
        "http://gpu:8000/v1", "http://127.0.0.1:8000/v1"]
    # Aliases find the same variables.
    assert candidate_base_urls("llama.cpp", "http://127.0.0.1:8080/v1", env=env) == [
        "http://cpu:8081/v1", "http://127.0.0.1:8080/v1"]


def test_candidates_without_env_is_the_default() -> None:
    assert candidate_base_urls("ollama", "http://127.0.0.1:11434", env={}) == ["http://127.0.0.1:11434"]
    assert candidate_base_urls("openai", None, env={"OLLAMA_HOST": "x"}) == []
