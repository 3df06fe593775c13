"""The data-heavy parts of the llama-server simulator: ``/props``, ``/slots`` and ``/v1/models``
bodies, and the chat route's request-body checks with llama-server's exact messages.

Shapes follow the llama-server the project tests against (the llama.cpp vendored by
llama-cpp-python 0.3.36, see ``tests/integration/test_llamacpp_conformance.py``). ``old_shapes``
gives the 2024 -- mid-2025 variants that servers.md §4.3 describes: ``/slots`` entries with
``id_task``, ``params`` and ``next_token``, and ``default_generation_settings.id``.
"""

from __future__ import annotations

import json
from typing import Any

#: ``default_generation_settings.params`` as a freshly started llama-server reports them.
SAMPLING_PARAMS: dict[str, Any] = {
    "seed": 4294967295, "temperature": 0.8, "dynatemp_range": 0.0, "dynatemp_exponent": 1.0,
    "top_k": 40, "top_p": 0.95, "min_p": 0.05, "top_n_sigma": -1.0, "xtc_probability": 0.0,
    "xtc_threshold": 0.1, "typical_p": 1.0, "repeat_last_n": 64, "repeat_penalty": 1.0,
    "presence_penalty": 0.0, "frequency_penalty": 0.0, "dry_multiplier": 0.0, "dry_base": 1.75,
    "dry_allowed_length": 2, "dry_penalty_last_n": 64, "mirostat": 0, "mirostat_tau": 5.0,
    "mirostat_eta": 0.1, "adaptive_target": -1.0, "adaptive_decay": 0.9, "max_tokens": -1,
    "n_predict": -1, "n_keep": 0, "n_discard": 0, "ignore_eos": False, "stream": False,
    "n_probs": 0, "min_keep": 0, "chat_format": "Content-only", "reasoning_format": "none",
    "reasoning_in_content": False, "generation_prompt": "",
    "samplers": ["penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc", "temperature"],
    "speculative.types": "none", "timings_per_token": False, "post_sampling_probs": False,
    "backend_sampling": False, "lora": [],
}

# A short ChatML template with tool support: enough for clients that look for tool markers.
CHAT_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\n# Tools\\n<tools>' }}{%- for tool in tools %}"
    "{{- '\\n' }}{{- tool | tojson }}{%- endfor %}{{- '\\n</tools>\\nCall a function with "
    "<tool_call>{\"name\": ..., \"arguments\": ...}</tool_call><|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content"
    " + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# The simulated model: a 7B Qwen2-style GGUF at Q4_K_M (what llama_model_ftype_name calls it).
FTYPE = "Q4_K - Medium"
N_CTX_TRAIN = 32768


def model_card(model: str, *, n_ctx: int, created: int = 1700000000) -> dict[str, Any]:
    """One ``data[]`` entry of ``/v1/models``."""
    return {
        "id": model,
        "aliases": [model],
        "tags": [],
        "object": "model",
        "created": created,
        "owned_by": "llamacpp",
        "meta": {
            "vocab_type": 2,
            "n_vocab": 151936,
            "n_ctx": n_ctx,
            "n_ctx_train": N_CTX_TRAIN,
            "n_embd": 3584,
            "n_params": 7615616512,
            "size": 4683074048,
            "ftype": FTYPE,
        },
    }


def ollama_entry(model: str, *, vision: bool) -> dict[str, Any]:
    """One entry of the Ollama-style ``models[]`` list beside ``data`` (stub fields, as real)."""
    return {
        "name": model,
        "model": model,
        "modified_at": "",
        "size": "",
        "digest": "",
        "type": "model",
        "description": "",
        "tags": [""],
        "capabilities": ["completion", "multimodal"] if vision else ["completion"],
        "parameters": "",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "",
            "families": [""],
            "parameter_size": "",
            "quantization_level": "",
        },
    }


def props(model: str, *, n_ctx: int, vision: bool, tools: bool, metrics: bool, build: str,
          media_marker: str, old_shapes: bool = False) -> dict[str, Any]:
    """The ``GET /props`` body."""
    settings: dict[str, Any] = {"params": dict(SAMPLING_PARAMS), "n_ctx": n_ctx}
    if old_shapes:
        settings = {"id": 0, **settings}
    caps = {
        "supports_object_arguments": True, "supports_parallel_tool_calls": tools,
        "supports_preserve_reasoning": False, "supports_reasoning_effort": False,
        "supports_string_content": True, "supports_system_role": True, "supports_tool_calls": tools,
        "supports_tools": tools, "supports_typed_content": False,
    }
    return {
        "default_generation_settings": settings,
        "total_slots": 1,
        "model_alias": model,
        "model_ftype": FTYPE,
        "model_path": f"/models/{model}.gguf",
        "modalities": {"vision": vision, "video": False, "audio": False},
        "media_marker": media_marker,
        "endpoint_slots": True,
        "endpoint_props": False,
        "endpoint_metrics": metrics,
        "ui": True,
        "ui_settings": {},
        "chat_template": CHAT_TEMPLATE,
        "chat_template_caps": caps,
        "bos_token": "<|endoftext|>",
        "eos_token": "<|im_end|>",
        "build_info": build,
        "is_sleeping": False,
        "cors_proxy_enabled": False,
    }


def slots(n_ctx: int, *, old_shapes: bool = False) -> list[dict[str, Any]]:
    """The ``GET /slots`` body: one idle slot (4 keys; more with ``old_shapes``)."""
    slot: dict[str, Any] = {"id": 0, "n_ctx": n_ctx, "speculative": False, "is_processing": False}
    if old_shapes:
        slot = {"id": 0, "id_task": -1, **slot, "params": dict(SAMPLING_PARAMS),
                "next_token": {"has_next_token": True, "has_new_line": False, "n_remain": -1,
                               "n_decoded": 0, "stopping_word": ""}}
    return [slot]


# nlohmann::json's type names, as its type errors spell them.
_JSON_TYPES = {str: "string", int: "number", float: "number", list: "array", dict: "object"}


def chat_body_error(raw: bytes) -> tuple[int, str] | None:
    """``(status, message)`` llama-server answers for a chat body it rejects, else None.

    nlohmann::json parse errors escape as 500 ``server_error`` (not 400); the rest are 400
    ``invalid_request_error`` with the server's own sentences.
    """
    if not raw:
        return 500, ("[json.exception.parse_error.101] parse error at line 1, column 1: attempting to parse "
                     "an empty input; check that your input string or stream contains the expected JSON")
    try:
        body = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for undecodable bytes
        line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
        last = raw[: getattr(exc, "pos", 0) + 1].decode("utf-8", "replace")[-8:]
        return 500, (f"[json.exception.parse_error.101] parse error at line {line}, column {col}: "
                     f"syntax error while parsing value - invalid literal; last read: '{last}'")
    if not isinstance(body, dict) or "messages" not in body:
        return 400, "'messages' is required"
    messages = body["messages"]
    if not isinstance(messages, list):
        return 400, "Expected 'messages' to be an array"
    for msg in messages:
        if not isinstance(msg, dict) or (msg.get("role") != "assistant" and "content" not in msg):
            return 400, "All non-assistant messages must contain 'content'"
    if "stream" in body and not isinstance(body["stream"], bool):
        kind = _JSON_TYPES.get(type(body["stream"]), "null")
        return 400, f"Field 'stream': [json.exception.type_error.302] type must be boolean, but is {kind}"
    return None


# name -> (type, help text), in the order llama-server writes them.
METRICS: dict[str, tuple[str, str]] = {
    "prompt_tokens_total": ("counter", "Number of prompt tokens processed, excluding cached tokens"),
    "prompt_tokens_cached_total": ("counter", "Number of prompt tokens reused from the cache"),
    "prompt_seconds_total": ("counter", "Total time spent processing prompts"),
    "tokens_predicted_total": ("counter", "Number of generation tokens processed"),
    "tokens_predicted_seconds_total": ("counter", "Total time spent generating tokens"),
    "n_decode_total": ("counter", "Total number of llama_decode() calls, excluding speculative decoding "
                                  "and multimodal decoding"),
    "n_tokens_max": ("counter", "Largest observed sequence length (prompt + generation)"),
    "spec_decode_num_draft_tokens_total": ("counter", "Speculative: Total draft tokens generated"),
    "spec_decode_num_accepted_tokens_total": ("counter", "Speculative: Total draft tokens accepted by the "
                                                         "target model"),
    "spec_decode_num_drafts_total": ("counter", "Speculative: Total speculative decoding verification steps"),
    "prompt_tokens_seconds": ("gauge", "Average prompt throughput in tokens/s"),
    "predicted_tokens_seconds": ("gauge", "Average generation throughput in tokens/s"),
    "requests_processing": ("gauge", "Number of requests processing"),
    "requests_deferred": ("gauge", "Number of requests deferred"),
    "n_busy_slots_per_decode": ("gauge", "Average number of busy slots per llama_decode() call"),
}


def metrics_text(values: dict[str, float]) -> str:
    """The ``GET /metrics`` body (Prometheus text); metrics missing from ``values`` read 0."""
    lines: list[str] = []
    for name, (kind, text) in METRICS.items():
        value = values.get(name, 0)
        lines += [f"# HELP llamacpp:{name} {text}", f"# TYPE llamacpp:{name} {kind}",
                  f"llamacpp:{name} {value:g}"]
    return "\n".join(lines) + "\n"
