"""packaging/release_feed.py as a release manager runs it: a key pair, a signed ``latest.json``
for an installer, and ``verify`` reading it with the app's own feed parser. The app's update
tests (tests/services/test_updates*.py, the Wine tier) are served feeds this script writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from victor_gui.services.update_feed import parse_feed

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "packaging" / "release_feed.py"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          check=False, env={**os.environ, **(env or {})})


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "secret" / "release.pem", tmp_path / "update_key.pub"
    private.parent.mkdir()
    made = _run("keygen", "--private", str(private), "--public", str(public))
    assert made.returncode == 0, made.stderr
    return private, public


def test_keygen_keeps_the_private_half_private_and_never_overwrites(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert private.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    again = _run("keygen", "--private", str(private), "--public", str(public))
    assert again.returncode == 2 and "not overwriting" in again.stderr
    inside = _run("keygen", "--private", str(ROOT / "release.pem"), "--public", str(public))
    assert inside.returncode == 2 and "inside the repository" in inside.stderr
    assert not (ROOT / "release.pem").exists()


def test_a_feed_signed_by_the_release_key_is_what_the_app_accepts(keys: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    private, public = keys
    installer = tmp_path / "Victor-GUI-0.2.0-win-x64.exe"
    installer.write_bytes(os.urandom(300_000))
    feed = tmp_path / "latest.json"
    # The key as a CI secret holds it: its PEM text in the environment.
    made = _run("feed", str(installer), "--version", "0.2.0", "--notes", "Faster start-up.",
                "--base-url", "https://github.com/o/victor-gui/releases", "--public", str(public),
                "-o", str(feed), env={"VICTOR_UPDATE_SIGNING_KEY": private.read_text()})
    assert made.returncode == 0, made.stderr
    release = parse_feed(feed.read_bytes(), public.read_bytes())  # the app's own check
    assert (release.version, release.installer_name, release.size) == ("0.2.0", installer.name, 300_000)
    assert release.installer_url == f"https://github.com/o/victor-gui/releases/download/v0.2.0/{installer.name}"
    assert json.loads(feed.read_text())["notes"] == "Faster start-up."
    ok = _run("verify", str(feed), "--installer", str(installer), "--public", str(public))
    assert ok.returncode == 0 and "ok: version 0.2.0" in ok.stdout
    installer.write_bytes(installer.read_bytes()[:-1] + b"\0")  # one byte changed after signing
    bad = _run("verify", str(feed), "--installer", str(installer), "--public", str(public))
    assert bad.returncode == 1 and "the feed signs 300000 bytes" in bad.stderr


def test_a_key_other_than_the_shipped_ones_writes_no_feed(keys: tuple[Path, Path], tmp_path: Path) -> None:
    private, _public = keys
    installer = tmp_path / "setup.exe"
    installer.write_bytes(b"MZ" + b"\0" * 1000)
    out = tmp_path / "latest.json"
    # The repository's update_key.pub is another key's public half: installed apps would refuse it.
    made = _run("feed", str(installer), "--version", "9.0.0", "--base-url", "https://x/releases",
                "--key", str(private), "-o", str(out))
    assert made.returncode == 1 and "would refuse this update" in made.stderr and not out.exists()
    missing = _run("feed", str(installer), "--version", "9.0.0", "--base-url", "https://x/releases",
                   "-o", str(out), env={"VICTOR_UPDATE_SIGNING_KEY": ""})
    assert missing.returncode != 0 and "no signing key" in missing.stderr
