"""``victor-gui``: with no subcommand, the desktop app; with one, a headless tool."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from victor_gui import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="victor-gui", description="Victor GUI: local-first LLM chat")
    parser.add_argument("--version", action="version", version=f"victor-gui {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    from victor_gui.manager.cli import add_manager_commands  # Qt-free; `providers`, `doctor`
    from victor_gui.modelmgr.cli import add_fit_command  # Qt-free; heavy imports wait for the handler

    add_manager_commands(commands)
    add_fit_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from victor_gui.ui.app import run_app  # Qt is imported only when the window is wanted

        return run_app()
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
