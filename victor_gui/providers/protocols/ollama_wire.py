"""Ollama's native wire format: request payloads out, replies in (``servers.md`` §1.4).

Pure functions and small state objects, no I/O, so :mod:`.ollama` stays about transport and
error handling. What differs from OpenAI-style wires, and why this module exists:

* images travel as bare base64 strings in ``message.images`` (no ``data:`` prefix);
* tool-call ``arguments`` are JSON *objects*, and a streamed call arrives whole in one line;
  older builds send no ``id``, so one is synthesised once per call and kept for its lifetime;
* tool results are role ``tool`` with ``tool_name`` (plus ``tool_call_id`` for newer builds);
* reasoning comes in ``message.thinking`` (pre-0.9 builds: inline ``<think>`` in content);
* durations are nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from victor_gui.providers.protocols.tool_history import repair_history, tool_images_left_out
from victor_gui.providers.types import (
    Message,
    Timings,
    ToolCall,
    ToolDefinition,
    Usage,
    new_tool_call_id,
    token_count,
)

NS_PER_S = 1_000_000_000
THINK_LEVELS = ("low", "medium", "high", "max")
_DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


# -- requests ---------------------------------------------------------------------------------


def wire_messages(messages: list[Message], *, tool_images: bool = True) -> list[dict[str, Any]]:
    """Messages in Ollama's shape. Tool results get ``tool_name`` from the call they answer, and
    a tool's images go in the tool message's ``images``; with ``tool_images`` off (a model that
    does not take images) the text says they were left out instead.

    The history is repaired first (as for every protocol), so a conversation carried over from
    another provider never shows the model a result without its call or a call without a result.
    """
    names_by_id: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    messages = repair_history(messages).messages
    for message in messages:
        role = {"developer": "system", "function": "tool"}.get(message.role, message.role)
        entry: dict[str, Any] = {"role": role, "content": message.text}
        images = [image.data for image in message.images]
        if role == "tool" and images and not tool_images:
            entry["content"] = f"{message.text}\n{tool_images_left_out(len(images))}"
            images = []
        if images:
            entry["images"] = images
        if message.tool_calls:
            entry["tool_calls"] = [
                # ``id`` is read by builds that pair results by id and ignored by older ones.
                {"id": call.id, "function": {"name": call.name, "arguments": call.arguments}}
                for call in message.tool_calls
            ]
            names_by_id.update({call.id: call.name for call in message.tool_calls})
        if role == "tool":
            tool_name = message.name or names_by_id.get(message.tool_call_id or "")
            if tool_name:
                entry["tool_name"] = tool_name
            if message.tool_call_id:
                entry["tool_call_id"] = message.tool_call_id
        out.append(entry)
    return out


def wire_tools(tools: list[ToolDefinition]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.parameters}} for t in tools]


def build_payload(
    model: str,
    messages: list[Message],
    *,
    stream: bool,
    temperature: float | None,
    max_tokens: int | None,
    tools: list[ToolDefinition] | None = None,
    think: bool | str | None = None,
    num_ctx: int | None = None,
    keep_alive: str | int | float | None = None,
    options: dict[str, Any] | None = None,
    truncate: bool | None = None,
    response_format: str | dict[str, Any] | None = None,
    vision: bool = True,
) -> dict[str, Any]:
    """The ``/api/chat`` body. Caller ``options`` win over the ones derived from arguments;
    ``vision`` off leaves a tool result's images out (see :func:`wire_messages`)."""
    opts: dict[str, Any] = {}
    if temperature is not None:
        opts["temperature"] = temperature
    if max_tokens is not None:
        opts["num_predict"] = max_tokens
    if num_ctx:
        opts["num_ctx"] = int(num_ctx)
    opts.update(options or {})
    wired = wire_messages(messages, tool_images=vision)
    payload: dict[str, Any] = {"model": model, "messages": wired, "stream": stream}
    if opts:
        payload["options"] = opts
    if tools:
        payload["tools"] = wire_tools(tools)
    if think is not None:
        if isinstance(think, str) and think.lower() not in THINK_LEVELS:
            raise ValueError(f"think must be true, false or one of {', '.join(THINK_LEVELS)}")
        payload["think"] = think.lower() if isinstance(think, str) else bool(think)
    if keep_alive is not None:
        payload["keep_alive"] = keep_alive
    if truncate is not None:
        payload["truncate"] = truncate
    if response_format is not None:
        payload["format"] = response_format
    return payload


# -- replies ----------------------------------------------------------------------------------


def parse_tool_calls(raw: Any) -> list[ToolCall]:
    """Complete calls from ``message.tool_calls``; an ``id`` is kept when sent, else made up."""
    calls: list[ToolCall] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        function: dict[str, Any] = item["function"] if isinstance(item.get("function"), dict) else {}
        name = function.get("name")
        if not name:
            continue
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, dict | str):
            arguments = {"_value": arguments}
        calls.append(ToolCall(id=item.get("id") or new_tool_call_id(), name=str(name), arguments=arguments))
    return calls


def usage_from(final: dict[str, Any]) -> Usage | None:
    prompt, completion = final.get("prompt_eval_count"), final.get("eval_count")
    if prompt is None and completion is None:
        return None
    return Usage(prompt_tokens=token_count(prompt), completion_tokens=token_count(completion))


def _rate(count: Any, duration_ns: Any) -> float | None:
    if not count or not duration_ns:
        return None
    return float(count) / (float(duration_ns) / NS_PER_S)


def timings_from(final: dict[str, Any], ttft_ms: float | None) -> Timings:
    """Server-measured speeds from the nanosecond durations; TTFT measured by us."""
    return Timings(ttft_ms=ttft_ms, source="server",
                   tokens_per_second=_rate(final.get("eval_count"), final.get("eval_duration")),
                   prompt_tokens_per_second=_rate(final.get("prompt_eval_count"),
                                                  final.get("prompt_eval_duration")))


def durations_ms(final: dict[str, Any]) -> dict[str, float]:
    """The final line's durations in milliseconds, for display (``total_duration_ms`` ...)."""
    return {f"{key}_ms": float(final[key]) / 1e6 for key in _DURATIONS
            if isinstance(final.get(key), int | float)}


def partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a start of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


@dataclass
class ModelDetails:
    """What ``/api/show`` says about a model that decides how we talk to it."""

    name: str
    capabilities: list[str] = field(default_factory=list)
    context_length: int | None = None  # trained context, ``<arch>.context_length``
    num_ctx: int | None = None  # a ``PARAMETER num_ctx`` in the Modelfile
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None

    @property
    def supports_tools(self) -> bool:
        return "tools" in self.capabilities

    @property
    def supports_vision(self) -> bool:
        return "vision" in self.capabilities or "image" in self.capabilities

    @property
    def supports_thinking(self) -> bool:
        return "thinking" in self.capabilities


def parse_show(name: str, data: dict[str, Any]) -> ModelDetails:
    info: dict[str, Any] = data["model_info"] if isinstance(data.get("model_info"), dict) else {}
    arch = info.get("general.architecture")
    context = info.get(f"{arch}.context_length") if arch else None
    if context is None:  # some conversions use another prefix; take any *.context_length
        context = next((v for k, v in info.items() if k.endswith(".context_length")), None)
    num_ctx = None
    for line in str(data.get("parameters") or "").splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "num_ctx":
            try:
                num_ctx = int(value.strip())
            except ValueError:
                pass
    details: dict[str, Any] = data["details"] if isinstance(data.get("details"), dict) else {}
    caps: list[Any] = data["capabilities"] if isinstance(data.get("capabilities"), list) else []
    return ModelDetails(name=name, capabilities=[str(c) for c in caps],
                        context_length=int(context) if isinstance(context, int | float) else None,
                        num_ctx=num_ctx, family=details.get("family"),
                        parameter_size=details.get("parameter_size"),
                        quantization=details.get("quantization_level"))
