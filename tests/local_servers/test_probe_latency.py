"""Probe latency is the server's, not our queue's (issue 16, finding 10).

500 Ollama endpoints answering in 100 ms (one server process, tests/servers/many_ollamas.py)
probed in one sweep through the app's probe client (64 connections). Before the fix the clock
started before the request waited for one of those connections: 196 of the 500 came back
"degraded: slow" (worst 4.7 s) on the 2-core test machine; after, all 500 are up (worst 0.47 s).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from victor_gui.servers.discovery import discover
from victor_gui.servers.status import EndpointState, ServerKind

ROOT = Path(__file__).resolve().parents[2]
COUNT = 500
SERVER_S = 0.1  # each answer takes the server 100 ms: fast, but 2,000 of them queue on 64 connections


@pytest.fixture
def many_ollamas() -> Iterator[list[str]]:
    command = [sys.executable, "-m", "tests.servers.many_ollamas", str(COUNT), str(SERVER_S)]
    proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    urls = []
    try:
        for line in proc.stdout:
            if line.strip() == "ready":
                break
            urls.append(line.strip())
        assert len(urls) == COUNT
        yield urls
    finally:
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.timeout(120)
async def test_500_fast_endpoints_are_all_up(client: httpx.AsyncClient, many_ollamas: list[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("victor_gui.servers.probe.DEFAULT_SLOW_S", 1.0)  # the app's threshold
    start = time.perf_counter()
    found = await discover(client, many_ollamas, env={}, include_defaults=False, scan_processes=False)
    took = time.perf_counter() - start
    states = Counter((s.kind, s.state, s.reason) for s in found)
    worst = max(s.latency_s or 0.0 for s in found)
    print(f"\n{COUNT} endpoints in {took:.1f} s; worst latency {worst * 1000:.0f} ms; {dict(states)}")
    assert states == Counter({(ServerKind.OLLAMA, EndpointState.UP, "ok"): COUNT}), states
    assert worst < 1.0
