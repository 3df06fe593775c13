"""``victor-gui chat`` as a real subprocess against protocol simulators on 127.0.0.1: stdin
prompts, streaming to stdout, --json, --no-save, reasoning, and one distinct exit code per
kind of failure. (The real llama-server runs are in tests/integration/test_chat_cli_real.py.)"""

from __future__ import annotations

import json

import pytest

from tests.servers import llamacpp
from tests.servers.base import Fault, Script, SimServer, free_port
from tests.services.chat_cli_support import Home
from victor_gui.services.exit_codes import (
    EXIT_AUTH,
    EXIT_CONNECTION,
    EXIT_MODEL_NOT_FOUND,
    EXIT_RATE_LIMIT,
    EXIT_USAGE,
)


def test_stdin_prompt_streams_to_stdout_and_is_saved(home: Home, sim: SimServer) -> None:
    sim.script(Script(text="Four, said the simulator.", pieces=5))
    result = home.run("chat", "--endpoint", sim.url, "--model", "sim-model", stdin="What is 2+2?\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Four, said the simulator.\n"
    sent = sim.chat_requests()[-1].body["messages"]
    assert sent[-1] == {"role": "user", "content": "What is 2+2?\n"}
    ((conv, messages),) = home.stored()
    assert conv.title == "What is 2+2?"
    assert [(m.role, m.content, m.status) for m in messages] == [
        ("user", "What is 2+2?\n", "complete"), ("assistant", "Four, said the simulator.", "complete")]
    assert messages[1].model == "sim-model" and messages[1].completion_tokens


def test_dash_reads_stdin_and_an_empty_prompt_is_a_usage_error(home: Home, sim: SimServer) -> None:
    result = home.run("chat", "-", "--endpoint", sim.url, "--model", "sim-model", stdin="hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello from the simulator.\n"
    empty = home.run("chat", "--endpoint", sim.url, stdin="  \n")
    assert empty.returncode == EXIT_USAGE
    assert "The prompt is empty" in empty.stderr and empty.stdout == ""


def test_no_save_stores_nothing(home: Home, sim: SimServer) -> None:
    result = home.run("chat", "--no-save", "--endpoint", sim.url, "--model", "sim-model", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello from the simulator.\n"
    assert home.stored() == []
    assert sim.chat_requests()  # it did ask the server


def test_json_is_one_object_and_nothing_else(home: Home, sim: SimServer) -> None:
    sim.script(Script(text="Plain answer.", reasoning="Thinking it over.", prompt_tokens=9))
    result = home.run("chat", "--json", "--endpoint", sim.url, "--model", "sim-model",
                      "--system", "Be brief.", "--temperature", "0.2", "--max-tokens", "50", "hi")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert payload["text"] == "Plain answer." and payload["reasoning"] == "Thinking it over."
    assert payload["model"] == "sim-model" and payload["endpoint"].startswith(sim.url)
    assert payload["usage"]["prompt_tokens"] == 9 and payload["fallback"] == []
    assert payload["timings"]["total_ms"] > 0
    body = sim.chat_requests()[-1].body
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    ((conv, messages),) = home.stored()
    assert payload["conversation_id"] == conv.id and conv.system_prompt == "Be brief."
    assert messages[-1].reasoning == "Thinking it over."


def test_reasoning_goes_to_stderr_or_marked_to_stdout(home: Home, sim: SimServer) -> None:
    sim.script(Script(text="Yes.", reasoning="Let me see."), Script(text="Yes.", reasoning="Let me see."))
    plain = home.run("chat", "--no-save", "--endpoint", sim.url, "--model", "sim-model", "ok?")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == "Yes.\n" and "Let me see." in plain.stderr
    shown = home.run("chat", "--no-save", "--show-reasoning", "--endpoint", sim.url, "--model",
                     "sim-model", "ok?")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "[reasoning] Let me see.\n[answer] Yes.\n"


def test_configured_endpoint_by_name_and_by_url(home: Home) -> None:
    server = llamacpp.make_server(model="tiny").start()
    try:
        home.write_settings({"endpoints": [{"name": "Box", "kind": "llamacpp", "url": server.url}]})
        by_name = home.run("chat", "--json", "--endpoint", "box", "hello")  # the loaded model is used
        assert by_name.returncode == 0, by_name.stderr
        payload = json.loads(by_name.stdout)
        assert (payload["provider"], payload["endpoint_name"]) == ("llamacpp", "Box")
        by_url = home.run("chat", "--json", "--endpoint", server.url + "/", "hello")
        assert json.loads(by_url.stdout)["endpoint_name"] == "Box"
    finally:
        server.stop()
    unknown = home.run("chat", "--endpoint", "nowhere", "hello")
    assert unknown.returncode == EXIT_USAGE and "No endpoint named 'nowhere'" in unknown.stderr


@pytest.mark.parametrize(("fault", "code", "words"), [
    (Fault.UNAUTHORIZED, EXIT_AUTH, "refused the API key"),
    (Fault.UNKNOWN_MODEL, EXIT_MODEL_NOT_FOUND, "does not have that model"),
    (Fault.RATE_LIMIT, EXIT_RATE_LIMIT, "rate-limiting"),
])
def test_each_failure_has_its_exit_code(home: Home, sim: SimServer, fault: str, code: int,
                                        words: str) -> None:
    sim.script(Script(fault=fault))
    result = home.run("chat", "--retries", "0", "--endpoint", sim.url, "--model", "sim-model", "hi")
    assert result.returncode == code, result.stderr
    assert words in result.stderr and result.stdout == ""
    assert "Traceback" not in result.stderr
    ((_conv, messages),) = home.stored()  # the failed reply is in the history, as in the window
    assert messages[-1].status == "error"


def test_connection_refused_and_timeout_exit_4(home: Home, sim: SimServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = home.run("chat", "--json", "--endpoint", dead, "--model", "m", "hi")
    assert result.returncode == EXIT_CONNECTION
    assert "Could not reach the server" in result.stderr
    assert json.loads(result.stdout)["error"]["kind"] == "connection"
    # 20 pieces a second apart against a 3 s deadline: the first pieces arrive even on a loaded
    # machine (a 1.5 s deadline once ran out before the first piece in a full CI run).
    sim.script(Script(text="slow " * 20, pieces=20, delay_s=1.0))
    slow = home.run("chat", "--timeout", "3", "--endpoint", sim.url, "--model", "sim-model", "hi")
    assert slow.returncode == EXIT_CONNECTION and "within 3 s" in slow.stderr
    assert slow.stdout.startswith("slow")  # what arrived was shown
    interrupted = [m for _c, ms in home.stored() for m in ms if m.status == "interrupted"]
    assert interrupted and interrupted[0].content.startswith("slow")


def test_usage_errors(home: Home) -> None:
    # Nothing named and nothing answering (--no-scan: a llama-server another test runs on some
    # port must not answer; nothing listens on the default ports here).
    nothing = home.run("chat", "--no-scan", "hi")
    assert nothing.returncode == EXIT_USAGE and "--provider NAME --model M" in nothing.stderr
    unknown = home.run("chat", "--provider", "nonesuch", "--model", "m", "hi")
    assert unknown.returncode == EXIT_USAGE
    cloud = home.run("chat", "--provider", "anthropic", "hi")
    assert cloud.returncode == EXIT_USAGE and "Name a model with --model" in cloud.stderr
    bad = home.run("chat", "--temperature", "7", "--provider", "ollama", "hi")
    assert bad.returncode == EXIT_USAGE and "between 0 and 2" in bad.stderr
    help_text = home.run("chat", "--help")
    assert help_text.returncode == 0 and "exit codes:" in help_text.stdout
    assert "7    the conversation is longer" in help_text.stdout


def test_missing_key_is_an_auth_failure_by_seed_alias(home: Home) -> None:
    result = home.run("chat", "--provider", "groq", "--model", "llama-3.3-70b-versatile", "hi")
    assert result.returncode == EXIT_AUTH, result.stderr
    assert "needs an API key" in result.stderr and "GROQ_API_KEY" in result.stderr


def test_profile_falls_back_and_says_so(home: Home, sim: SimServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    home.write_victor_profiles(
        "profiles:\n"
        "  resilient:\n"
        "    provider: vllm\n"
        f"    model: sim-model\n    base_url: {dead}\n"
        "    fallback:\n"
        f"      - provider: vllm\n        base_url: {sim.url}/v1\n")
    result = home.run("chat", "--profile", "resilient", "--json", "hi")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [(f["error"], f["endpoint"]) for f in payload["fallback"]] == [
        ("connection", dead), (None, f"{sim.url}/v1")]
    ((_conv, messages),) = home.stored()
    note = messages[-1]
    assert note.role == "note" and note.meta and note.meta["kind"] == "failover"
    port = dead.split(":")[2].split("/")[0]
    assert note.content == (f"vLLM · sim-model at 127.0.0.1:{port} did not answer (connection refused); "
                            f"vLLM · sim-model at 127.0.0.1:{sim.port} answered.")


def test_nothing_named_asks_the_first_server_that_answers(home: Home, sim: SimServer) -> None:
    """No --provider, --profile or --endpoint and no default in Settings: the registry's first
    working server answers (here the vLLM the seed's variable names), its loaded model unless
    --model; with nothing answering, a usage error says what to give."""
    sim.script(Script(text="Found you.", pieces=2))
    result = home.run("chat", "hello", env={"VICTOR_VLLM_HOST": sim.url})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Found you.\n"
    ((_conv, messages),) = home.stored()
    assert messages[-1].provider == "vllm" and messages[-1].endpoint == f"{sim.url}/v1"
    # --no-scan: a llama-server another test left running must not answer here.
    nobody = home.run("chat", "--no-scan", "hello", env={"VICTOR_VLLM_HOST": f"127.0.0.1:{free_port()}"})
    assert nobody.returncode == 2
    assert nobody.stderr.startswith("No local server answered. Say what should answer:")
    # Issue 17: and how to get a server when there is none (the three commands, in the sentence).
    for command in ("victor-gui hub search", "victor-gui models download hf:", "victor-gui serve PATH"):
        assert command in nobody.stderr
