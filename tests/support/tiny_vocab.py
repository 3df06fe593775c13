# ruff: noqa: E501  -- the chat template is data; its long lines are kept verbatim
"""Tokenizer and chat template of the tiny test models (see :mod:`tests.support.tiny_gguf`).

A byte-level GPT-2 BPE vocabulary: the 256 byte tokens (so any UTF-8 text tokenizes), a few
common English merges, and the ChatML / Hermes tool-calling special tokens. The chat template
is Qwen2.5's ChatML with ``<tool_call>`` tools, which llama.cpp's chat parser recognises, so
``/v1/chat/completions`` with ``tools`` produces real ``tool_calls``.
"""

from __future__ import annotations

from dataclasses import dataclass

import gguf
import numpy as np

CHAT_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

# A few common English merges over printable ASCII ("\u0120" is GPT-2's visible space). They
# are there so the BPE merge machinery is exercised, not for compression.
MERGES = (
    "\u0120 t", "\u0120 a", "h e", "i n", "r e", "o n", "\u0120t he", "e r", "\u0120 s", "a t",
    "\u0120 w", "\u0120 o", "e n", "\u0120 c", "i s", "\u0120 b", "o u", "e s", "\u0120 h", "a n",
)

# (text, type, may the model emit it?) -- only <|im_end|> of the specials may be generated.
SPECIALS = (
    ("<|endoftext|>", gguf.TokenType.CONTROL, False),
    ("<|im_start|>", gguf.TokenType.CONTROL, False),
    ("<|im_end|>", gguf.TokenType.CONTROL, True),
    ("<tool_call>", gguf.TokenType.USER_DEFINED, False),
    ("</tool_call>", gguf.TokenType.USER_DEFINED, False),
    ("<tool_response>", gguf.TokenType.USER_DEFINED, False),
    ("</tool_response>", gguf.TokenType.USER_DEFINED, False),
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (the same one HF tokenizers use)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@dataclass(frozen=True)
class Vocab:
    """The token list plus what the weights need to know about it."""

    tokens: list[str]
    types: list[int]
    allowed: np.ndarray  # bool per token: may appear in model output
    special: dict[str, int]  # special token text -> id

    @property
    def size(self) -> int:
        return len(self.tokens)


def build_vocab() -> Vocab:
    """256 byte tokens, the merges, then the special tokens (ids are stable across calls)."""
    b2u = bytes_to_unicode()
    tokens: list[str] = []
    types: list[int] = []
    allowed: list[bool] = []
    for b in range(256):
        tokens.append(b2u[b])
        types.append(int(gguf.TokenType.NORMAL))
        # Printable ASCII and "\n" only, so streamed text is always valid UTF-8.
        allowed.append(0x20 <= b <= 0x7E or b == 0x0A)
    for merge in MERGES:
        left, right = merge.split(" ")
        tokens.append(left + right)
        types.append(int(gguf.TokenType.NORMAL))
        allowed.append(True)
    special: dict[str, int] = {}
    for text, kind, may_emit in SPECIALS:
        special[text] = len(tokens)
        tokens.append(text)
        types.append(int(kind))
        allowed.append(may_emit)
    return Vocab(tokens, types, np.array(allowed), special)
