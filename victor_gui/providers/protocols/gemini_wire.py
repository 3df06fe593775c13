"""Gemini ``generateContent`` payloads (shared by Google AI and Vertex AI): neutral history in,
``contents``/``parts`` JSON out, and replies (whole, or streamed with ``alt=sse``) back.

Gemini has no tool-call ids on the wire: a ``functionResponse`` is paired with its
``functionCall`` by name and position. Calls are sent in order and their results follow in the
same order in one user turn, and ids are synthesised (stable, kept in the history) for the calls
Gemini returns, so the history stays valid when it moves to a protocol that needs ids.

Reference: https://ai.google.dev/api/generate-content
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from victor_gui.errors import ContentFilterError, InvalidResponseError
from victor_gui.providers.json_guard import Shape
from victor_gui.providers.protocols.reply_shapes import check_gemini
from victor_gui.providers.protocols.tool_history import repair_history
from victor_gui.providers.types import (
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolDefinition,
    Usage,
    new_tool_call_id,
    token_count,
)

SAFETY_LEVELS = {
    "block_none": "BLOCK_NONE",
    "off": "OFF",
    "block_few": "BLOCK_ONLY_HIGH",
    "block_some": "BLOCK_MEDIUM_AND_ABOVE",
    "block_most": "BLOCK_LOW_AND_ABOVE",
}
HARM_CATEGORIES = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
# Finish reasons that mean a filter withheld the reply.
FILTER_FINISHES = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
STOP_REASONS = {"STOP": "stop", "MAX_TOKENS": "length"}

# The subset of OpenAPI 3 Schema that functionDeclarations accept; anything else is a 400.
_SCHEMA_KEYS = {
    "type",
    "format",
    "description",
    "nullable",
    "enum",
    "items",
    "properties",
    "required",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "anyOf",
    "minLength",
    "maxLength",
    "pattern",
    "title",
    "propertyOrdering",
    "minProperties",
    "maxProperties",
}
_FORMATS = {"string": {"enum", "date-time"}, "integer": {"int32", "int64"}, "number": {"float", "double"}}


def safety_settings(level: str | None) -> list[dict[str, str]]:
    """``safetySettings`` for the seed's ``safety_level`` (default ``block_none``)."""
    key = (level or "block_none").strip().lower()
    if key not in SAFETY_LEVELS:
        raise ValueError(f"safety_level must be one of {', '.join(SAFETY_LEVELS)}, not {level!r}")
    return [{"category": c, "threshold": SAFETY_LEVELS[key]} for c in HARM_CATEGORIES]


def clean_schema(schema: Any, defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A JSON Schema reduced to what Gemini accepts: ``$ref`` inlined, ``["x", "null"]`` types as
    ``nullable``, ``const`` as a one-value ``enum``, unknown keys and formats dropped."""
    if not isinstance(schema, dict) or depth > 12:
        return {"type": "string"} if depth > 12 else schema
    if defs is None:
        defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1], {})
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return clean_schema(merged, defs, depth + 1)
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, list):
        others = [k for k in kind if k != "null"]
        if "null" in kind:
            out["nullable"] = True
        kind = others[0] if others else "string"
    if kind:
        out["type"] = kind
    if "const" in schema and "enum" not in schema:
        out["enum"] = [schema["const"]]
    for key, value in schema.items():
        if key not in _SCHEMA_KEYS or key in out:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: clean_schema(sub, defs, depth + 1) for name, sub in value.items()}
        elif key == "items":
            out[key] = clean_schema(value, defs, depth + 1)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [clean_schema(sub, defs, depth + 1) for sub in value]
        elif key == "format" and value not in _FORMATS.get(str(kind), set()):
            continue
        elif key == "enum":
            out[key] = [str(v) for v in value]
        else:
            out[key] = value
    if isinstance(out.get("required"), list) and isinstance(out.get("properties"), dict):
        out["required"] = [r for r in out["required"] if r in out["properties"]]
    return out


def function_declarations(tools: list[ToolDefinition]) -> list[dict[str, Any]]:
    """``tools`` for the payload: one ``functionDeclarations`` list."""
    decls = []
    for tool in tools:
        decl: dict[str, Any] = {"name": tool.name, "description": tool.description}
        params = clean_schema(tool.parameters or {})
        # An OBJECT without properties is rejected; a function without arguments omits parameters.
        if params and (params.get("properties") or params.get("type") not in (None, "object")):
            decl["parameters"] = params
        decls.append(decl)
    return [{"functionDeclarations": decls}]


# Google's documented stand-in for a function call that has no signature of its own (it came
# from another model or provider, or from before a restart): Gemini 3 validates signatures and
# answers 400 for an unsigned call, but accepts this value in its place.
UNSIGNED_CALL_SIGNATURE = "skip_thought_signature_validator"


def needs_call_signatures(model: str) -> bool:
    """Whether ``model`` validates function-call signatures: Gemini 3 and later (and the
    ``-latest`` aliases, which point there); 1.x and 2.x models do not."""
    name = model.rsplit("/", 1)[-1].lower()
    return not name.startswith(("gemini-1", "gemini-2", "gemma"))


def convert_contents(
    messages: list[Message],
    *,
    signature_for: Callable[[str], str | None] | None = None,
    sign_unsigned: bool = False,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(``systemInstruction`` or None, ``contents``) from neutral messages. With
    ``sign_unsigned``, an assistant turn whose calls carry no remembered signature gets
    :data:`UNSIGNED_CALL_SIGNATURE` on its first call (where Gemini puts a real one)."""
    repaired = repair_history(messages).messages
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    call_order: dict[str, tuple[int, str]] = {}  # call id -> (position in its turn, function name)
    for message in repaired:
        if message.role in ("system", "developer"):
            if message.text.strip():
                system.append(message.text)
            continue
        if message.role == "tool":
            position, name = call_order.get(message.tool_call_id or "", (len(call_order), message.name or ""))
            part = {
                "functionResponse": {
                    "name": name or message.name or "tool",
                    "response": _response(message.text),
                }
            }
            last = contents[-1] if contents else None
            if last is None or not last.get("_results"):
                last = {"role": "user", "parts": [], "_results": True, "_images": []}
                contents.append(last)
            last["parts"].append((position, part))
            # A tool's images follow the function responses in the same user turn.
            last["_images"].extend(_image_part(image) for image in message.images)
            continue
        parts = _parts(message)
        if message.role == "assistant":
            call_order = {}
            for i, call in enumerate(message.tool_calls or []):
                call_order[call.id] = (i, call.name)
                call_part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.arguments}}
                # Gemini 3 rejects a function-call turn sent back without the signature it came with.
                signature = signature_for(call.id) if signature_for is not None else None
                if signature:
                    call_part["thoughtSignature"] = signature
                parts.append(call_part)
            calls = [p for p in parts if "functionCall" in p]
            if sign_unsigned and calls and not any("thoughtSignature" in p for p in calls):
                calls[0]["thoughtSignature"] = UNSIGNED_CALL_SIGNATURE
        if not parts:
            continue  # Gemini rejects a turn without parts
        role = "model" if message.role == "assistant" else "user"
        if contents and contents[-1]["role"] == role and not contents[-1].get("_results"):
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    for content in contents:
        if content.pop("_results", False):
            # Results go in the order of their calls: Gemini pairs them by position.
            content["parts"] = [part for _, part in sorted(content["parts"], key=lambda item: item[0])]
            content["parts"].extend(content.pop("_images"))
    instruction = {"parts": [{"text": "\n\n".join(system)}]} if system else None
    return instruction, contents


def _parts(message: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in message.parts():
        if isinstance(part, TextPart) and part.text:
            parts.append({"text": part.text})
        elif isinstance(part, ImagePart):
            parts.append(_image_part(part))
    return parts


def _image_part(part: ImagePart) -> dict[str, Any]:
    return {"inlineData": {"mimeType": part.media_type, "data": part.data}}


def _response(text: str) -> dict[str, Any]:
    """A tool's output as the JSON object ``functionResponse.response`` must be."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}


def build_payload(
    messages: list[Message],
    *,
    temperature: float | None,
    max_tokens: int | None,
    tools: list[ToolDefinition] | None,
    safety_level: str | None,
    kwargs: dict[str, Any],
    signature_for: Callable[[str], str | None] | None = None,
    sign_unsigned: bool = False,
) -> dict[str, Any]:
    """The ``generateContent`` body; ``signature_for(call_id)`` gives back a call's
    ``thoughtSignature`` when one was received with it (see :func:`convert_contents` for
    ``sign_unsigned``)."""
    instruction, contents = convert_contents(messages, signature_for=signature_for,
                                             sign_unsigned=sign_unsigned)
    body: dict[str, Any] = {"contents": contents}
    if instruction:
        body["systemInstruction"] = instruction
    if tools:
        body["tools"] = function_declarations(tools)
        body["toolConfig"] = {"functionCallingConfig": {"mode": str(kwargs.get("tool_mode") or "AUTO")}}
    config: dict[str, Any] = {}
    if temperature is not None:
        config["temperature"] = temperature
    if max_tokens:
        config["maxOutputTokens"] = int(max_tokens)
    for ours, theirs in (("top_p", "topP"), ("top_k", "topK"), ("stop_sequences", "stopSequences"),
                         ("seed", "seed"), ("presence_penalty", "presencePenalty"),
                         ("frequency_penalty", "frequencyPenalty")):
        if kwargs.get(ours) is not None:
            config[theirs] = kwargs[ours]
    thinking = kwargs.get("thinking")
    if thinking:
        budget = thinking if isinstance(thinking, int) and not isinstance(thinking, bool) else None
        if isinstance(thinking, dict):
            budget = thinking.get("budget_tokens") or thinking.get("thinkingBudget")
        config["thinkingConfig"] = {
            "includeThoughts": True,
            **({"thinkingBudget": int(budget)} if budget else {}),
        }
    if config:
        body["generationConfig"] = config
    body["safetySettings"] = safety_settings(safety_level)
    return body


# -- replies ------------------------------------------------------------------------------------


def usage_from(meta: dict[str, Any] | None) -> Usage | None:
    """Neutral usage from ``usageMetadata``: completion includes thoughts, as OpenAI's does."""
    if not meta:
        return None
    thoughts = token_count(meta.get("thoughtsTokenCount"))
    return Usage(
        prompt_tokens=token_count(meta.get("promptTokenCount")),
        completion_tokens=token_count(meta.get("candidatesTokenCount")) + thoughts,
        total_tokens=token_count(meta.get("totalTokenCount")),
        cached_tokens=token_count(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


class Candidate:
    """What one ``GenerateContentResponse`` (or one stream event) carries."""

    def __init__(self, data: dict[str, Any], *, provider: str, model: str | None, partial: str = "") -> None:
        try:
            check_gemini(data, Shape("Gemini reply", provider, model=model))
        except InvalidResponseError as exc:
            exc.partial_content = partial or None
            raise
        self.text = ""
        self.thought = ""
        self.calls: list[ToolCall] = []
        self.signatures: dict[str, str] = {}  # call id -> thoughtSignature
        self.finish: str | None = None
        feedback = data.get("promptFeedback") or {}
        candidates = data.get("candidates") or []
        if feedback.get("blockReason") and not candidates:
            raise ContentFilterError(
                f"Gemini blocked the prompt ({feedback['blockReason']})",
                provider,
                model=model,
                partial_content=partial or None,
            )
        if not candidates:
            return
        first = candidates[0]
        for part in (first.get("content") or {}).get("parts") or []:
            if "functionCall" in part:
                call = part["functionCall"]
                tool_call = ToolCall(
                    id=call.get("id") or new_tool_call_id(),
                    name=call.get("name") or "",
                    arguments=call.get("args") or {},
                )
                self.calls.append(tool_call)
                if part.get("thoughtSignature"):
                    self.signatures[tool_call.id] = str(part["thoughtSignature"])
            elif part.get("thought") and "text" in part:
                self.thought += part["text"]
            elif "text" in part:
                self.text += part["text"]
        self.finish = first.get("finishReason")
        if self.finish in FILTER_FINISHES:
            ratings = ", ".join(
                f"{r.get('category', '?')}={r.get('probability', '?')}"
                for r in first.get("safetyRatings") or []
                if r.get("blocked") or r.get("probability") in ("MEDIUM", "HIGH")
            )
            raise ContentFilterError(
                f"Gemini stopped the reply: {self.finish}" + (f" ({ratings})" if ratings else ""),
                provider,
                model=model,
                partial_content=(partial + self.text) or None,
            )


def stop_reason(finish: str | None, has_calls: bool) -> str | None:
    if has_calls and finish in (None, "STOP"):
        return "tool_calls"
    if finish is None:
        return None
    return STOP_REASONS.get(finish, finish.lower())
