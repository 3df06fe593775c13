"""A chat's stored parameters become session keywords: temperature and max tokens as the
session's own, the rest (context length included) as sampling sent by dialect."""

from __future__ import annotations

from victor_gui.providers.params import request_kwargs
from victor_gui.services.session_binding import params_from


def test_stored_parameters_split_into_session_keywords() -> None:
    stored = {"temperature": 0.4, "max_tokens": 800, "context_length": 16384, "top_k": 30,
              "stop": ["END"], "profile": "fast", "tools": {"servers": []}, "assistant": "Coder"}
    values = params_from(stored)
    assert values["temperature"] == 0.4 and values["max_tokens"] == 800
    assert values["context_window"] == 16384
    assert values["sampling"] == {"context_length": 16384, "top_k": 30, "stop": ["END"]}
    # Ollama gets the window as num_ctx; llama.cpp, whose window is fixed at start, does not.
    assert request_kwargs("ollama", values["sampling"]) == {"num_ctx": 16384, "top_k": 30, "stop": ["END"]}
    assert request_kwargs("llamacpp", values["sampling"]) == {"top_k": 30, "stop": ["END"]}
