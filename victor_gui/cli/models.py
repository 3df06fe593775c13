"""``victor-gui models``: the GGUFs on this machine, and downloads from the Hugging Face Hub.
Headless, no Qt.

* ``models list [--json]`` — every GGUF in the model folders (Settings → Models) and in the
  libraries of LM Studio, llama.cpp's cache and Hugging Face's cache, with its repo and file where
  the layout tells them;
* ``models download hf:AUTHOR/REPO/FILE [--folder F] [--revision R] [--json]`` — the same
  download as the window's (:class:`~victor_gui.services.downloads.DownloadManager`): progress on
  stderr, the sha256 checked, a split model's parts all fetched, nothing fetched that is already
  here, an interrupted download resumed from its ``.part`` by the next run. ``HF_ENDPOINT``
  names another Hub (a mirror).

Exit codes: 0 done (or already here); 1 the download failed (its checksum, the connection);
2 usage (not an ``hf:`` reference, a path leaving the folder); 3 a gated repo without a token
that opens it; 4 the Hub does not answer; 5 no such repo or file; 6 not enough disk space, or
the folder cannot be written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

EXIT_FAILED, EXIT_USAGE, EXIT_GATED, EXIT_NETWORK, EXIT_NOT_FOUND, EXIT_DISK = 1, 2, 3, 4, 5, 6
EXIT_BY_REASON = {"bad_ref": EXIT_USAGE, "gated": EXIT_GATED, "network": EXIT_NETWORK,
                  "not_found": EXIT_NOT_FOUND, "disk_space": EXIT_DISK, "disk": EXIT_DISK}

EXIT_HELP = """exit codes:
  0  downloaded and verified (or already on this machine)
  1  the download failed (checksum, connection)
  2  usage: not an hf:AUTHOR/REPO/FILE reference
  3  a gated repo: add the Hugging Face token (Settings → API keys, or HF_TOKEN)
  4  the Hub does not answer
  5  no such repo or file
  6  not enough disk space, or the folder cannot be written"""


def add_models_command(subparsers: Any) -> None:
    """Register ``models list`` and ``models download`` on the ``victor-gui`` parser."""
    p = subparsers.add_parser("models", help="list local GGUF models, download from Hugging Face",
                              description="Local GGUF models across the model folders, and downloads "
                                          "from the Hugging Face Hub.",
                              epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="GGUF files in the model folders and known libraries")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=run_models)
    get = sub.add_parser("download", help="download a GGUF from the Hugging Face Hub",
                         epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    get.add_argument("ref", metavar="hf:AUTHOR/REPO/FILE",
                     help="e.g. hf:bartowski/Qwen3-8B-GGUF/Qwen3-8B-Q4_K_M.gguf")
    get.add_argument("--folder", metavar="F", default=None,
                     help="models folder to download into (default: Settings → Models)")
    get.add_argument("--revision", default="main", help="branch, tag or commit (default main)")
    get.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    get.set_defaults(handler=run_models)


def run_models(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Entry point of ``victor-gui models``; returns the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    if args.models_command == "list":
        return asyncio.run(list_models(args, out))
    return asyncio.run(download(args, out, err))


async def _folders() -> Any:
    from victor_gui.services.model_folders import ModelFolders
    from victor_gui.services.settings_service import SettingsService

    settings = SettingsService()
    await settings.load()
    return ModelFolders(settings)


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


async def list_models(args: argparse.Namespace, out: TextIO) -> int:
    folders = await _folders()
    models = await folders.scan()
    if args.json:
        out.write(json.dumps({"models": [m.to_dict() for m in models]}, indent=2) + "\n")
        return 0
    if not models:
        out.write("No GGUF models found. Folders searched:\n")
        for lib in await asyncio.to_thread(folders.libraries):
            out.write(f"  {lib.name}: {lib.path}\n")
        return 0
    for m in models:
        name = f"{m.repo_id}/{m.file}" if m.repo_id else m.path.name
        out.write(f"{name:70} {_size(m.size):>10}  {m.library}  {m.path}\n")
    return 0


def _progress(err: TextIO) -> Any:
    last = [0.0]

    def show(event: Any) -> None:
        job = event.job
        now = time.monotonic()
        if event.kind == "progress" and now - last[0] < 0.5:
            return
        last[0] = now
        frac = f"{job.fraction * 100:5.1f}%" if job.fraction is not None else "  ?  "
        eta = f", {job.eta_s:.0f} s left" if job.eta_s is not None else ""
        speed = f", {job.speed_bps / 1e6:.1f} MB/s" if job.speed_bps else ""
        err.write(f"{job.name}: {job.state.value} {frac} ({_size(job.done_bytes)}{speed}{eta})\n")
        err.flush()

    return show


async def download(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from victor_gui.cli.servers import _install_keyring
    from victor_gui.errors import DownloadError
    from victor_gui.providers.http import CLOUD_TIMEOUTS, make_client
    from victor_gui.services.downloads import DownloadManager, JobState, parse_hf_ref

    try:
        repo_id, file = parse_hf_ref(args.ref)
    except ValueError as exc:
        err.write(f"{exc}\n")
        return EXIT_USAGE
    await asyncio.to_thread(_install_keyring)  # the Hugging Face token, for gated repos
    folders = await _folders()
    async with make_client(CLOUD_TIMEOUTS) as client:
        manager = DownloadManager(client, folders=folders)
        manager.subscribe(_progress(err))
        try:
            jobs = await manager.enqueue(repo_id, [file], revision=args.revision,
                                         folder=Path(args.folder) if args.folder else None)
            results = [await manager.wait(job.id) for job in jobs]
        except DownloadError as exc:
            err.write(f"{exc.message}\n")
            if args.json:
                failure = {"status": "error", "reason": exc.reason, "message": exc.message}
                out.write(json.dumps(failure) + "\n")
            return EXIT_BY_REASON.get(exc.reason, EXIT_FAILED)
        finally:
            await manager.close()
    code = 0
    for job in results:
        if job.state == JobState.FAILED:
            err.write(f"{job.message}\n")
            code = code or EXIT_BY_REASON.get(job.reason or "", EXIT_FAILED)
        elif job.state == JobState.PRESENT:
            err.write(f"{job.message}\n")
        else:
            checked = "verified" if job.verified else "not published by the Hub"
            err.write(f"{job.name}: saved to {job.dest} (sha256 {checked})\n")
    if args.json:
        out.write(json.dumps({"status": "ok" if code == 0 else "error",
                              "jobs": [j.to_dict() for j in results]}, indent=2) + "\n")
    else:
        for job in results:
            if job.state in (JobState.DONE, JobState.PRESENT):
                out.write(f"{job.dest}\n")
    return code
