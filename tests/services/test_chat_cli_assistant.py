"""``victor-gui chat --assistant NAME`` as a real subprocess against the vLLM simulator: the
assistant saved beside the settings picks the provider and model, and its system prompt and
parameters reach the server under vLLM's wire names; command-line options win over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.base import SimServer
from tests.services.chat_cli_support import Home
from victor_gui.services.assistants import Assistant, dump_assistants
from victor_gui.services.exit_codes import EXIT_USAGE


@pytest.fixture
def home(tmp_path: Path) -> Home:
    h = Home(tmp_path)
    path = h.settings_file.with_name("assistants.yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_assistants([Assistant(
        name="Careful", system_prompt="Think twice.", provider="vllm", model="sim-model",
        params={"temperature": 0.15, "max_tokens": 300, "top_k": 9, "repeat_penalty": 1.2, "seed": 3})]),
        encoding="utf-8")
    return h


def test_assistant_fills_provider_model_prompt_and_parameters(home: Home, sim: SimServer) -> None:
    env = {"VICTOR_VLLM_HOST": f"127.0.0.1:{sim.port}"}
    result = home.run("chat", "--assistant", "careful", "--no-scan", "Hello", env=env)
    assert result.returncode == 0, result.stderr
    body = sim.chat_requests()[-1].body
    assert body["model"] == "sim-model"
    assert body["messages"][0] == {"role": "system", "content": "Think twice."}
    assert (body["temperature"], body["max_tokens"], body["top_k"], body["seed"]) == (0.15, 300, 9, 3)
    assert body["repetition_penalty"] == 1.2 and "repeat_penalty" not in body  # vLLM's name

    # What the command line says wins over the assistant.
    again = home.run("chat", "--assistant", "Careful", "--temperature", "0.9", "--system", "Be quick.",
                     "--no-scan", "Hi", env=env)
    assert again.returncode == 0, again.stderr
    body = sim.chat_requests()[-1].body
    assert body["temperature"] == 0.9 and body["messages"][0]["content"] == "Be quick."
    assert body["top_k"] == 9


def test_unknown_assistant_names_the_ones_there_are(home: Home) -> None:
    result = home.run("chat", "--assistant", "nobody", "--no-scan", "Hi")
    assert result.returncode == EXIT_USAGE, (result.returncode, result.stderr)
    assert "There is no assistant named 'nobody'" in result.stderr and "Careful" in result.stderr
