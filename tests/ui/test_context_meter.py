"""The context meter under the input, against a real simulator's window: it reads the window the
llama.cpp simulator reports, counts the draft as you type and the stored history after a reply,
turns amber from 80 % of what fits before trimming and red when trimming will happen."""

from __future__ import annotations

from tests.ui.conftest import wait_until
from tests.ui.test_chat_store import _send
from victor_gui.services.context_trim import prompt_budget
from victor_gui.services.context_window import AMBER_AT, draft_tokens

N_CTX = 2048


def _draft_of(tokens: int) -> str:
    """A draft the estimate counts as at least ``tokens`` (and not many more)."""
    text = "word "
    while draft_tokens(text) < tokens:
        text += "word "
    return text


async def test_meter_turns_amber_then_red_against_the_servers_window(qtbot, sim, window) -> None:
    sim.options["n_ctx"] = N_CTX
    chat = window.chat
    meter = chat.meter
    await chat.start()
    await wait_until(lambda: meter.isVisible() and meter.window_tokens == N_CTX)
    assert meter.window_source == "as the server reports"
    budget = prompt_budget(N_CTX, 4096)
    assert meter.use is not None and meter.use.budget == budget and meter.level == "ok"

    amber = _draft_of(int(budget * AMBER_AT) + 1)
    qtbot.keyClicks(chat.input, amber[:-20])  # typed: the meter follows after the debounce
    chat.input.setPlainText(amber)
    await wait_until(lambda: meter.level == "amber")
    assert meter.label.text() == f"Context: {draft_tokens(amber):,} / {N_CTX:,} tokens"
    assert "#d08700" in meter.bar.styleSheet()

    chat.input.setPlainText(_draft_of(budget + 1))
    await wait_until(lambda: meter.level == "red")
    assert "will be trimmed" in meter.toolTip()

    chat.input.setPlainText("short")
    await wait_until(lambda: meter.level == "ok")
    assert meter.bar.styleSheet() == ""


async def test_meter_counts_the_stored_history_after_a_reply(sim, window, store) -> None:
    sim.options["n_ctx"] = N_CTX
    chat = window.chat
    await chat.start()
    await wait_until(lambda: chat.meter.window_tokens == N_CTX)
    await _send(chat, "a question of some length " * 20)
    await wait_until(lambda: chat.meter.history > draft_tokens("a question of some length " * 20))
    # ... and the re-read the reply's end scheduled is done (it reads in worker threads, so an
    # earlier one, from when the question was stored, may be what met the line above).
    meter = chat.meter
    await wait_until(lambda: not meter.timer.isActive() and not meter._stale
                     and (meter.refreshing is None or meter.refreshing.done()))
    before = chat.meter.history
    # The chat's own context length wins over the server's window.
    await chat.apply_params("", {"temperature": 0.7, "context_length": 1024})
    chat.meter.schedule()
    await wait_until(lambda: chat.meter.window_tokens == 1024)
    assert chat.meter.window_source == "this chat's setting" and chat.meter.history == before


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_meter_figure_is_readable_in_both_themes(qapp) -> None:
    from victor_gui.ui.context_meter import TEXT_COLOURS
    from victor_gui.ui.theme import tokens_for

    backgrounds = {dark: tokens_for(dark).window for dark in (False, True)}
    for (level, dark), colour in TEXT_COLOURS.items():
        a, b = sorted((_luminance(colour), _luminance(backgrounds[dark])), reverse=True)
        ratio = (a + 0.05) / (b + 0.05)
        assert ratio >= 4.5, (level, "dark" if dark else "light", colour, round(ratio, 2))


async def test_meter_figure_follows_a_theme_change(qtbot, sim, window) -> None:
    from victor_gui.ui.context_meter import TEXT_COLOURS
    from victor_gui.ui.theme import apply_theme

    sim.options["n_ctx"] = N_CTX
    chat = window.chat
    await chat.start()
    await wait_until(lambda: chat.meter.window_tokens == N_CTX)
    chat.input.setPlainText(_draft_of(int(prompt_budget(N_CTX, 4096) * AMBER_AT) + 1))
    await wait_until(lambda: chat.meter.level == "amber")
    try:
        apply_theme("dark")
        await wait_until(lambda: TEXT_COLOURS[("amber", True)] in chat.meter.label.styleSheet())
        apply_theme("light")
        await wait_until(lambda: TEXT_COLOURS[("amber", False)] in chat.meter.label.styleSheet())
    finally:
        apply_theme("light")
