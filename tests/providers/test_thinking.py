"""ThinkTagSplitter: inline reasoning split from the answer, whatever the chunking."""

from __future__ import annotations

import pytest

from victor_gui.providers.thinking import ThinkTagSplitter


def run(pieces: list[str], *, anywhere: bool = True) -> tuple[str, str]:
    splitter = ThinkTagSplitter(anywhere=anywhere)
    content, reasoning = "", ""
    for piece in pieces:
        c, r = splitter.feed(piece)
        content, reasoning = content + c, reasoning + r
    c, r = splitter.flush()
    return content + c, reasoning + r


TEXT = "<think>step one, then two</think>\n\nThe answer is 42."


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 100])
def test_any_chunking_gives_the_same_split(size: int) -> None:
    pieces = [TEXT[i : i + size] for i in range(0, len(TEXT), size)]
    assert run(pieces) == ("The answer is 42.", "step one, then two")


def test_tag_split_across_chunks_never_leaks() -> None:
    splitter = ThinkTagSplitter()
    outputs = [splitter.feed(p) for p in ["<thi", "nk>why", " not</th", "ink>ok"]]
    assert all("<" not in c and ">" not in c for c, _ in outputs)
    assert "".join(c for c, _ in outputs) == "ok"
    assert "".join(r for _, r in outputs) == "why not"


def test_held_back_text_is_released_when_it_is_not_a_tag() -> None:
    assert run(["a <th", "is is text"]) == ("a <this is text", "")


def test_start_only_mode_passes_text_that_merely_mentions_tags() -> None:
    assert run(["Use <think> tags ", "like </think> this"], anywhere=False) == (
        "Use <think> tags like </think> this",
        "",
    )


def test_start_only_mode_splits_a_leading_block_split_across_chunks() -> None:
    assert run(["  <th", "ink>plan</think>", "done"], anywhere=False) == ("done", "plan")


def test_deepseek_style_variant_tags() -> None:
    assert run(["<|begin_of_thinking|>hm<|end_of", "_thinking|>yes"]) == ("yes", "hm")


def test_unclosed_block_is_all_reasoning_at_flush() -> None:
    assert run(["<think>still going"]) == ("", "still going")


def test_stray_closing_tag_is_dropped() -> None:
    assert run(["reasoning leaked</think>\n\nAnswer"]) == ("reasoning leakedAnswer", "")


def test_empty_feed_and_flush_of_empty_splitter() -> None:
    splitter = ThinkTagSplitter(anywhere=False)
    assert splitter.feed("") == ("", "")
    assert splitter.flush() == ("", "")
    assert not splitter.inside


@pytest.mark.parametrize("anywhere", [True, False])
def test_a_stream_of_blanks_is_not_buffered_without_bound(anywhere: bool) -> None:
    """Issue 16: leading whitespace was held (and copied whole on every piece) while waiting
    to see whether a <think> tag follows; 4 MiB of spaces in 1 KiB pieces was quadratic."""
    splitter = ThinkTagSplitter(anywhere=anywhere)
    out: list[str] = []
    for _ in range(4096):
        content, reasoning = splitter.feed(" " * 1024)
        out.append(content)
        assert not reasoning
        assert len(splitter._buf) <= 64 * 1024
    content, _ = splitter.feed("<think>late</think>answer")
    out.append(content)
    rest, _ = splitter.flush()
    out.append(rest)
    text = "".join(out)
    assert text.startswith(" " * (4096 * 1024)) and text.endswith("answer")
