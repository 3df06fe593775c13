"""``victor-gui update``: ask the release feed now and say whether a newer version is out.

    victor-gui update [--json]

The feed is the one in the settings (``updates.feed_url``); what it offers is checked exactly as
the window checks it (Ed25519 signature with the key the app ships, the signed version agreeing
with the feed's, never an older version). Nothing is downloaded or installed from here: the
window's Help → Check for updates… does that, after a backup. Headless, no Qt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

EXIT_HELP = """exit codes:
  0  the answer was printed (a newer version, or up to date)
  4  the feed could not be reached
  1  the feed could not be trusted or read"""


def add_update_command(subparsers: Any) -> None:
    """Register ``update`` on the ``victor-gui`` sub-command parser."""
    parser = subparsers.add_parser("update", help="check the release feed for a newer version",
                                   description="Check the release feed (Settings → Appearance & data) "
                                               "for a newer, signed version and show what is new.",
                                   epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=lambda args: asyncio.run(update_command(args, sys.stdout, sys.stderr)))


async def update_command(args: argparse.Namespace, out: TextIO, err: TextIO, *,
                         public_key: bytes | None = None, data_dir: Path | None = None) -> int:
    """Check the feed and print the answer; returns the exit code. ``public_key`` and
    ``data_dir`` stand in for the shipped key and the settings' data folder (tests)."""
    import httpx

    from victor_gui.services.settings_service import SettingsService
    from victor_gui.services.updates import UpdateService, UpdateState
    from victor_gui.storage.location import default_data_dir

    settings = SettingsService()
    await settings.load()
    chosen = settings.settings.data_dir
    folder: Path = data_dir if data_dir is not None else (
        Path(chosen) if chosen else await asyncio.to_thread(default_data_dir))
    async with httpx.AsyncClient(trust_env=True) as client:
        service = UpdateService(client, settings, folder, public_key=public_key)
        release = await service.check(manual=True)
    settings.close()
    if args.json:
        payload: dict[str, Any] = {"status": service.state.value, "current": service.current_version,
                                   "message": service.message}
        if release is not None:
            payload.update(version=release.version, notes=release.notes, release_url=release.release_url,
                           installer=release.installer_name, size=release.size)
        if service.error is not None:
            payload["reason"] = service.error.reason
        out.write(json.dumps(payload) + "\n")
    elif service.state is UpdateState.FAILED:
        err.write(service.message + "\n")
    else:
        out.write(service.message + "\n")
        if release is not None:
            out.write(f"\n{release.notes}\n\nRelease page: {release.release_url}\n"
                      f"Installer: {release.installer_name} ({release.size / 1e6:.1f} MB); install it from "
                      "the window: Help → Check for updates…\n")
    if service.error is None:
        return 0
    return 4 if service.error.reason == "network" else 1
