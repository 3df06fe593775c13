"""``victor-gui``: with no subcommand, the desktop app; with one, a headless tool."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from victor_gui import __version__


def build_parser(*, with_commands: bool = True, only: str | None = None) -> argparse.ArgumentParser:
    """The CLI. ``with_commands=False`` leaves the headless subcommands out: importing them
    costs more than the window's own start-up, and a plain launch does not need them.
    ``only="fit"`` registers just ``fit`` (the others import services, storage and pydantic:
    several times the estimate's own cost)."""
    parser = argparse.ArgumentParser(prog="victor-gui", description="Victor GUI: local-first LLM chat")
    parser.add_argument("--version", action="version", version=f"victor-gui {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="open the window, wait for the first paint, close, exit 0 (smoke test)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    if only == "fit":
        from victor_gui.cli.fit import add_fit_command

        add_fit_command(commands)
    elif with_commands:
        from victor_gui.cli.chat import add_chat_command  # Qt-free; `chat`
        from victor_gui.cli.engine import add_engine_command  # Qt-free; `engine install|status`
        from victor_gui.cli.fit import add_fit_command  # Qt-free; heavy imports wait for the handler
        from victor_gui.cli.hub import add_hub_command  # Qt-free; `hub search`, `hub show`
        from victor_gui.cli.keys import add_keys_command  # Qt-free; `keys set|list|delete`
        from victor_gui.cli.models import add_models_command  # Qt-free; `models list|download`
        from victor_gui.cli.serve import add_serve_command  # Qt-free; `serve PATH`
        from victor_gui.cli.servers import add_manager_commands  # Qt-free; `providers`, `doctor`
        from victor_gui.cli.update import add_update_command  # Qt-free; `update` (check the feed)

        add_chat_command(commands)
        add_manager_commands(commands)
        add_fit_command(commands)
        add_hub_command(commands)
        add_models_command(commands)
        add_serve_command(commands)
        add_engine_command(commands)
        add_update_command(commands)
        add_keys_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # Subcommands are only loaded when a word that could name one (or --help) is present.
    wants_commands = any(not w.startswith("-") or w in ("-h", "--help") for w in words)
    first = next((w for w in words if not w.startswith("-")), None)
    light = "fit" if first == "fit" and words[0] == "fit" else None
    parser = build_parser(with_commands=wants_commands, only=light)
    args = parser.parse_args(words)
    if args.command is None:
        from victor_gui.ui.app import run_app  # Qt is imported only when the window is wanted

        return run_app(self_test=args.self_test)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
