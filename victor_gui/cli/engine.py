"""``victor-gui engine install|status|stop``: an engine out of the box on Linux and macOS. Headless, no Qt.

``install`` builds llama-server from the ``llama-cpp-python`` sdist on PyPI (pinned version and
sha256) and installs it in the data folder, printing the build's progress; when a llama-server on
PATH answers ``--version`` (a system package) or this version is already installed it says so
and stops, unless ``--force``. ``status`` lists every llama-server found and which one the app
would use, and why. ``stop`` stops the engines running from the app's own folder (the installer
runs it before an upgrade or uninstall: a running ``llama-server.exe`` cannot be replaced).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

EXIT_OK = 0
EXIT_BUILD_FAILED = 1
EXIT_USAGE = 2
EXIT_MISSING_TOOLS = 3
EXIT_INTERRUPTED = 130

EXIT_HELP = """exit codes:
  0    installed, already installed, or a system llama-server answers (see --force)
  1    the download, the checksum, the unpacking or the build failed (the log's last lines follow)
  2    usage: bad arguments, no such --sdist file
  3    cmake, make or a C/C++ compiler is missing (the message says what to install)
  130  interrupted (Ctrl-C): the build was stopped and nothing was installed (or, when it came
       during the final copy, the message says the engine was installed)"""


def add_engine_command(subparsers: Any) -> None:
    """Register ``engine install``, ``status`` and ``stop`` on the ``victor-gui`` parser."""
    from victor_gui.cli.chat import _positive_int  # the CLI's one "N >= 1" check
    from victor_gui.services.engine_sdist import DEFAULT_VERSION

    engine = subparsers.add_parser("engine", help="build or locate the llama-server engine",
                                   description="Build llama-server from source, or show which one is used.")
    actions = engine.add_subparsers(dest="engine_command", metavar="ACTION", required=True)

    inst = actions.add_parser(
        "install", help="build llama-server from the PyPI sdist into the data folder",
        description="Build llama-server (llama.cpp's server) from the llama-cpp-python sdist on PyPI "
                    "(version and sha256 pinned) with cmake and this machine's C/C++ compiler, and "
                    "install it in the app's data folder. Takes 5-20 minutes.",
        epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    inst.add_argument("--version", default=DEFAULT_VERSION, metavar="V",
                      help=f"llama-cpp-python release whose llama.cpp is built (default {DEFAULT_VERSION})")
    inst.add_argument("--sdist", type=Path, metavar="PATH",
                      help="build from this llama_cpp_python-V.tar.gz instead of downloading it")
    inst.add_argument("--jobs", type=_positive_int, metavar="N",
                      help="parallel compile jobs (default: CPU count)")
    inst.add_argument("--force", action="store_true",
                      help="build even when llama-server is on PATH or this version is installed")
    inst.add_argument("--prefix", type=Path, metavar="DIR",
                      help="install into DIR/<version>/ instead of <data>/engines/llama-server/<version>/")
    inst.add_argument("--opt", choices=["O0", "O1", "O2", "O3"], default="O2",
                      help="optimisation level (default O2; O0 builds ~40%% faster, runs slower)")
    inst.add_argument("--no-native", dest="native", action="store_false",
                      help="do not tune for this CPU (GGML_NATIVE=OFF: a binary for other machines)")
    inst.set_defaults(handler=run_install)

    stat = actions.add_parser("status", help="which llama-server would be used, and why",
                              description="List every llama-server found (PATH, installed by "
                                          "`engine install`, Jan, LM Studio) and the one the app uses.")
    stat.add_argument("--json", action="store_true", help="machine-readable output")
    stat.add_argument("--prefix", type=Path, metavar="DIR", help="where `engine install --prefix` put it")
    stat.set_defaults(handler=run_status)

    stop = actions.add_parser(
        "stop", help="stop the llama-server engines running from this app's folder",
        description="Stop every llama-server whose executable is inside FOLDER (default: the "
                    "installed app's folder, or the engines `engine install` built). Engines kept "
                    "running after the app closed hold their files open; the Windows installer and "
                    "uninstaller run this before they replace or remove them. A llama-server run "
                    "from anywhere else is left alone.")
    stop.add_argument("--folder", type=Path, metavar="DIR", help="stop engines run from DIR instead")
    stop.add_argument("--json", action="store_true", help="machine-readable output")
    stop.set_defaults(handler=run_stop)


# -- install -----------------------------------------------------------------------------------


def run_install(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Entry point of ``victor-gui engine install``; returns the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    started = time.time()
    try:
        return asyncio.run(install_command(args, out, err))
    except KeyboardInterrupt:
        # The copy into place is not interrupted half-way (it finishes, whole, or never starts):
        # say which of the two happened instead of guessing.
        installed = _installed_since(args, started)
        if installed is not None:
            print(f"engine install: interrupted after the build had finished; llama-server is "
                  f"installed at {installed}", file=err)
        else:
            print("engine install: interrupted; the build was stopped and nothing was installed", file=err)
        return EXIT_INTERRUPTED


def _installed_since(args: argparse.Namespace, started: float) -> Path | None:
    """The binary this run installed, if it got that far (its stamp is newer than the start)."""
    from victor_gui.errors import VictorGuiError
    from victor_gui.services import engine_install as ei
    from victor_gui.services.engine_sdist import sdist_version

    version = (sdist_version(args.sdist) if args.sdist else None) or args.version
    try:
        folder = ei.install_dir(version, args.prefix)
        binary = ei.stamped_binary(folder)
        fresh = binary is not None and (folder / ei.STAMP_NAME).stat().st_mtime >= started
    except (OSError, ValueError, VictorGuiError):
        return None
    return binary if fresh else None


class _Printer:
    """Progress on stderr: a line per phase, per 10 % of the download, per build step."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.phase = ""
        self.download = -10.0

    def show(self, phase: str, percent: float | None, line: str) -> None:
        if phase != self.phase:
            self.phase = phase
            print(f"== {phase}: {line}", file=self.err, flush=True)
            return
        if phase == "download" and percent is not None and percent >= self.download + 10:
            self.download = percent
            print(f"   download {percent:3.0f}%  {line}", file=self.err, flush=True)
        elif phase == "build" and percent is not None:
            print(line, file=self.err, flush=True)


async def install_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``engine install`` with the CLI's arguments, printing to ``out``/``err``."""
    from victor_gui.errors import EngineInstallError, EngineToolsMissingError
    from victor_gui.services import engine_install as ei
    from victor_gui.services.engine_sdist import check_version, sdist_version

    sdist: Path | None = args.sdist
    version: str = args.version
    if sdist is not None:
        if not await asyncio.to_thread(sdist.is_file):
            print(f"engine install: no such file: {sdist}", file=err)
            return EXIT_USAGE
        version = sdist_version(sdist) or version
    try:
        check_version(version)
    except EngineInstallError as exc:
        print(f"engine install: {exc.message}", file=err)
        return EXIT_USAGE
    prefix: Path | None = args.prefix
    if not args.force:
        dest = ei.install_dir(version, prefix)
        present = await asyncio.to_thread(ei.stamped_binary, dest)
        if present is not None:
            stamp = await asyncio.to_thread(ei.read_stamp, dest) or {}
            print(f"llama-server {version} is already installed at {present} (built "
                  f"{stamp.get('built_at', '?')}, -{stamp.get('opt', '?')}); --force rebuilds it.", file=err)
            print(present, file=out)
            return EXIT_OK
        system = await ei.system_engine()
        if system is not None:
            print(f"A llama-server is already on PATH and answers ({system.version}): {system.path}. "
                  "The app uses it (a system package or your own build); pass --force to build "
                  "victor-gui's own anyway.", file=err)
            print(system.path, file=out)
            return EXIT_OK
    printer = _Printer(err)
    try:
        async for event in ei.install_engine(version, sdist=sdist, prefix=prefix, jobs=args.jobs,
                                             opt=args.opt, native=args.native):
            printer.show(event.phase, event.percent, event.line)
            if event.phase == "done" and event.path is not None:
                print(event.path, file=out)
    except EngineToolsMissingError as exc:
        print(f"engine install: {exc.message}", file=err)
        return EXIT_MISSING_TOOLS
    except EngineInstallError as exc:
        print(f"engine install failed: {exc.message}", file=err)
        if exc.log_tail:
            print("last lines of the build log:", file=err)
            for line in exc.log_tail[-20:]:
                print(f"  {line}", file=err)
        if exc.log_path:
            print(f"whole log: {exc.log_path}", file=err)
        return EXIT_BUILD_FAILED
    return EXIT_OK


# -- status ------------------------------------------------------------------------------------


def run_status(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point of ``victor-gui engine status``; always 0 (no engine is an answer too)."""
    return asyncio.run(status_command(args, out or sys.stdout))


async def status_command(args: argparse.Namespace, out: TextIO) -> int:
    """``engine status`` with the CLI's arguments."""
    from victor_gui.services import engine_install as ei
    from victor_gui.services.engine_build import find_tools, tools_hint

    status = await ei.engine_status(prefix=args.prefix)
    tools = await asyncio.to_thread(find_tools)
    missing = [name for name, where in tools.items() if where is None]
    chosen = status.chosen
    if args.json:
        doc = {
            "chosen": None if chosen is None else {"path": str(chosen.path), "source": chosen.source,
                                                   "version": chosen.version},
            "reason": status.reason(),
            "candidates": [{"path": str(c.path), "source": c.source, "version": c.version,
                            "answers": c.version is not None} for c in status.candidates],
            "install_dir": str(args.prefix or ei.engines_root()),
            "build_tools_missing": missing,
        }
        print(json.dumps(doc, indent=2), file=out)
        return EXIT_OK
    if status.candidates:
        print("llama-server found (in order of preference):", file=out)
        for c in status.candidates:
            mark = "*" if c is chosen else " "
            print(f" {mark} {c.source:<10} {c.path}  {c.version or '(does not answer --version)'}", file=out)
    print(status.reason(), file=out)
    if chosen is None and missing:
        print(f"`engine install` needs {', '.join(missing)} first. {tools_hint()}", file=out)
    return EXIT_OK


# -- stop --------------------------------------------------------------------------------------


def default_stop_folder() -> Path:
    """The folder ``engine stop`` clears by default: the frozen app's install folder (its
    bundled engine lives under it), else the engines ``engine install`` built."""
    from victor_gui.services.engine_install import engines_root

    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent
    return engines_root()


def run_stop(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point of ``victor-gui engine stop``; 0 whether or not an engine was running."""
    return asyncio.run(stop_command(args, out or sys.stdout))


async def stop_command(args: argparse.Namespace, out: TextIO) -> int:
    """``engine stop`` with the CLI's arguments."""
    from victor_gui.services.engine_holders import GRACE_S, stop_engines_from_async

    folder = args.folder or default_stop_folder()
    stopped = await stop_engines_from_async(folder)
    if args.json:
        print(json.dumps({"folder": str(folder), "stopped": [
            {"pid": s.pid, "exe": s.exe, "killed": s.killed} for s in stopped]}, indent=2), file=out)
        return EXIT_OK
    if not stopped:
        print(f"No llama-server is running from {folder}.", file=out)
    for s in stopped:
        how = f"killed (it did not end within {GRACE_S:g} s)" if s.killed else "stopped"
        print(f"llama-server {s.pid} {how}: {s.exe}", file=out)
    return EXIT_OK
