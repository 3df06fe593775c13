"""The shapes of the replies the adapters read, checked before they are read.

The adapters' parsers (:class:`~.openai_stream.StreamAssembler`,
:class:`~.ollama_reply.ReplyAssembler`, :func:`~.ollama_wire.parse_show`,
:func:`~.openai_models.models_from_payload`, Anthropic's stream decoder and
:func:`~.anthropic_wire.parse_message`, Gemini's :class:`~.gemini_wire.Candidate`) read fields with
``.get``, ``int()`` and iteration, trusting the server. Each ``check_*`` here walks the fields
such a parser reads and raises :class:`~victor_gui.errors.InvalidResponseError` naming the first
one of the wrong type (``choices[0].delta is a string, not an object``); a missing field is left
to the parser's defaults. Checking up front keeps the parsers readable and the rule in one place.

Usage counts and timings are the exception: they only describe a reply, so one a server got
wrong (a string, ``1e300``, ``2**64``, a usage that is not an object) is dropped as unknown by
:func:`_drop_bad_counts` instead of failing a reply whose text the person has already seen.
"""

from __future__ import annotations

from typing import Any

from victor_gui.providers.json_guard import Shape
from victor_gui.providers.types import MAX_TOKEN_COUNT

OPENAI_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens", "prompt_cache_hit_tokens")
LLAMACPP_TIMINGS = ("predicted_per_second", "predicted_n", "predicted_ms", "prompt_per_second", "prompt_n",
                    "prompt_ms")
OLLAMA_COUNTS = ("prompt_eval_count", "eval_count", "total_duration", "load_duration",
                 "prompt_eval_duration", "eval_duration")


def _drop_bad_counts(data: dict[str, Any], key: str, counts: tuple[str, ...]) -> dict[str, Any] | None:
    """``data[key]`` when it is an object, with each of ``counts`` that is not a whole number in
    ``0..MAX_TOKEN_COUNT`` removed (the parsers read a missing count as unknown); a ``data[key]``
    that is not an object is removed. Nothing raises: see the module docstring."""
    usage = data.get(key)
    if usage is None:
        return None
    if not isinstance(usage, dict):
        del data[key]
        return None
    _drop_bad_numbers(usage, counts)
    return usage


def _drop_bad_numbers(data: dict[str, Any], keys: tuple[str, ...], *, whole: bool = True) -> None:
    for name in keys:
        value = data.get(name)
        if value is None:
            continue
        ok = (not isinstance(value, bool) and isinstance(value, int | float) and value == value
              and 0 <= value <= MAX_TOKEN_COUNT and (not whole or float(value).is_integer()))
        if not ok:
            del data[name]


def check_openai(value: Any, shape: Shape) -> dict[str, Any]:
    """A ``chat.completion`` body or one ``chat.completion.chunk`` event."""
    data = shape.obj(value)
    shape.opt_str(data, "model")
    for i, choice in enumerate(shape.objects(data, "choices")):
        at = f"choices[{i}]"
        shape.opt_str(choice, "finish_reason", at)
        for key in ("delta", "message"):
            delta = shape.opt_obj(choice, key, at)
            if delta is not None:
                _openai_message(delta, shape, f"{at}.{key}")
    usage = _drop_bad_counts(data, "usage", OPENAI_COUNTS)
    if usage is not None:
        _drop_bad_counts(usage, "prompt_tokens_details", ("cached_tokens",))
        _drop_bad_counts(usage, "completion_tokens_details", ("reasoning_tokens",))
    timings = _drop_bad_counts(data, "timings", ())
    if timings is not None:
        _drop_bad_numbers(timings, LLAMACPP_TIMINGS, whole=False)
    return data


def _openai_message(delta: dict[str, Any], shape: Shape, at: str) -> None:
    for key in ("content", "reasoning_content", "reasoning"):
        shape.opt_str(delta, key, at)
    for j, call in enumerate(shape.objects(delta, "tool_calls", at)):
        where = f"{at}.tool_calls[{j}]"
        shape.opt_count(call, "index", where)
        shape.opt_str(call, "id", where)
        _check_function(call, shape, where, "a string or an object")


def _check_function(call: dict[str, Any], shape: Shape, where: str, arguments_are: str) -> None:
    """A tool call's ``function``: its name a string, its arguments JSON text or an object."""
    function = shape.opt_obj(call, "function", where)
    if function is not None:
        shape.opt_str(function, "name", f"{where}.function")
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str | dict):
            raise shape.wrong(f"{where}.function.arguments", arguments, arguments_are)


def check_ollama(value: Any, shape: Shape) -> dict[str, Any]:
    """One ``/api/chat`` reply (whole, or one NDJSON line of a stream)."""
    data = shape.obj(value)
    shape.opt_str(data, "model")
    shape.opt_str(data, "done_reason")
    shape.opt_bool(data, "done")
    _drop_bad_numbers(data, OLLAMA_COUNTS)
    message = shape.opt_obj(data, "message")
    if message is not None:
        shape.opt_str(message, "content", "message")
        shape.opt_str(message, "thinking", "message")
        for j, call in enumerate(shape.objects(message, "tool_calls", "message")):
            _check_function(call, shape, f"message.tool_calls[{j}]", "an object")
    return data


def check_ollama_tags(value: Any, shape: Shape) -> dict[str, Any]:
    """``/api/tags`` (and ``/api/ps``, the same list of model objects)."""
    data = shape.obj(value)
    for i, entry in enumerate(shape.objects(data, "models")):
        at = f"models[{i}]"
        for key in ("name", "model", "digest", "modified_at", "expires_at"):
            shape.opt_str(entry, key, at)
        for key in ("size", "size_vram", "context_length"):
            shape.opt_count(entry, key, at)
        for j, cap in enumerate(shape.items(entry, "capabilities", at)):
            if not isinstance(cap, str):
                raise shape.wrong(f"{at}.capabilities[{j}]", cap, "a string")
        details = shape.opt_obj(entry, "details", at)
        if details is not None:
            for key in ("parameter_size", "quantization_level", "family", "format"):
                shape.opt_str(details, key, f"{at}.details")
            shape.opt_count(details, "context_length", f"{at}.details")
    return data


def check_ollama_show(value: Any, shape: Shape) -> dict[str, Any]:
    """``/api/show``."""
    data = shape.obj(value)
    info = shape.opt_obj(data, "model_info")
    if info is not None:
        shape.opt_str(info, "general.architecture", "model_info")
        for key in info:
            if key.endswith(".context_length"):
                shape.opt_count(info, key, "model_info")
    shape.opt_str(data, "parameters")
    for j, cap in enumerate(shape.items(data, "capabilities")):
        if not isinstance(cap, str):
            raise shape.wrong(f"capabilities[{j}]", cap, "a string")
    details = shape.opt_obj(data, "details")
    if details is not None:
        for key in ("parameter_size", "quantization_level", "family"):
            shape.opt_str(details, key, "details")
    return data


def check_model_listing(value: Any, shape: Shape) -> dict[str, Any]:
    """An OpenAI-style ``/v1/models`` listing (``{"data": [...]}``; LM Studio REST v0 too)."""
    data = shape.obj(value)
    for i, entry in enumerate(shape.objects(data, "data")):
        at = f"data[{i}]"
        for key in ("id", "key", "state", "quantization", "arch", "type", "owned_by"):
            shape.opt_str(entry, key, at)
        for key in ("max_model_len", "loaded_context_length", "context_length", "max_context_length",
                    "size_bytes"):
            shape.opt_count(entry, key, at)
        meta = shape.opt_obj(entry, "meta", at)
        if meta is not None:
            shape.opt_count(meta, "n_ctx_train", f"{at}.meta")
            shape.opt_count(meta, "size", f"{at}.meta")
        status = shape.opt_obj(entry, "status", at)
        if status is not None:
            shape.opt_str(status, "value", f"{at}.status")
        caps = entry.get("capabilities")  # a list of names, or Azure's {"chat_completion": true, ...}
        if caps is not None and not isinstance(caps, list | dict):
            raise shape.wrong(f"{at}.capabilities", caps, "a list or an object")
        for j, cap in enumerate(caps if isinstance(caps, list) else []):
            if not isinstance(cap, str):
                raise shape.wrong(f"{at}.capabilities[{j}]", cap, "a string")
    return data


ANTHROPIC_COUNTS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
ANTHROPIC_TEXTS = ("type", "id", "name", "text", "thinking", "signature", "partial_json", "stop_reason")


def check_anthropic(value: Any, shape: Shape) -> dict[str, Any]:
    """One Messages API stream event (``message_start``, ``content_block_*``, ``message_delta``)."""
    data = shape.obj(value)
    shape.opt_count(data, "index")
    message = shape.opt_obj(data, "message")
    if message is not None:
        shape.opt_str(message, "model", "message")
        _drop_bad_counts(message, "usage", ANTHROPIC_COUNTS)
    for key in ("content_block", "delta"):
        part = shape.opt_obj(data, key)
        if part is not None:
            for name in ANTHROPIC_TEXTS:
                shape.opt_str(part, name, key)
    _drop_bad_counts(data, "usage", ANTHROPIC_COUNTS)
    return data


GEMINI_COUNTS = ("promptTokenCount", "candidatesTokenCount", "totalTokenCount", "cachedContentTokenCount",
                 "thoughtsTokenCount")


def check_gemini(value: Any, shape: Shape) -> dict[str, Any]:
    """One ``GenerateContentResponse`` (a whole reply or one stream event)."""
    data = shape.obj(value)
    feedback = shape.opt_obj(data, "promptFeedback")
    if feedback is not None:
        shape.opt_str(feedback, "blockReason", "promptFeedback")
    for i, candidate in enumerate(shape.objects(data, "candidates")):
        at = f"candidates[{i}]"
        shape.opt_str(candidate, "finishReason", at)
        shape.objects(candidate, "safetyRatings", at)
        content = shape.opt_obj(candidate, "content", at)
        parts = shape.objects(content, "parts", f"{at}.content") if content is not None else []
        for j, part in enumerate(parts):
            where = f"{at}.content.parts[{j}]"
            shape.opt_str(part, "text", where)
            call = shape.opt_obj(part, "functionCall", where)
            if call is not None:
                shape.opt_str(call, "id", f"{where}.functionCall")
                shape.opt_str(call, "name", f"{where}.functionCall")
                shape.opt_obj(call, "args", f"{where}.functionCall")
    _drop_bad_counts(data, "usageMetadata", GEMINI_COUNTS)
    return data


def check_anthropic_message(value: Any, shape: Shape) -> dict[str, Any]:
    """A whole Messages API ``message`` (a reply without streaming)."""
    data = shape.obj(value)
    for key in ("id", "model", "stop_reason"):
        shape.opt_str(data, key)
    for i, block in enumerate(shape.objects(data, "content")):
        for name in ANTHROPIC_TEXTS:
            shape.opt_str(block, name, f"content[{i}]")
        shape.opt_obj(block, "input", f"content[{i}]")
    _drop_bad_counts(data, "usage", ANTHROPIC_COUNTS)
    return data
