"""The compare view in the real window against real simulators on 127.0.0.1: two servers stream
side by side with stats, one endpoint serves one pane at a time, Esc stops all, and "Continue
with this one" hands the history to the main chat."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt

from tests.servers.base import Script, SimServer
from tests.support.timed import make_timed, overlaps
from tests.ui.conftest import stored_messages, wait_until
from victor_gui.services.generation import ReplyStatus

# Eight pieces, 40 ms apart: a reply takes ~0.3 s, long enough to see overlap (or its absence).
TEXT = "alpha beta gamma delta epsilon zeta eta theta "
SLACK = 0.04  # the server thread may note a reply's end just after the client read it


def paced(repeat: int = 0, text: str = TEXT, pieces: int = 8, delay_s: float = 0.04) -> Script:
    return Script(text=text, pieces=pieces, delay_s=delay_s, repeat=repeat)


@pytest.fixture
def sims(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SimServer, SimServer]]:
    """A llama-server and a vLLM simulator, found by the app as its local servers."""
    with make_timed("llamacpp") as llama, make_timed("vllm") as vllm:
        monkeypatch.setenv("VICTOR_LLAMACPP_HOST", f"127.0.0.1:{llama.port}")
        monkeypatch.setenv("VICTOR_VLLM_HOST", f"127.0.0.1:{vllm.port}")
        yield llama, vllm


async def spans(server: SimServer, n: int) -> list[tuple[float, float]]:
    await wait_until(lambda: len(server.chat_spans) >= n)  # type: ignore[attr-defined]
    return sorted(server.chat_spans)[:n]  # type: ignore[attr-defined]


async def open_compare(window, qtbot, providers: list[str]):  # type: ignore[no-untyped-def]
    """Start the chat, press Ctrl+\\ (and again for each extra pane), choose each provider."""
    await window.chat.start()
    await wait_until(lambda: window.chat.model_combo.count() > 0)
    compare = window.compare.view
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Backslash, Qt.KeyboardModifier.ControlModifier)
    assert compare.isVisible() and not window.chat.isVisible()
    assert len(compare.panes) == 2
    while len(compare.panes) < len(providers):
        qtbot.keyClick(compare.input, Qt.Key.Key_Backslash, Qt.KeyboardModifier.ControlModifier)
    for pane, name in zip(compare.panes, providers, strict=True):
        if pane.picker.current_choice().name != name:
            pane.picker.select_provider(name)
        await wait_until(lambda p=pane, n=name: p.picker.current_choice().name == n
                         and p.picker.current_model() == "sim-model")
    return compare


def send_all(compare, qtbot, text: str = "Name eight letters") -> None:  # type: ignore[no-untyped-def]
    compare.input.setPlainText(text)
    qtbot.keyClick(compare.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


async def test_two_servers_stream_side_by_side_with_stats(sims, window, qtbot) -> None:
    llama, vllm = sims
    llama.script(paced())
    vllm.script(paced())
    compare = await open_compare(window, qtbot, ["llamacpp", "vllm"])
    send_all(compare, qtbot)
    assert compare.running and not compare.send_button.isEnabled() and compare.stop_button.isEnabled()
    views = [pane.transcript.messages[-1] for pane in compare.panes]
    # Both show text while both are still streaming.
    await wait_until(lambda: all(v.text for v in views) and all(p.slot.running for p in compare.panes))
    await wait_until(lambda: not compare.running)
    (one,), (other,) = await spans(llama, 1), await spans(vllm, 1)
    assert overlaps(one, other)  # different endpoints run in parallel
    for pane, view in zip(compare.panes, views, strict=True):
        assert view.text == TEXT
        result = pane.result_label.text()
        assert "TTFT" in result and "tok/s" in result and "8 tokens" in result and "free" in result
        assert view.stats_label.text() == f"sim-model · {result}"
        assert [m.role for m in pane.slot.history] == ["user", "assistant"]
        assert pane.continue_button.isEnabled()
    assert compare.send_button.isEnabled() and not compare.stop_button.isEnabled()


async def test_same_endpoint_runs_one_pane_at_a_time(sims, window, qtbot) -> None:
    llama, vllm = sims
    llama.script(paced(repeat=1))
    vllm.script(paced())
    compare = await open_compare(window, qtbot, ["llamacpp", "llamacpp", "vllm"])
    send_all(compare, qtbot)
    second = compare.panes[1]
    await wait_until(lambda: "Waiting" in second.result_label.text())
    assert "one request at a time" in second.result_label.text()
    await wait_until(lambda: not compare.running)
    a, b = await spans(llama, 2)
    (c,) = await spans(vllm, 1)
    assert b[0] >= a[1] - SLACK and a[1] - a[0] > 4 * SLACK  # llama.cpp: strictly one after the other
    assert overlaps(a, c)  # while vLLM ran alongside the first
    assert all(p.transcript.messages[-1].text == TEXT for p in compare.panes)


async def test_escape_stops_every_pane(sims, window, qtbot) -> None:
    llama, vllm = sims
    long = "word " * 300
    llama.script(paced(text=long, pieces=300, delay_s=0.01))
    vllm.script(paced(text=long, pieces=300, delay_s=0.01))
    compare = await open_compare(window, qtbot, ["llamacpp", "vllm", "llamacpp"])
    send_all(compare, qtbot)
    views = [pane.transcript.messages[-1] for pane in compare.panes]
    await wait_until(lambda: len(views[0].text) > 10 and len(views[1].text) > 10)
    qtbot.keyClick(compare.input, Qt.Key.Key_Escape)
    await wait_until(lambda: not compare.running)
    for pane in compare.panes[:2]:
        assert pane.slot.state.status is ReplyStatus.INTERRUPTED
        assert "stopped" in pane.result_label.text()
    assert 10 < len(views[0].text) < len(long)
    third = compare.panes[2]
    assert third.slot.generation is None and "before it was sent" in third.result_label.text()
    assert len(llama.chat_requests()) == 1  # the queued pane never sent
    assert await asyncio.to_thread(llama.disconnected.wait, 5)
    assert compare.send_button.isEnabled()


async def test_continue_with_this_one_moves_the_history(sims, window, qtbot) -> None:
    llama, vllm = sims
    llama.script(Script(text="From llama."))
    vllm.script(Script(text="From vLLM.", prompt_tokens=9), Script(text="Follow-up answer."))
    compare = await open_compare(window, qtbot, ["llamacpp", "vllm"])
    send_all(compare, qtbot, "Hello both")
    await wait_until(lambda: not compare.running)
    compare.panes[1].continue_button.click()
    chat = window.chat
    assert chat.isVisible() and not compare.isVisible()
    # Saved as a new stored conversation, with the reply's figures, and opened in the chat.
    await wait_until(lambda: chat.conversation_id is not None
                     and [v.text for v in chat.transcript.messages] == ["Hello both", "From vLLM."])
    rows = await stored_messages(window)
    assert [(r.role, r.content) for r in rows] == [("user", "Hello both"), ("assistant", "From vLLM.")]
    reply = rows[1]
    assert (reply.provider, reply.model, reply.prompt_tokens, reply.cost) == ("vllm", "sim-model", 9, 0.0)
    # One row, the chat's: the empty list's "No saved chats yet" placeholder is a row too, so
    # the count alone passed before the list refreshed (seen in the Windows widget run).
    listed = window.conversations.list
    await wait_until(lambda: listed.count() == 1 and "Hello both" in listed.item(0).text())
    assert chat.current_choice().name == "vllm"
    await wait_until(lambda: chat.model_combo.currentText() == "sim-model")
    # The conversation goes on with vLLM, the whole history sent.
    chat.input.setPlainText("And then?")
    chat.send()
    await wait_until(lambda: chat.transcript.messages[-1].text == "Follow-up answer." and not chat.running)
    sent = vllm.chat_requests()[-1].body["messages"]
    assert [m["content"] for m in sent] == ["Hello both", "From vLLM.", "And then?"]
    assert len(llama.chat_requests()) == 1  # nothing more went to the other pane's server
    assert [r.role for r in await stored_messages(window)] == ["user", "assistant", "user", "assistant"]


async def test_panes_are_added_up_to_four_and_closed(sims, window, qtbot) -> None:
    compare = await open_compare(window, qtbot, ["llamacpp", "vllm"])
    for _ in range(3):
        qtbot.keyClick(compare.input, Qt.Key.Key_Backslash, Qt.KeyboardModifier.ControlModifier)
    assert len(compare.panes) == 4 and not compare.add_button.isEnabled()
    assert "At most 4" in compare.status_label.text()
    assert compare.panes[3].picker.current_choice().name == "vllm"  # copies the pane before it
    compare.panes[0].close_button.click()
    assert len(compare.panes) == 3 and compare.add_button.isEnabled()
    assert len(compare.session.slots) == 3
    compare.panes[0].close_button.click()
    compare.panes[0].close_button.click()  # one left: back to the chat
    assert not compare.isVisible() and window.chat.isVisible()


async def test_a_failed_pane_says_why_and_retries_alone(sims, window, qtbot) -> None:
    from tests.servers.base import Fault
    from victor_gui.errors import ProviderAuthError
    from victor_gui.ui.error_text import ERROR_TEXT

    llama, vllm = sims
    llama.script(Script(fault=Fault.UNAUTHORIZED), Script(text="Second time lucky."))
    vllm.script(Script(text="Fine here."))
    compare = await open_compare(window, qtbot, ["llamacpp", "vllm"])
    send_all(compare, qtbot, "hi")
    await wait_until(lambda: not compare.running)
    left, right = compare.panes
    failed = left.transcript.messages[-1]
    assert ERROR_TEXT[ProviderAuthError] in failed.error_label.text()
    assert left.slot.state.status is ReplyStatus.ERROR and right.transcript.messages[-1].text == "Fine here."
    failed.retry_button.click()
    await wait_until(lambda: left.transcript.messages[-1] is not failed and not compare.running)
    assert left.transcript.messages[-1].text == "Second time lucky."
    assert [m.role for m in left.slot.history] == ["user", "assistant"]
    assert len(vllm.chat_requests()) == 1  # the other pane was left alone
