"""Building OpenAI chat-completions request bodies from the neutral types.

The conversation is repaired first by :func:`.tool_history.repair_history` (orphan results as
user notes, unanswered calls answered, ids unique, empty results ``(no output)``): OpenAI-compatible
servers reject a ``tool`` message that does not follow its call and an unanswered call. The
repairs made are returned so the caller can put them in the response metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from victor_gui.errors import BadRequestError, ProviderError
from victor_gui.providers import quirks
from victor_gui.providers.protocols.tool_history import (
    repair_history,
    tool_images_intro,
    tool_images_left_out,
)
from victor_gui.providers.tool_parsing import tools_as_system_prompt
from victor_gui.providers.types import ImagePart, Message, TextPart, ToolDefinition

# Error texts that mean "this model/server cannot take a tools field" (Ollama-style, llama.cpp
# without --jinja, vLLM without a tool parser): retry once with the tools described as text.
NO_TOOLS_HINTS = (
    "does not support tools",
    "tools param requires --jinja",
    "requires --enable-auto-tool-choice",
)

# Keyword arguments passed straight into the body when a caller gives them.
PASSTHROUGH = (
    "top_p",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "n",
    "user",
    "response_format",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning_effort",
    "logprobs",
    "top_logprobs",
    "top_k",
    "min_p",
    "repeat_penalty",
    "repetition_penalty",
    "ttl",
    "chat_template_kwargs",
    "reasoning_format",
    "cache_prompt",
)


def content_payload(
    message: Message, *, vision: bool, provider: str, model: str
) -> str | list[dict[str, Any]]:
    """A message's content as an OpenAI string, or a parts list when it carries images."""
    parts = message.parts()
    if not any(isinstance(p, ImagePart) for p in parts):
        return message.text
    if not vision:
        raise BadRequestError(
            f"The model {model!r} does not take images; remove the image or pick a vision model",
            provider,
            model=model,
        )
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            out.append({"type": "text", "text": part.text})
        else:
            out.append({"type": "image_url", "image_url": {"url": part.to_data_url()}})
    return out


def tool_call_payload(call: Any) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
    }


def to_openai_messages(
    messages: list[Message],
    *,
    vision: bool,
    provider: str,
    model: str,
    keep_developer: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Repair and convert a conversation; returns (messages, the repairs that were made).

    A ``tool`` message cannot carry images, so the images tools returned follow the turn's
    tool messages as one ``user`` message (a short text naming each tool, then its images);
    for a model without vision the tool's text says they were left out.
    """
    repaired = repair_history(messages)
    out: list[dict[str, Any]] = []
    tool_images: list[dict[str, Any]] = []  # this turn's tool images, sent after its results
    for msg in repaired.messages:
        role = msg.role
        if role == "tool":
            text = msg.text
            if msg.images and vision:
                tool_images.append({"type": "text", "text": tool_images_intro(msg.name or "tool")})
                tool_images += [{"type": "image_url", "image_url": {"url": image.to_data_url()}}
                                for image in msg.images]
            elif msg.images:
                text = f"{text}\n{tool_images_left_out(len(msg.images))}"
            out.append({"role": "tool", "tool_call_id": msg.tool_call_id, "content": text})
            continue
        if tool_images:
            out.append({"role": "user", "content": tool_images})
            tool_images = []
        if role == "developer" and not keep_developer:
            role = "system"
        entry: dict[str, Any] = {"role": role}
        if role == "assistant":
            entry["content"] = msg.text or (None if msg.tool_calls else "")
            if msg.tool_calls:
                entry["tool_calls"] = [tool_call_payload(c) for c in msg.tool_calls]
        else:
            entry["content"] = content_payload(msg, vision=vision, provider=provider, model=model)
        if msg.name and role in ("user", "system"):
            entry["name"] = msg.name
        out.append(entry)
    if tool_images:
        out.append({"role": "user", "content": tool_images})
    return out, repaired.changes


def tools_payload(tools: list[ToolDefinition]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]


def with_tools_in_system(messages: list[dict[str, Any]], tools: list[ToolDefinition]) -> list[dict[str, Any]]:
    """Messages with the tool description appended to (or inserted as) the system prompt.

    Native tool turns are flattened to text, because a server without tool support rejects
    ``tool`` roles and ``tool_calls`` fields too.
    """
    text = tools_as_system_prompt(tools)
    out: list[dict[str, Any]] = []
    for msg in messages:
        if msg.get("role") == "tool":
            out.append(
                {"role": "user", "content": f"[Tool result {msg.get('tool_call_id')}]: {msg['content']}"}
            )
        elif msg.get("tool_calls"):
            calls = [
                json.dumps(
                    {
                        "name": c["function"]["name"],
                        "arguments": json.loads(c["function"]["arguments"] or "{}"),
                    }
                )
                for c in msg["tool_calls"]
            ]
            out.append(
                {
                    "role": "assistant",
                    "content": ((msg.get("content") or "") + "\n" + "\n".join(calls)).strip(),
                }
            )
        else:
            out.append(dict(msg))
    if out and out[0].get("role") == "system" and isinstance(out[0].get("content"), str):
        out[0]["content"] = f"{out[0]['content']}\n\n{text}"
    else:
        out.insert(0, {"role": "system", "content": text})
    return out


@dataclass
class RequestPlan:
    """One request, ready to send: the body plus what the reply handling needs to know."""

    model: str
    body: dict[str, Any]
    tools: list[ToolDefinition] = field(default_factory=list)
    text_tools: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def native_tools(self) -> bool:
        return "tools" in self.body


def rejects_tools(error: ProviderError) -> bool:
    """True when an error says the model or server cannot take native tools."""
    low = error.message.lower()
    return any(hint in low for hint in NO_TOOLS_HINTS)


def build_body(
    model: str,
    messages: list[dict[str, Any]],
    rules: quirks.BodyRules,
    temperature: float | None,
    max_tokens: int | None,
    stream: bool,
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """The request body (without tools) under the model's :class:`~quirks.BodyRules`."""
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    if temperature is not None and rules.send_temperature:
        body["temperature"] = temperature
    if max_tokens:
        body[rules.token_field] = max_tokens
    for key in PASSTHROUGH:
        if kwargs.get(key) is not None:
            body[key] = kwargs[key]
    body.update(kwargs.get("extra_body") or {})
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def text_tool_plan(plan: RequestPlan) -> RequestPlan:
    """The plan re-cast for a model without native tools: tools described in the system prompt."""
    body = {k: v for k, v in plan.body.items() if k not in ("tools", "tool_choice", "parallel_tool_calls")}
    body["messages"] = with_tools_in_system(body["messages"], plan.tools)
    return replace(plan, body=body, text_tools=True, metadata=dict(plan.metadata, tool_text_fallback=True))


def fit_payload(plan: RequestPlan, max_bytes: int | None) -> RequestPlan:
    """Trim the body to the provider's size limit (Groq), noting what went in the metadata."""
    if max_bytes:
        plan.body, trimmed = quirks.trim_payload(plan.body, max_bytes)
        if trimmed:
            plan.metadata["trimmed"] = trimmed
    return plan
