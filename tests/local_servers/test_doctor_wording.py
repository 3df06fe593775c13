"""``victor-gui doctor`` never calls a port "up" when its API does not answer in the API's JSON
(issue 16): a web page, a proxy's login page behind Ollama's root text, a JSON reply of the
wrong shape. The doctor runs as a real subprocess against our own loopback servers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.local_servers.test_cli import run_cli
from tests.servers.hostile import Route, reply, serving

PAGE = "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Ollama</body></html>"
HTML = reply(PAGE, Content_Type="text/html; charset=utf-8")

CASES: dict[str, tuple[dict[str, Route], dict[str, Any], str, str]] = {
    # A single-page app: the same HTML, 200, on every path.
    "html-everywhere": ({}, {"fallback": HTML}, "not an inference server",
                        "is held by another program (not an inference server: it serves a web page)"),
    # Ollama's root text, but its API behind a login page.
    "ollama-root-html-api": ({"/": reply("Ollama is running")}, {"fallback": HTML}, "error",
                             "Ollama /api/version: the reply is not valid JSON"),
    # Ollama's root text and JSON, but not the API's: no version (a KeyError in the fingerprint
    # once the HTML fix was in), models not a list.
    "ollama-wrong-json": ({"/": reply("Ollama is running"), "/api/version": reply({"status": "ok"})},
                          {"fallback": reply({"models": "none"})}, "error",
                          "Ollama /api/version: version is missing"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_doctor_does_not_call_a_non_api_port_up(case: str) -> None:
    routes, options, state, diagnosis = CASES[case]
    with serving(routes, **options) as server:
        result = run_cli("doctor", "--no-defaults", "--no-scan", env={"OLLAMA_HOST": server.url})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith(server.url))
    assert f" {state} " in lines[row] + " ", result.stdout
    assert diagnosis in lines[row + 1], result.stdout
    assert "is up" not in result.stdout and " up " not in lines[row], result.stdout
