"""Chat → one prompt string, for Hugging Face's serverless text-generation route (which takes
``inputs``, not messages).

A model's own chat template is used when its family is known (matched on the lowercase last
path segment of the model id, like :mod:`victor_gui.providers.quirks`): Llama 3, Mistral/Mixtral
``[INST]``, Gemma turns. Everything else gets ChatML (``<|im_start|>role\\n...<|im_end|>``), the
format Qwen, Yi, Hermes and most community fine-tunes were trained on, and a readable transcript
for base models that know no template at all. A template can be named explicitly (``chat_template=``
on the request, or ``hf_chat_template`` in the capabilities table).

Tool calls and results have no portable form in a bare prompt: they are written as plain text
(``[called name({...})]``, ``Tool result (name): ...``), like the Replicate transcript. Images are
dropped (text generation is text only).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from fnmatch import fnmatchcase

from victor_gui.providers.quirks import model_key
from victor_gui.providers.types import Message

# Family -> model-key globs (first match wins; default ChatML).
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("llama3", ("*llama-3*", "*llama3*")),
    ("mistral", ("mistral-*", "mixtral-*", "*-mistral-*instruct*")),
    ("gemma", ("gemma-*", "gemma?-*", "*-gemma-*")),
)


def template_for(model: str, explicit: str | None = None) -> str:
    """The template name for ``model``: ``explicit`` when given, else by family, else ``chatml``."""
    if explicit:
        if explicit not in TEMPLATES:
            raise ValueError(f"Unknown chat template {explicit!r}; known: {', '.join(sorted(TEMPLATES))}")
        return explicit
    key = model_key(model)
    for family, globs in FAMILIES:
        if any(fnmatchcase(key, g) for g in globs):
            return family
    return "chatml"


def _text(message: Message) -> str:
    """A message's text with its tool calls (assistant) or tool name (tool) spelled out."""
    if message.role == "tool":
        return f"Tool result ({message.name or message.tool_call_id or 'tool'}): {message.text}"
    calls = "".join(
        f"\n[called {c.name}({json.dumps(c.arguments, ensure_ascii=False)})]"
        for c in message.tool_calls or []
    )
    return message.text + calls


def _role(message: Message) -> str:
    if message.role in ("system", "developer"):
        return "system"
    return "assistant" if message.role == "assistant" else "user"  # tool results are read by the user side


def _turns(messages: list[Message]) -> list[tuple[str, str]]:
    """(role, text) pairs with system text first and consecutive same-role turns merged."""
    system = "\n\n".join(_text(m) for m in messages if _role(m) == "system" and m.text.strip())
    turns: list[tuple[str, str]] = [("system", system)] if system else []
    for m in messages:
        role = _role(m)
        if role == "system":
            continue
        text = _text(m)
        if turns and turns[-1][0] == role and role != "system":
            turns[-1] = (role, turns[-1][1] + "\n\n" + text)
        else:
            turns.append((role, text))
    return turns


def _chatml(turns: list[tuple[str, str]]) -> str:
    body = "".join(f"<|im_start|>{role}\n{text}<|im_end|>\n" for role, text in turns)
    return body + "<|im_start|>assistant\n"


def _llama3(turns: list[tuple[str, str]]) -> str:
    body = "".join(f"<|start_header_id|>{role}<|end_header_id|>\n\n{text}<|eot_id|>" for role, text in turns)
    return "<|begin_of_text|>" + body + "<|start_header_id|>assistant<|end_header_id|>\n\n"


def _mistral(turns: list[tuple[str, str]]) -> str:
    # No system role: its text opens the first user turn, as Mistral's own template does.
    system = turns[0][1] if turns and turns[0][0] == "system" else ""
    out = "<s>"
    for role, text in turns[1:] if system else turns:
        if role == "user":
            out += f"[INST] {system + chr(10) + chr(10) if system else ''}{text} [/INST]"
            system = ""
        else:
            out += f" {text}</s>"
    return out


def _gemma(turns: list[tuple[str, str]]) -> str:
    system = turns[0][1] if turns and turns[0][0] == "system" else ""
    out = "<bos>"
    for role, text in turns[1:] if system else turns:
        if role == "user" and system:
            text, system = f"{system}\n\n{text}", ""
        out += f"<start_of_turn>{'model' if role == 'assistant' else 'user'}\n{text}<end_of_turn>\n"
    return out + "<start_of_turn>model\n"


# name -> (renderer, stop sequences that end the assistant's turn)
TEMPLATES: dict[str, tuple[Callable[[list[tuple[str, str]]], str], tuple[str, ...]]] = {
    "chatml": (_chatml, ("<|im_end|>", "<|im_start|>")),
    "llama3": (_llama3, ("<|eot_id|>",)),
    "mistral": (_mistral, ("</s>", "[INST]")),
    "gemma": (_gemma, ("<end_of_turn>",)),
}


def build_prompt(messages: list[Message], template: str) -> tuple[str, list[str]]:
    """(prompt, stop sequences) for the conversation rendered with ``template``."""
    render, stops = TEMPLATES[template]
    return render(_turns(messages)), list(stops)


__all__ = ["FAMILIES", "TEMPLATES", "build_prompt", "template_for"]
