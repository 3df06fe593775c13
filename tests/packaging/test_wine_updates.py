"""The pieces of the Windows tier's update step that need no Wine: the tier's own signing key,
kept outside the repository and handed to the bundle build; the feed written into the installed
app's settings; the CLI's JSON found in output it shares with log lines. (The step itself runs in
the tier: tests/packaging/test_windows_tier.py reads its outcome.)"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.packaging import wine_tier, wine_updates
from tests.packaging.support import load_packaging_script
from victor_gui.services.settings_service import SettingsService

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VICTOR_WINE_CACHE", str(tmp_path / "wine-cache"))
    return tmp_path / "wine-cache"


def test_the_update_key_pair_is_made_once_and_kept_in_the_cache(cache: Path) -> None:
    first = wine_updates.update_key_pair()
    again = wine_updates.update_key_pair()
    assert again.public_pem == first.public_pem
    folder = cache / "update-test-key"
    assert (folder / "public.pem").read_bytes() == first.public_pem
    assert stat.S_IMODE((folder / "private.pem").stat().st_mode) == 0o600
    assert ROOT not in folder.parents


def test_the_bundle_build_is_told_to_ship_the_key_and_the_cache_key_follows_it(cache: Path) -> None:
    wine = wine_tier.WineTier(cache.parent / "prefix")
    tag = wine_updates.trust_test_key(wine)
    public = cache / "update-test-key" / "public.pem"
    assert wine.env["VICTOR_BUNDLE_UPDATE_KEY"] == wine.win(public)
    assert wine_updates.trust_test_key(wine) == tag
    # What the build does with it: the bundle ships exactly that public key.
    update_key = load_packaging_script("update_key")
    shipped = update_key.bundled_update_key(ROOT, cache.parent / "scratch", {update_key.ENV: str(public)})
    assert shipped.read_bytes() == wine_updates.update_key_pair().public_pem
    # A new key pair is a new bundle (a cached bundle trusting the old key is never reused).
    for path in public.parent.iterdir():
        path.unlink()
    assert wine_updates.trust_test_key(wine) != tag


async def test_the_feed_goes_into_the_installed_settings_keeping_the_rest(tmp_path: Path) -> None:
    settings_file = tmp_path / "victor_gui" / "settings.yaml"
    service = SettingsService(settings_file)
    await service.load()
    await service.update(theme="dark")
    service.close()
    wine_updates.point_settings_at(settings_file, "http://127.0.0.1:4321/latest.json")
    service = SettingsService(settings_file)
    settings = await service.load()
    service.close()
    assert service.load_error is None and not service.dropped
    assert settings.updates.feed_url == "http://127.0.0.1:4321/latest.json"
    assert settings.updates.check is False and settings.theme == "dark"


def test_the_json_answer_is_found_among_log_lines() -> None:
    answer = {"status": "failed", "reason": "checksum", "message": "…"}
    out = "WARNING update: it failed\n" + json.dumps(answer) + "\n0024:fixme:something\n"
    assert wine_updates._json_line(out) == answer
    with pytest.raises(wine_tier.TierError):
        wine_updates._json_line("no json here\n")
