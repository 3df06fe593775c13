"""Reply text and tool arguments are assembled in linear time, and bounded (issue 16, finding 5).

Before: ``state.content += delta`` and ``slot["arguments"] += piece`` copied the whole text on
every piece (an attribute or a dict value gets no in-place concatenation), so 20 MB of tool
arguments in 1 KiB pieces took minutes. The same pieces now go through the real OpenAI stream
assembler and :class:`Generation` in a small multiple of a plain ``"".join`` of them: a ratio,
so a slow machine does not fail it but quadratic growth does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from victor_gui.errors import InvalidResponseError
from victor_gui.providers.protocols.openai_stream import StreamAssembler
from victor_gui.providers.types import MAX_TOOL_ARGUMENT_CHARS
from victor_gui.services.generation import Generation, ReplyStatus

PIECE = "x" * 1023 + "é"  # 1 KiB of text, not all ASCII
# Per-piece work (JSON-shaped events, pydantic chunks) costs ~20-400x a bare join here (measured);
# growth by copying cost over 10,000x at 8 MiB (117 s for what a join does in ~10 ms).
MAX_RATIO = 1500


class _Named:
    name = "bench"


def _content_event(i: int) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": PIECE}}]}


def _tool_event(i: int) -> dict[str, Any]:
    fn = {"name": "write", "arguments": PIECE} if i == 0 else {"arguments": PIECE}
    return {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": fn}]}}]}


def _assemble(events: list[dict[str, Any]]) -> tuple[Generation, float]:
    asm = StreamAssembler(provider="bench", model="m", think_anywhere=False)
    gen = Generation(_Named(), [], model="m")  # type: ignore[arg-type]  # only its name is read
    started = time.perf_counter()
    for event in events:
        for chunk in asm.feed(event):
            gen._apply(chunk)
    gen._apply(asm.final_chunk())
    return gen, time.perf_counter() - started


def _join_baseline(count: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        "".join(PIECE for _ in range(count))
        best = min(best, time.perf_counter() - started)
    return max(best, 1e-4)


def _ratio(make: Callable[[int], dict[str, Any]], count: int) -> tuple[Generation, float]:
    events = [make(i) for i in range(count)]
    gen, took = _assemble(events)
    return gen, took / _join_baseline(count)


def test_twenty_megabytes_of_content_assemble_linearly() -> None:
    count = 20 * 1024  # 20 MiB of text in 1 KiB pieces
    gen, ratio = _ratio(_content_event, count)
    assert gen.state.content == PIECE * count
    assert ratio < MAX_RATIO, f"assembly took {ratio:.0f}x a join of the same pieces"


def test_tool_arguments_just_under_the_cap_assemble_linearly() -> None:
    count = MAX_TOOL_ARGUMENT_CHARS // len(PIECE) - 1
    gen, ratio = _ratio(_tool_event, count)
    assert gen.state.partial_tool_calls[0].arguments == PIECE * count
    assert gen.state.tool_calls[0].arguments == {"_raw": PIECE * count}
    assert ratio < MAX_RATIO, f"assembly took {ratio:.0f}x a join of the same pieces"


def test_twenty_megabytes_of_tool_arguments_end_with_a_clear_error() -> None:
    events = [_tool_event(i) for i in range(20 * 1024)]
    asm = StreamAssembler(provider="bench", model="m", think_anywhere=False)
    gen = Generation(_Named(), [], model="m")  # type: ignore[arg-type]
    fed = 0
    try:
        for event in events:
            for chunk in asm.feed(event):
                gen._apply(chunk)
            fed += 1
    except InvalidResponseError as exc:
        error: InvalidResponseError | None = exc
    else:
        error = None
    assert error is not None and "tool call's arguments exceeded 8 MiB" in str(error)
    # Stopped as soon as the arguments passed the cap, not after reading all 20 MB.
    assert fed == MAX_TOOL_ARGUMENT_CHARS // len(PIECE)
    assert gen.state.status is not ReplyStatus.DONE


def test_a_reply_past_the_size_cap_ends_with_a_clear_error_and_keeps_its_text() -> None:
    from victor_gui.providers.types import StreamChunk
    from victor_gui.services.generation import MAX_REPLY_CHARS

    gen = Generation(_Named(), [], model="m")  # type: ignore[arg-type]
    piece = "y" * (1 << 20)
    with_error: InvalidResponseError | None = None
    pieces = 0
    try:
        for _ in range(MAX_REPLY_CHARS // len(piece) + 8):
            gen._apply(StreamChunk(content=piece))
            pieces += 1
    except InvalidResponseError as exc:
        with_error = exc
    assert with_error is not None and "reply exceeded 32 MiB" in str(with_error)
    assert pieces == MAX_REPLY_CHARS // len(piece)  # stopped at the first piece past the cap
    assert with_error.partial_content is not None and len(with_error.partial_content) > MAX_REPLY_CHARS
