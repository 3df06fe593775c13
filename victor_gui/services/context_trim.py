"""Fit a conversation into a model's context window, dropping the oldest turns first.

Token counts are **estimates**, on purpose: the exact tokenizer of every model on every server
is not available offline, and an estimate that errs high is enough to stay inside the window.
The estimate (:func:`estimate_tokens`):

* text: ``ceil(chars / 4 × 1.1)``: about four characters per token for English and code with
  common tokenizers, plus a 10 % margin (more for languages that tokenise densely is covered by
  the output reserve below);
* each message: 4 tokens of framing (role markers and separators in chat templates);
* a tool call: its name and JSON arguments as text, plus 8 tokens of framing;
* an image: a flat 1,000 tokens (a 1024 px image is ~765 on OpenAI, up to ~1,600 elsewhere).

The budget is the context window minus the reply's reserve (``max_tokens``, capped at half the
window so a large ``max_tokens`` on a small model does not leave no room at all).

A **turn** starts at a user message and holds everything up to the next user message: the
assistant reply, its tool calls and their results, so a call and its result are always kept or
dropped together. Messages before the first user message (other than the leading system
messages) form a turn of their own. What is never dropped: the leading system message(s) (the
system prompt) and the last turn (the last user message and anything after it, e.g. a tool loop
in progress). When even that does not fit, it is sent as it is and the result says so; the
server's own context error then tells the user.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from victor_gui.providers.types import Message

CHARS_PER_TOKEN = 4.0
MARGIN = 1.1
MESSAGE_OVERHEAD = 4
TOOL_CALL_OVERHEAD = 8
IMAGE_TOKENS = 1000


def estimate_text_tokens(text: str) -> int:
    """Estimated tokens of a piece of text (see the module docstring)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN * MARGIN) if text else 0


def estimate_tokens(message: Message) -> int:
    """Estimated tokens one message takes in a prompt."""
    total = MESSAGE_OVERHEAD + estimate_text_tokens(message.text) + IMAGE_TOKENS * len(message.images)
    for call in message.tool_calls or []:
        args = json.dumps(call.arguments, ensure_ascii=False)
        total += TOOL_CALL_OVERHEAD + estimate_text_tokens(call.name + args)
    return total


@dataclass(frozen=True)
class TrimResult:
    """The messages to send and what trimming did."""

    messages: list[Message]
    dropped_turns: int
    dropped_messages: int
    estimated_tokens: int  # of ``messages``
    budget: int  # tokens available to the prompt
    fits: bool

    @property
    def trimmed(self) -> bool:
        return self.dropped_turns > 0


def prompt_budget(context_window: int, max_tokens: int | None) -> int:
    """Tokens left for the prompt once the reply's reserve is taken off."""
    reserve = min(max_tokens or 0, context_window // 2)
    return max(1, context_window - reserve)


def split_turns(messages: list[Message]) -> tuple[list[Message], list[list[Message]]]:
    """(leading system messages, turns); each turn starts at a user message (see module doc)."""
    head: list[Message] = []
    index = 0
    while index < len(messages) and messages[index].role in ("system", "developer"):
        head.append(messages[index])
        index += 1
    turns: list[list[Message]] = []
    for msg in messages[index:]:
        if msg.role == "user" or not turns:
            turns.append([msg])
        else:
            turns[-1].append(msg)
    return head, turns


def trim_history(messages: list[Message], context_window: int, max_tokens: int | None = None) -> TrimResult:
    """Drop the oldest turns until the estimate fits the window (see the module docstring)."""
    budget = prompt_budget(context_window, max_tokens)
    head, turns = split_turns(messages)
    sizes = [sum(estimate_tokens(m) for m in turn) for turn in turns]
    total = sum(estimate_tokens(m) for m in head) + sum(sizes)
    dropped = 0
    # The last turn is never dropped: it holds the question being asked.
    while total > budget and dropped < len(turns) - 1:
        total -= sizes[dropped]
        dropped += 1
    kept = [m for turn in turns[dropped:] for m in turn]
    return TrimResult(
        messages=head + kept,
        dropped_turns=dropped,
        dropped_messages=sum(len(t) for t in turns[:dropped]),
        estimated_tokens=total,
        budget=budget,
        fits=total <= budget,
    )
