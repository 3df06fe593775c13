"""``victor-gui providers`` and ``victor-gui doctor`` run as real subprocesses, with the seed's
variables pointing at simulators on free ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.servers import llamacpp, lmstudio, ollama, vllm
from tests.servers.base import free_port
from tests.support.app_env import isolated_dirs_env
from tests.support.wine_gaps import UNDER_WINE

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-test-0123456789abcdefghijklmnop"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.endswith(("_API_KEY", "_HOST", "_ENDPOINTS", "_TOKEN"))}
    # Never touch the developer's real keyring, settings or profiles from a test.
    base["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    scratch = tempfile.mkdtemp(prefix="victor-cli-")
    env = env or {}
    # A test's own HOME/XDG_CONFIG_HOME win; Windows reads their counterparts (tests/support/app_env.py).
    base.update(env)
    base.update(isolated_dirs_env(Path(env.get("HOME", scratch)),
                                  Path(env.get("XDG_CONFIG_HOME", f"{scratch}/config")),
                                  Path(env.get("XDG_DATA_HOME", f"{scratch}/data"))))
    # Under Wine a Windows Python child takes many seconds to start on a loaded machine.
    return subprocess.run([sys.executable, "-m", "victor_gui", *args], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=120 if UNDER_WINE else 30, check=False)


@pytest.fixture
def sims():
    servers = [ollama.make_server(), lmstudio.make_server(), vllm.make_server(), llamacpp.make_server()]
    for server in servers:
        server.start()
    env = {"OLLAMA_HOST": servers[0].url, "VICTOR_LM_STUDIO_HOST": servers[1].url,
           "VICTOR_VLLM_HOST": servers[2].url, "VICTOR_LLAMACPP_HOST": servers[3].url}
    yield servers, env
    for server in servers:
        server.stop()


def test_doctor_json_with_all_four_kinds(sims) -> None:
    servers, env = sims
    dead = f"http://127.0.0.1:{free_port()}"
    result = run_cli("doctor", "--json", "--no-defaults", "--no-scan", "--endpoint", dead, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    by_url = {e["base_url"]: e for e in report["endpoints"]}
    kinds = [(by_url[s.url]["kind"], by_url[s.url]["state"]) for s in servers]
    assert kinds == [("ollama", "up"), ("lmstudio", "up"), ("vllm", "up"), ("llamacpp", "up")]
    assert by_url[dead]["state"] == "down" and by_url[dead]["diagnosis"].startswith("nothing listens on")
    assert by_url[servers[1].url]["models"][0]["context_length"] == 8192
    assert by_url[servers[0].url]["source"] == "env:OLLAMA_HOST"
    assert report["hardware"]["ram"]["total_bytes"] > 0


def test_doctor_text_output(sims) -> None:
    _servers, env = sims
    result = run_cli("doctor", "--no-defaults", "--no-scan", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Ollama 0.33.0 is up" in out and "vLLM 0.11.0 is up; loaded: sim-model (ctx 32768)" in out
    assert "4 server(s) answering: LM Studio, Ollama, llama.cpp, vLLM." in out
    assert "Hardware" in out and "RAM:" in out


def test_doctor_finding_nothing_exits_0_and_says_so() -> None:
    result = run_cli("doctor", "--no-defaults", "--no-scan",
                     env={"VICTOR_VLLM_HOST": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 0, result.stderr
    assert "No local inference server is running." in result.stdout
    assert "start vLLM with `vllm serve MODEL`" in result.stdout


def test_providers_shows_key_sources_never_keys(sims) -> None:
    servers, env = sims
    result = run_cli("providers", env={**env, "OPENAI_API_KEY": SECRET})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert lines["openai"].endswith("ready: key from OPENAI_API_KEY")
    assert SECRET not in result.stdout + result.stderr
    assert lines["anthropic"].endswith("no key: set ANTHROPIC_API_KEY or save one in Settings")
    assert lines["ollama"].endswith(f"ready: server up at {servers[0].url}")
    assert lines["vllm"].endswith(f"ready: server up at {servers[2].url}")
    assert lines["azure"].endswith("no key or endpoint: set AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT")
    assert "USABLE" not in result.stdout


def test_providers_json(sims) -> None:
    servers, env = sims
    result = run_cli("providers", "--json", env={**env, "GROQ_API_KEY": SECRET})
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)["providers"]}
    assert rows["groqcloud"]["key"] == "GROQ_API_KEY" and rows["openai"]["local"] is None
    assert rows["groqcloud"]["status"] == "ready: key from GROQ_API_KEY" and rows["groqcloud"]["ready"]
    assert rows["openai"]["ready"] is False and rows["llamacpp"]["ready"] is True
    assert rows["llamacpp"]["local"] == [{"url": servers[3].url, "state": "up"}]
    assert SECRET not in result.stdout


def test_providers_lists_a_providers_models(sims) -> None:
    _servers, env = sims
    result = run_cli("providers", "--provider", "lmstudio", env=env)
    assert result.returncode == 0, result.stderr
    assert "sim-model" in result.stdout and "1 model(s)." in result.stdout


def test_providers_model_listing_failure_is_a_clear_message() -> None:
    result = run_cli("providers", "--provider", "vllm", env={"VICTOR_VLLM_HOST": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 1
    assert result.stdout.startswith("Cannot list models of vLLM:") and "[connection]" in result.stdout
    unknown = run_cli("providers", "--provider", "nonesuch")
    assert unknown.returncode == 1 and "No provider named 'nonesuch'" in unknown.stdout
    assert "Traceback" not in unknown.stderr


def test_commands_import_no_qt() -> None:
    code = ("import sys\nfrom victor_gui.__main__ import build_parser\nbuild_parser()\n"
            "import victor_gui.cli.servers, victor_gui.servers.health, victor_gui.servers.models\n"
            "assert not any(k.startswith(('PySide6', 'qasync')) for k in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr


def test_key_status_names_the_keyring_never_the_key() -> None:
    from victor_gui.cli.servers import key_status
    from victor_gui.providers import keys
    from victor_gui.providers.catalog import find_spec

    class Store:
        def get_key(self, provider: str) -> str | None:
            return SECRET if provider == "mistral" else None

    keys.set_secret_store(Store())
    try:
        assert key_status(find_spec("mistral")) == "keyring"
        assert key_status(find_spec("bedrock")) == "SDK credentials (not an API key)"
        assert key_status(find_spec("ollama")) == "not needed"
    finally:
        keys.set_secret_store(None)


def test_providers_marks_providers_whose_protocol_is_not_built(sims) -> None:
    _servers, env = sims
    result = run_cli("providers", "--json", env=env)
    rows = {r["name"]: r for r in json.loads(result.stdout)["providers"]}
    assert rows["openai"]["available"] is True and rows["ollama"]["available"] is True


@pytest.mark.parametrize(("name", "factory", "env_key", "model"), [
    ("anthropic", "anthropic", "ANTHROPIC_API_KEY", "claude-sim-4"),
    ("google", "gemini", "GOOGLE_API_KEY", None),
])
def test_providers_lists_a_clouds_models(name: str, factory: str, env_key: str, model: str | None) -> None:
    """`providers --provider NAME --base-url URL` lists a cloud API's models (key from the env)."""
    import importlib

    module = importlib.import_module(f"tests.servers.{factory}")
    server = module.make_server(api_key="sk-test-listing-key-0001").start()
    try:
        env = {env_key: "sk-test-listing-key-0001"}
        result = run_cli("providers", "--provider", name, "--base-url", server.url, "--json", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        models = [m["id"] for m in json.loads(result.stdout)["models"]]
        assert models and (model is None or model in models)
        assert "sk-test-listing-key-0001" not in result.stdout + result.stderr
        wrong = run_cli("providers", "--provider", name, "--base-url", server.url,
                        env={env_key: "sk-wrong-key-000000000"})
        assert wrong.returncode == 1 and "[auth]" in wrong.stdout
    finally:
        server.stop()


def test_providers_says_a_local_server_is_not_running() -> None:
    result = run_cli("providers", env={"VICTOR_VLLM_HOST": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert lines["vllm"].endswith("server not running")


@pytest.mark.parametrize("command", [("providers",), ("doctor", "--no-defaults", "--no-scan")])
def test_a_broken_profiles_file_is_reported_by_file_and_line(tmp_path: Path,
                                                             command: tuple[str, ...]) -> None:
    victor = tmp_path / "home" / ".victor" / "profiles.yaml"
    victor.parent.mkdir(parents=True)
    victor.write_text("profiles:\n  ok:\n    provider: ollama\n  bad:\n    provider: openai\n"
                      "    temperature: 9\n", encoding="utf-8")
    app = tmp_path / "config" / "victor_gui" / "profiles.yaml"
    app.parent.mkdir(parents=True)
    app.write_text("profiles:\n  x: [unclosed\n", encoding="utf-8")
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = run_cli(*command, env=env)
    assert result.returncode == 0, result.stderr
    assert "Profiles: these could not be used as written" in result.stdout
    assert f"{victor}:6: profiles.bad.temperature" in result.stdout
    assert f"{app}:3: not valid YAML" in result.stdout  # where the parser found the list unclosed
    as_json = json.loads(run_cli(*command, "--json", env=env).stdout)
    problems = {(p["path"], p["line"]) for p in as_json["profile_errors"]}
    assert (str(victor), 6) in problems and str(app) in {p for p, _line in problems}


def test_doctor_and_providers_read_the_registry_with_hand_added_endpoints(tmp_path: Path, sims) -> None:
    """The CLI reads the same registry as the window: an endpoint added by hand in settings.yaml
    (no variable names it) is probed once, by its name, beside the seed's variables."""
    _servers, env = sims
    desk = llamacpp.make_server()
    desk.start()
    try:
        config = tmp_path / "config" / "victor_gui" / "settings.yaml"
        config.parent.mkdir(parents=True)
        config.write_text("config_version: 3\nendpoints:\n"
                          f"  - name: Desk box\n    kind: llamacpp\n    url: {desk.url}\n", encoding="utf-8")
        env = {**env, "XDG_CONFIG_HOME": str(tmp_path / "config")}
        doctor = run_cli("doctor", "--no-defaults", "--no-scan", env=env)
        assert doctor.returncode == 0, doctor.stderr
        lines = doctor.stdout.splitlines()
        first = lines[1]  # hand-added endpoints come first
        assert first.startswith(desk.url) and " up " in f"{first} "
        assert lines[2] == "    Desk box (your endpoint)"
        assert "5 server(s) answering" in doctor.stdout
        doctor_json = run_cli("doctor", "--no-defaults", "--no-scan", "--json", env=env)
        rows = json.loads(doctor_json.stdout)["endpoints"]
        assert (rows[0]["name"], rows[0]["origin"]) == ("Desk box", "settings")
        # One probe cycle: the hand-added server saw one probe per command run, not three.
        probes = [r for r in desk.requests if r.path == "/props"]
        assert len(probes) == 2
        providers = run_cli("providers", env=env)
        assert providers.returncode == 0, providers.stderr
        assert f"  Desk box (llama.cpp, {desk.url}): ready" in providers.stdout
        listed = json.loads(run_cli("providers", "--json", env=env).stdout)["endpoints"]
        assert [(e["name"], e["state"]) for e in listed] == [("Desk box", "up")]
    finally:
        desk.stop()
