"""The window's side of tools (issue 12): the inline approval prompt answers through
WindowAsker (by click and by key), tool calls show as folded blocks live and on reopen, the
tools switch emits the chosen servers/tools, and the views stay readable in light and dark.

Small real in-process parts (tests/support/tool_parts.py) stand in for the MCP host — the views
are never mocked.
"""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication

from tests.support.tool_parts import StatusBoard
from tests.ui.conftest import wait_until
from victor_gui.services.reply_types import ReplyEvent
from victor_gui.services.tool_types import (
    ApprovalAnswer,
    ApprovalRequest,
    McpServerStatus,
    ServerState,
    ToolCallRecord,
    ToolCallState,
)
from victor_gui.ui.tool_views import COLOURS, ApprovalPrompt, ToolCallBlock

pytestmark = pytest.mark.usefixtures("keep_running_when_closed")


REQUEST = ApprovalRequest("call-1", "time", "get_current_time", {"timezone": "Europe/Paris"})


@pytest.fixture
async def pane(qtbot, pool, store):  # type: ignore[no-untyped-def]
    from victor_gui.ui.chat_pane import ChatPane

    chat = ChatPane(pool, store)
    qtbot.addWidget(chat)
    chat.resize(800, 600)
    chat.show()
    yield chat
    await chat.aclose()


def _prompts(pane) -> list[ApprovalPrompt]:  # type: ignore[no-untyped-def]
    return [w for w in pane.transcript.items if isinstance(w, ApprovalPrompt)]


@pytest.mark.parametrize(("button", "answer"), [
    ("run_once_button", ApprovalAnswer.RUN_ONCE),
    ("always_tool_button", ApprovalAnswer.ALWAYS_TOOL),
    ("always_server_button", ApprovalAnswer.ALWAYS_SERVER),
    ("deny_button", ApprovalAnswer.DENY),
])
async def test_each_button_of_the_prompt_returns_its_answer(pane, button: str,
                                                            answer: ApprovalAnswer) -> None:
    asking = asyncio.ensure_future(pane.asker(REQUEST))
    await wait_until(lambda: _prompts(pane))
    prompt = _prompts(pane)[0]
    assert prompt.isVisible() and "get_current_time" in prompt.title.text() and "time" in prompt.title.text()
    assert '"timezone": "Europe/Paris"' in prompt.arguments_view.toPlainText()
    getattr(prompt, button).click()
    assert await asyncio.wait_for(asking, 2) is answer
    assert not _prompts(pane)  # answered: the prompt goes (the call's block shows what follows)


@pytest.mark.parametrize(("key", "answer"), [
    (Qt.Key.Key_Return, ApprovalAnswer.RUN_ONCE),
    (Qt.Key.Key_Enter, ApprovalAnswer.RUN_ONCE),
    (Qt.Key.Key_Escape, ApprovalAnswer.DENY),
])
async def test_enter_runs_once_and_esc_denies_from_the_keyboard(qtbot, pane, key: Qt.Key,
                                                                 answer: ApprovalAnswer) -> None:
    pane.activateWindow()
    asking = asyncio.ensure_future(pane.asker(REQUEST))
    await wait_until(lambda: _prompts(pane))
    prompt = _prompts(pane)[0]
    await wait_until(lambda: prompt.run_once_button.hasFocus())  # focus lands on Run once
    # Esc inside the chat pane is also its Stop shortcut: the prompt must get it first.
    stopped: list[bool] = []
    esc = [s for s in pane.findChildren(QShortcut) if s.key() == QKeySequence(Qt.Key.Key_Escape)]
    assert esc
    esc[0].activated.connect(lambda: stopped.append(True))
    qtbot.keyClick(prompt.arguments_view if key == Qt.Key.Key_Escape else prompt.run_once_button, key)
    assert await asyncio.wait_for(asking, 2) is answer
    assert not stopped


async def test_every_control_of_the_prompt_has_an_accessible_name_and_tab_reaches_the_buttons(pane) -> None:
    asking = asyncio.ensure_future(pane.asker(REQUEST))
    await wait_until(lambda: _prompts(pane))
    prompt = _prompts(pane)[0]
    buttons = (prompt.run_once_button, prompt.always_tool_button, prompt.always_server_button,
               prompt.deny_button)
    for w in (prompt, prompt.arguments_view, *buttons):
        assert w.accessibleName()
    assert all(b.focusPolicy() & Qt.FocusPolicy.TabFocus for b in buttons)
    asking.cancel()


async def test_stop_while_asking_removes_the_prompt(pane) -> None:
    asking = asyncio.ensure_future(pane.asker(REQUEST))
    await wait_until(lambda: _prompts(pane))
    asking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asking
    assert not _prompts(pane)


async def test_calls_of_one_turn_stack_one_prompt_each_answered_in_any_order(pane) -> None:
    first = asyncio.ensure_future(pane.asker(REQUEST))
    other = ApprovalRequest("call-2", "files", "read_file", {"path": "/etc/x"})
    second = asyncio.ensure_future(pane.asker(other))
    await wait_until(lambda: len(_prompts(pane)) == 2)
    a, b = _prompts(pane)
    assert (a.request.call_id, b.request.call_id) == ("call-1", "call-2")
    b.deny_button.click()
    assert await asyncio.wait_for(second, 2) is ApprovalAnswer.DENY
    assert not first.done()
    await wait_until(lambda: a.run_once_button.hasFocus() or not pane.isActiveWindow())
    a.always_server_button.click()
    assert await asyncio.wait_for(first, 2) is ApprovalAnswer.ALWAYS_SERVER


async def test_long_argument_is_folded_with_what_is_left_and_shown_in_full_on_request(pane) -> None:
    text = "x" * 1000
    asking = asyncio.ensure_future(pane.asker(ApprovalRequest("c", "files", "write", {"path": "a.txt",
                                                                                   "content": text})))
    await wait_until(lambda: _prompts(pane))
    prompt = _prompts(pane)[0]
    shown = prompt.arguments_view.toPlainText()
    assert "… (800 more characters)" in shown and text not in shown and '"path": "a.txt"' in shown
    assert prompt.folded and prompt.show_all_button.isVisible()
    prompt.show_all_button.click()
    assert text in prompt.arguments_view.toPlainText() and not prompt.folded
    assert prompt.arguments_view.maximumHeight() <= 260
    prompt.deny_button.click()
    assert await asyncio.wait_for(asking, 2) is ApprovalAnswer.DENY


def _record(state: ToolCallState, **kw) -> ToolCallRecord:  # type: ignore[no-untyped-def]
    return ToolCallRecord("call-1", "time", "get_current_time", {"timezone": "Europe/Paris"}, state, **kw)


async def test_live_tool_call_events_make_one_block_that_follows_the_state_and_unfolds(pane) -> None:
    for record in (_record(ToolCallState.WAITING), _record(ToolCallState.RUNNING, approved_by="run_once"),
                   _record(ToolCallState.DONE, result='{"datetime": "2026-12-06T23:00:00+01:00"}',
                           duration_s=0.4, approved_by="run_once")):
        pane._on_event(ReplyEvent("tool_call", 7, meta=record.to_meta() | {"result": record.result}))
    blocks = [w for w in pane.transcript.items if isinstance(w, ToolCallBlock)]
    assert len(blocks) == 1  # updated in place, not one block per state
    block = blocks[0]
    assert block.header.text() == "⚙ time · get_current_time — done in 0.4 s"
    assert block.state_label.text() == "✓" and "done" in block.state_label.accessibleName()
    await wait_until(block.isVisible)
    assert not block.body.isVisible() and not block.expanded  # folded
    block.header.click()
    assert block.body.isVisible() and block.expanded
    body = block.body.toPlainText()
    assert '"timezone": "Europe/Paris"' in body and "2026-12-06T23:00:00" in body and "run_once" in body
    assert block.body.maximumHeight() <= 260
    assert block.body.font().styleHint() == QFont.StyleHint.Monospace
    block.header.click()
    assert not block.body.isVisible()


@pytest.mark.parametrize(("state", "words"), [
    (ToolCallState.WAITING, "waiting for approval"), (ToolCallState.RUNNING, "running…"),
    (ToolCallState.ERROR, "failed after 60.0 s"), (ToolCallState.DENIED, "denied"),
    (ToolCallState.CANCELLED, "cancelled")])
def test_the_folded_line_says_each_state(qtbot, state: ToolCallState, words: str) -> None:
    block = ToolCallBlock(_record(state, duration_s=60.0))
    qtbot.addWidget(block)
    assert block.header.text() == f"⚙ time · get_current_time — {words}"


def test_a_huge_result_is_shown_capped(qtbot) -> None:
    block = ToolCallBlock(_record(ToolCallState.DONE, result="y" * 2_000_000, duration_s=1.0))
    qtbot.addWidget(block)
    block.set_expanded(True)
    text = block.body.toPlainText()
    assert len(text) < 25_000 and "(1980000 more characters not shown)" in text


async def test_stored_tool_messages_render_as_folded_blocks_when_the_chat_is_reopened(pane, store) -> None:
    conv = await store.create_conversation("tools")
    await store.add_message(conv.id, "user", "What time is it in Paris?")
    call = {"id": "call-1", "name": "get_current_time", "arguments": {"timezone": "Europe/Paris"}}
    await store.add_message(conv.id, "assistant", "", tool_calls=[call],
                            provider="llamacpp", model="tiny")
    done = _record(ToolCallState.DONE, duration_s=0.4, approved_by="rule:server")
    await store.add_message(conv.id, "tool", '{"datetime": "2026-12-06T23:00:00+01:00"}',
                            tool_call_id="call-1",                            meta={"tool": done.to_meta()})
    denied = ToolCallRecord("call-2", "files", "delete", {"path": "/"}, ToolCallState.DENIED)
    await store.add_message(conv.id, "tool", "The person denied this call.", tool_call_id="call-2",
                            meta={"tool": denied.to_meta()})
    await store.add_message(conv.id, "assistant", "It is 23:00 in Paris.", provider="llamacpp", model="tiny")
    await pane.open_conversation(conv.id)
    blocks = [w for w in pane.transcript.items if isinstance(w, ToolCallBlock)]
    assert [b.header.text() for b in blocks] == ["⚙ time · get_current_time — done in 0.4 s",
                                                 "⚙ files · delete — denied"]
    assert [v.role for v in pane.transcript.messages] == ["user", "assistant", "assistant"]  # no "tool" views
    assert pane.transcript.messages[1].tools_label.isHidden()  # its calls are the blocks, not listed twice
    blocks[0].set_expanded(True)
    assert "2026-12-06T23:00:00" in blocks[0].body.toPlainText()
    # In order, between the reply that asked and the one that answered.
    layout = pane.transcript._inner.layout()
    order = [layout.indexOf(w) for w in (pane.transcript.messages[1], blocks[0], blocks[1],
                                         pane.transcript.messages[2])]
    assert order == sorted(order)
    pane.new_chat()
    assert not pane.transcript.items  # a new chat leaves no block behind


async def test_the_tools_switch_lists_servers_with_states_and_emits_the_chosen_set(pane) -> None:
    board = StatusBoard([McpServerStatus("time", "stdio", ServerState.READY,
                                         tool_names=("get_current_time", "convert_time")),
                         McpServerStatus("web", "http", ServerState.FAILED, error="HTTP 401")])
    button = pane.tools_button
    chosen: list[object] = []
    pane.tools_changed.connect(chosen.append)
    button.set_source(board)
    assert button.text() == "Tools: off"
    texts = [a.text() for a in button.menu_.actions()]
    assert "time — ready" in texts and "web — failed" in texts
    button.actions_by_name["server:time"].trigger()
    assert chosen[-1] == {"time": None} and button.text() == "Tools: 1 server"
    button.rebuild_menu()
    tool = button.actions_by_name["tool:time:convert_time"]
    assert tool.isChecked()
    tool.trigger()  # off: only the other tool stays on
    assert chosen[-1] == {"time": ["get_current_time"]}
    board.set(McpServerStatus("web", "http", ServerState.READY, tool_names=("fetch",)))
    assert "web — ready" in [a.text() for a in button.menu_.actions()]  # followed live
    button.actions_by_name["server:web"].trigger()
    assert chosen[-1] == {"time": ["get_current_time"], "web": None}
    button.set_selection({})  # another conversation's stored choice: shown, not emitted
    assert button.text() == "Tools: off" and len(chosen) == 3


def _luminance(colour: QColor) -> float:
    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = channel(colour.redF()), channel(colour.greenF()), channel(colour.blueF())
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: QColor, b: QColor) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_block_and_prompt_text_is_readable_in_light_and_dark(qtbot, qapp, mode: str) -> None:
    from victor_gui.ui.theme import apply_theme

    apply_theme(mode)
    try:
        prompt = ApprovalPrompt(REQUEST)
        qtbot.addWidget(prompt)
        blocks = [ToolCallBlock(_record(state)) for state in ToolCallState]
        for b in blocks:
            qtbot.addWidget(b)
        c = {k: QColor(v) for k, v in COLOURS[mode].items()}
        # The widgets took this theme's colours (from the app palette, by themselves)...
        prompt.ensurePolished()
        assert COLOURS[mode]["prompt_bg"] in prompt.styleSheet()
        for b in blocks:
            b.ensurePolished()
            b.state_label.ensurePolished()
            assert b.state_label.palette().windowText().color() == c[b.record.state.value]
            assert COLOURS[mode]["block_bg"] in b.styleSheet()
        # ... and every text colour reads on its background.
        pairs = [("prompt_fg", "prompt_bg"), ("block_fg", "block_bg"), ("block_fg", "code_bg")]
        pairs += [(s.value, "block_bg") for s in ToolCallState]
        for fg, bg in pairs:
            assert contrast(c[fg], c[bg]) >= 4.5, (mode, fg, bg, contrast(c[fg], c[bg]))
        # The buttons use the palette's own text on button colours.
        palette = QApplication.palette()
        assert contrast(palette.buttonText().color(), palette.button().color()) >= 4.5
    finally:
        apply_theme("light")
