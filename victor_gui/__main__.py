"""``victor-gui``: with no subcommand, the desktop app; with one, a headless tool."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from victor_gui import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="victor-gui", description="Victor GUI: local-first LLM chat")
    parser.add_argument("--version", action="version", version=f"victor-gui {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="open the window, wait for the first paint, close, exit 0 (smoke test)")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from victor_gui.ui.app import run_app  # Qt is imported only when the window is wanted

        return run_app(self_test=args.self_test)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
