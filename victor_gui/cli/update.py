"""``victor-gui update``: ask the release feed now, and (``--install``) update to what it offers.

    victor-gui update [--install] [--json]

The feed is the one in the settings (``updates.feed_url``); what it offers is checked exactly as
the window checks it (Ed25519 signature with the key the app ships, the signed version agreeing
with the feed's, never an older version). Without ``--install`` nothing is downloaded.

``--install`` takes the same path as the window's Help → Check for updates… → Install: the
installer is downloaded (resumed when the connection drops), checked against the signed size and
sha256, the database and settings are backed up into ``<data>/backups/``, and the installer's
silent upgrade is started; it closes the running copies (this command has exited by then) and
installs over them. Anything that fails first leaves the installed version, its data and its
settings as they were, says why on stderr and exits non-zero. Headless, no Qt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from victor_gui.services.update_feed import Release
    from victor_gui.services.updates import UpdateChanged, UpdateService

EXIT_HELP = """exit codes:
  0  the answer was printed (a newer version, or up to date); with --install: the
     installer was started, or there was nothing newer to install
  4  the feed or the download could not be reached (nothing was installed)
  1  the feed or the download could not be trusted or read, or the update could not be
     backed up or started (nothing was installed)"""


def add_update_command(subparsers: Any) -> None:
    """Register ``update`` on the ``victor-gui`` sub-command parser."""
    parser = subparsers.add_parser("update", help="check the release feed for a newer version, or install it",
                                   description="Check the release feed (Settings → Appearance & data) "
                                               "for a newer, signed version and show what is new.",
                                   epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--install", action="store_true",
                        help="download the newer version, verify it, back up your conversations and "
                             "settings, and start its silent installer (Windows)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=lambda args: asyncio.run(update_command(args, sys.stdout, sys.stderr)))


async def update_command(args: argparse.Namespace, out: TextIO, err: TextIO, *,
                         public_key: bytes | None = None, data_dir: Path | None = None,
                         launcher: Sequence[str] | None = None) -> int:
    """Check the feed (and with ``--install`` install what it offers) and print the answer;
    returns the exit code. ``public_key``, ``data_dir`` and ``launcher`` stand in for the
    shipped key, the settings' data folder and the platform's way of starting an installer
    (tests)."""
    import httpx

    from victor_gui.errors import UpdateError
    from victor_gui.services.settings_service import SettingsService
    from victor_gui.services.updates import UpdateService, UpdateState
    from victor_gui.storage.location import default_data_dir
    from victor_gui.storage.store import DB_NAME

    settings = SettingsService()
    await settings.load()
    chosen = settings.settings.data_dir
    folder: Path = data_dir if data_dir is not None else (
        Path(chosen) if chosen else await asyncio.to_thread(default_data_dir))
    try:
        async with httpx.AsyncClient(trust_env=True) as client:
            service = UpdateService(client, settings, folder, db_path=folder / DB_NAME,
                                    public_key=public_key, launcher=launcher)
            release = await service.check(manual=True)
            if args.install and release is not None:
                if not args.json:
                    service.subscribe(_ProgressLines(err))
                try:
                    await service.install()
                except UpdateError:
                    pass  # the service is FAILED with the sentence; printed below
    finally:
        settings.close()
    if args.json:
        out.write(json.dumps(_payload(service, release)) + "\n")
    elif service.state is UpdateState.FAILED:
        err.write(service.message + "\n")
    else:
        out.write(service.message + "\n")
        if release is not None and service.state is UpdateState.AVAILABLE:
            how = ("run `victor-gui update --install`, or use the window's Help → Check for updates…"
                   if service.can_install else f"download it from {release.release_url}")
            out.write(f"\n{release.notes}\n\nRelease page: {release.release_url}\n"
                      f"Installer: {release.installer_name} ({release.size / 1e6:.1f} MB); to install it, "
                      f"{how}\n")
    if service.error is None:
        return 0
    return 4 if service.error.reason == "network" else 1


def _payload(service: UpdateService, release: Release | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"status": service.state.value, "current": service.current_version,
                               "message": service.message}
    if release is not None:
        payload.update(version=release.version, notes=release.notes, release_url=release.release_url,
                       installer=release.installer_name, size=release.size)
    if service.last_command is not None:
        payload["installer_path"] = service.last_command[-2]
    if service.last_backup is not None:
        payload["backup"] = str(service.last_backup)
    if service.error is not None:
        payload["reason"] = service.error.reason
    return payload


class _ProgressLines:
    """Download progress on stderr, one line per tenth (a terminal or a log file reads it alike)."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.shown = -1

    def __call__(self, change: UpdateChanged) -> None:
        if change.total and change.done:
            tenth = change.done * 10 // change.total
            if tenth > self.shown:
                self.shown = tenth
                self.err.write(f"  {change.done / 1e6:.1f} of {change.total / 1e6:.1f} MB\n")
                self.err.flush()
        elif change.message and change.state.value in ("downloading", "backing_up", "installing"):
            self.err.write(change.message + "\n")
            self.err.flush()
