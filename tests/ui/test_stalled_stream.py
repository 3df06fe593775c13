"""A stalled stream does not look like a live one (issue 14): after a few seconds with nothing
new the reply's stats line says it is waiting for the server, and for how long; text arriving
again, or the end, clears it. Driven through the window against the llama.cpp simulator."""

from __future__ import annotations

import asyncio

import pytest

from tests.servers.base import Script
from tests.ui.conftest import wait_until
from victor_gui.ui import reply_stream


async def test_a_stall_says_waiting_for_the_server(sim, window, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reply_stream, "STALL_AFTER_S", 1.0)
    sim.script(Script(text="First half. Second half.", pieces=2, delay_s=2.6))
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("go")
    chat.send()
    reply = chat.transcript.messages[-1]
    await wait_until(lambda: "First half." in reply.text)
    await wait_until(lambda: "waiting for the server… (1 s)" in reply.stats_label.text())
    await wait_until(lambda: "waiting for the server… (2 s)" in reply.stats_label.text())
    await wait_until(lambda: not chat.running, limit_s=10)
    assert reply.text.startswith("First half. Second half.")
    assert "waiting" not in reply.stats_label.text()


async def test_a_live_stream_never_says_waiting(sim, window, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reply_stream, "STALL_AFTER_S", 1.0)
    sim.script(Script(text="x" * 60, pieces=30, delay_s=0.1))
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("go")
    chat.send()
    reply = chat.transcript.messages[-1]
    seen: list[str] = []
    while chat.running:
        seen.append(reply.stats_label.text())
        await asyncio.sleep(0.05)
    assert len(seen) > 20 and not any("waiting" in s for s in seen)
