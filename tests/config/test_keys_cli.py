"""``victor-gui keys``: a key saved from the command line lands in the keyring the window reads,
is listed by name only, never printed, and can be deleted (the Windows tier does the same with
the installed app against Wine's Credential Manager)."""

from __future__ import annotations

import io
import json

import pytest

from tests.config.memory_keyring import MemoryKeyring, no_backend, use_backend
from victor_gui.__main__ import main
from victor_gui.config.secrets import SERVICE, KeyringStore

SECRET = "sk-test-cli-0123456789abcdef"


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str,
         stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_set_list_delete_through_the_keyring(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    backend = MemoryKeyring()
    with use_backend(backend):
        code, out, err = _run(monkeypatch, capsys, "keys", "set", "OpenAI", stdin=SECRET + "\n")
        assert code == 0, err
        # Stored under the provider's own name, where Settings → API keys and `chat` look.
        assert backend.entries == {(SERVICE, "openai"): SECRET}
        assert KeyringStore().get_key("openai") == SECRET
        code, out, _ = _run(monkeypatch, capsys, "keys", "list", "--json")
        assert code == 0 and json.loads(out) == {"keys": ["openai"]}
        assert SECRET not in out
        code, out, _ = _run(monkeypatch, capsys, "keys", "delete", "openai")
        assert code == 0 and backend.entries == {}
        assert _run(monkeypatch, capsys, "keys", "delete", "openai")[0] == 1  # nothing left to delete
        code, out, _ = _run(monkeypatch, capsys, "keys", "list")
        assert code == 0 and out == "No keys saved.\n"


def test_keys_refuses_what_it_cannot_store(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    backend = MemoryKeyring()
    with use_backend(backend):
        code, _, err = _run(monkeypatch, capsys, "keys", "set", "no-such-provider", stdin=SECRET)
        assert code == 2 and "openai" in err
        code, _, err = _run(monkeypatch, capsys, "keys", "set", "ollama", stdin=SECRET)  # local: no key
        assert code == 2
        code, _, err = _run(monkeypatch, capsys, "keys", "set", "openai", stdin="\n")
        assert code == 2 and "standard input" in err
        assert backend.entries == {}
    with use_backend(no_backend()):
        code, _, err = _run(monkeypatch, capsys, "keys", "set", "openai", stdin=SECRET)
        assert code == 1 and "keyring" in err.lower() and SECRET not in err
